"""Markets and their margin tiers.

A perpetual market's maintenance margin is tiered by position notional ``N``:
``MM(N) = N * maintenance_margin_rate_k - maintenance_amount_k`` for ``N`` in tier ``k``, with the maintenance
amount fixed by continuity at each boundary (``cum_k = cum_{k-1} + floor_k * (MMR_k - MMR_{k-1})``; Binance,
Bybit and Hyperliquid all publish this rule; shared/reference/exchange-rules.md section 3.1).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from perpstress.config.base import Sourced, rule_error
from perpstress.rules.margin import TierTable

CONTINUITY_TOLERANCE_USD = 0.5
"""A published maintenance amount may differ from the continuity rule by rounding only (half a dollar)."""


class MarginTier(Sourced):
    """One notional bracket of a market's margin table (Binance "leverage bracket", Bybit "risk limit")."""

    notional_floor: float = Field(ge=0, description="lower edge of the bracket, USD notional (exclusive)")
    notional_cap: float = Field(gt=0, description="upper edge of the bracket, USD notional (inclusive)")
    max_leverage: float = Field(ge=1, description="highest leverage allowed in the bracket; IMR = 1/max_leverage")
    maintenance_margin_rate: float = Field(gt=0, le=1, description="fraction of notional")
    maintenance_amount: float | None = Field(
        None, description="USD deducted from N*MMR ('cum'); derived by continuity when omitted"
    )

    @model_validator(mode="after")
    def _bracket_is_consistent(self) -> Self:
        if self.notional_cap <= self.notional_floor:
            raise rule_error(
                ".notional_cap",
                f"notional_cap {self.notional_cap:g} must be above notional_floor {self.notional_floor:g}",
            )
        imr = 1.0 / self.max_leverage
        if self.maintenance_margin_rate >= imr:
            raise rule_error(
                ".maintenance_margin_rate",
                f"maintenance_margin_rate {self.maintenance_margin_rate:g} must be below the initial rate "
                f"1/max_leverage = {imr:g}, or a position opened at max leverage is liquidatable at once",
            )
        return self


class MarginModel(StrEnum):
    """How a market's margin rates depend on the position; all reduce to a tier table for a given position."""

    TIERED = "tiered"
    """Notional brackets with continuity deductions (Binance, Bybit, OKX, Bitget, Hyperliquid)."""
    OPEN_INTEREST_SCALED = "open_interest_scaled"
    """dYdX v4: one IMF/MMF per liquidity tier; IMF rises linearly to 100% between two open-interest caps."""
    SIZE_PREMIUM = "size_premium"
    """Drift v2: margin ratio rises with sqrt(base size) past a threshold: max(MR, 0.8*MR + imf_factor*sqrt(size))."""


class PerpetualMarket(Sourced):
    """A linear perpetual contract on one venue, margined and settled in the quote currency."""

    symbol: str = Field(min_length=1, description="venue's symbol, e.g. BTCUSDT, BTC-USDT-SWAP, BTC")
    base: str = Field(min_length=1, description="underlying asset, e.g. BTC")
    quote: str = Field("USDT", description="settlement currency")
    tick_size: float = Field(gt=0, description="price increment, quote units")
    lot_size: float = Field(gt=0, description="size increment, base units")
    margin_model: MarginModel = MarginModel.TIERED
    margin_tiers: tuple[MarginTier, ...] = Field(min_length=1)
    margin_table: str | None = Field(
        None, description="the venue's shared margin table these tiers come from (``margin_tables``), if any"
    )
    imf_factor: float = Field(0.0, ge=0, description="Drift size premium factor (size_premium model only)")
    open_interest_lower_cap_usd: float | None = Field(
        None, gt=0, description="dYdX: open interest where IMF starts to rise (open_interest_scaled only)"
    )
    open_interest_upper_cap_usd: float | None = Field(
        None, gt=0, description="dYdX: open interest where IMF reaches 100% (open_interest_scaled only)"
    )
    impact_notional_usd: float | None = Field(
        None, gt=0, description="impact notional for this market's funding premium, overriding the venue's"
    )
    clearance_fee_rate: float | None = Field(
        None, ge=0, le=0.05, description="liquidation fee for this market, overriding the venue's"
    )
    funding_cap: float | None = Field(
        None, gt=0, description="per-market cap on |funding rate| per interval, overriding the venue's rule"
    )

    @model_validator(mode="after")
    def _tiers_are_contiguous(self) -> Self:
        tiers = self.margin_tiers
        if tiers[0].notional_floor != 0:
            raise rule_error(
                ".margin_tiers[0].notional_floor", f"first tier must start at 0, not {tiers[0].notional_floor:g}"
            )
        for i in range(1, len(tiers)):
            prev, cur = tiers[i - 1], tiers[i]
            where = f".margin_tiers[{i}]"
            if cur.notional_floor != prev.notional_cap:
                rel = "below" if cur.notional_floor < prev.notional_cap else "above"
                raise rule_error(
                    f"{where}.notional_floor",
                    f"notional_floor {cur.notional_floor:g} is {rel} the previous tier's cap "
                    f"{prev.notional_cap:g}; tiers must be contiguous",
                )
            if cur.maintenance_margin_rate < prev.maintenance_margin_rate:
                raise rule_error(
                    f"{where}.maintenance_margin_rate",
                    f"maintenance_margin_rate {cur.maintenance_margin_rate:g} is below the previous tier's "
                    f"{prev.maintenance_margin_rate:g}; rates must not fall as notional grows",
                )
            if cur.max_leverage > prev.max_leverage:
                raise rule_error(
                    f"{where}.max_leverage",
                    f"max_leverage {cur.max_leverage:g} is above the previous tier's {prev.max_leverage:g}; "
                    "leverage must not rise as notional grows",
                )
        table = TierTable.from_rates(
            floors=[t.notional_floor for t in tiers],
            caps=[t.notional_cap for t in tiers],
            maintenance_margin_rates=[t.maintenance_margin_rate for t in tiers],
            max_leverages=[t.max_leverage for t in tiers],
        )
        for i, tier in enumerate(tiers):
            if tier.maintenance_amount is None:
                continue
            expected = float(table.maintenance_amount[i])
            if abs(tier.maintenance_amount - expected) > CONTINUITY_TOLERANCE_USD:
                raise rule_error(
                    f".margin_tiers[{i}].maintenance_amount",
                    f"maintenance_amount {tier.maintenance_amount:g} breaks continuity: the tiers below give "
                    f"{expected:g} (cum_k = cum_k-1 + floor_k * (MMR_k - MMR_k-1))",
                )
        if self.margin_model is MarginModel.OPEN_INTEREST_SCALED:
            lo, hi = self.open_interest_lower_cap_usd, self.open_interest_upper_cap_usd
            if (lo is None) != (hi is None) or (lo is not None and hi is not None and hi <= lo):
                raise rule_error(
                    ".open_interest_upper_cap_usd",
                    "open_interest_scaled needs both caps or neither, with upper above lower",
                )
        if self.margin_model is MarginModel.SIZE_PREMIUM and len(tiers) != 1:
            raise rule_error(".margin_tiers", "size_premium markets take exactly one base tier (MR0)")
        return self

    def tier_table(self) -> TierTable:
        """The margin tiers as arrays, for the rule functions (maintenance amounts by continuity)."""
        tiers = self.margin_tiers
        return TierTable.from_rates(
            floors=[t.notional_floor for t in tiers],
            caps=[t.notional_cap for t in tiers],
            maintenance_margin_rates=[t.maintenance_margin_rate for t in tiers],
            max_leverages=[t.max_leverage for t in tiers],
        )

    def tier_table_for_size(self, size: float) -> TierTable:
        """The tier table that applies to a position of ``size`` base units (Drift's size premium)."""
        if self.margin_model is not MarginModel.SIZE_PREMIUM:
            return self.tier_table()
        base = self.margin_tiers[0]
        from perpstress.rules.margin import size_premium_margin_ratio

        mmr = float(size_premium_margin_ratio(base.maintenance_margin_rate, self.imf_factor, size))
        imr = float(size_premium_margin_ratio(1.0 / base.max_leverage, self.imf_factor, size))
        return TierTable.from_rates(
            floors=[0.0], caps=[base.notional_cap], maintenance_margin_rates=[mmr], max_leverages=[1.0 / imr]
        )

    def max_notional(self) -> float:
        return float(self.margin_tiers[-1].notional_cap)


class MarginTable(Sourced):
    """A margin table a venue applies to a group of its perpetuals (Binance announces one table for HIVE, POWR,
    SIREN ...; Bybit one for its small caps); a perpetual names it with ``margin_table`` instead of listing tiers."""

    symbols: tuple[str, ...] = Field((), description="the symbols the source names for this table")
    tiers: tuple[MarginTier, ...] = Field(min_length=1)


class SpotMarket(Sourced):
    """A spot order book on one venue (used for indices and collateral prices)."""

    symbol: str = Field(min_length=1)
    base: str = Field(min_length=1)
    quote: str = Field("USDT")
    tick_size: float = Field(gt=0)
    lot_size: float = Field(gt=0)


__all__ = ["MarginModel", "MarginTable", "MarginTier", "PerpetualMarket", "SpotMarket"]
