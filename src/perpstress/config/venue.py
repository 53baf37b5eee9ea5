"""A venue's risk stack as typed, frozen configuration: mark, funding, fees, liquidation, insurance fund, ADL.

Mechanisms that differ between venues are discriminated unions keyed by the rule's name (``procedure`` for
liquidation, ``rule`` for ADL), so each variant carries only its own parameters. A venue in a scenario may name a
``preset`` (a data file shipped in ``perpstress/presets``); the scenario's keys are deep-merged over it.
"""

from __future__ import annotations

import copy
import functools
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from perpstress.config.base import FrozenModel, Sourced, rule_error
from perpstress.config.markets import MarginTable, PerpetualMarket, SpotMarket


class PriceReference(StrEnum):
    """Which price a venue margins and liquidates on."""

    MARK = "mark"
    ORACLE = "oracle"


class MarkMethod(StrEnum):
    MEDIAN_OF_THREE = "median_of_three"
    INDEX_PLUS_BASIS_MA = "index_plus_basis_ma"
    FAIR_PRICE = "fair_price"
    HYPERLIQUID_MEDIAN = "hyperliquid_median"
    ORACLE = "oracle"


class MarkConfig(Sourced):
    """How the venue computes its mark price (perpstress.rules.mark)."""

    method: MarkMethod
    update_interval_s: float = Field(1.0, gt=0, description="seconds between mark updates")
    basis_window_s: float | None = Field(None, gt=0, description="moving-average window of the basis, seconds")
    basis_sample_interval_s: float = Field(1.0, gt=0, description="seconds between basis samples")
    ema_time_constant_s: float | None = Field(None, gt=0, description="Hyperliquid: EMA time constant, seconds")

    @model_validator(mode="after")
    def _method_has_its_parameters(self) -> Self:
        needs_window = {MarkMethod.MEDIAN_OF_THREE, MarkMethod.INDEX_PLUS_BASIS_MA}
        if self.method in needs_window and self.basis_window_s is None:
            raise rule_error(".basis_window_s", f"method {self.method.value} needs basis_window_s")
        if self.method is MarkMethod.HYPERLIQUID_MEDIAN and self.ema_time_constant_s is None:
            raise rule_error(".ema_time_constant_s", "method hyperliquid_median needs ema_time_constant_s")
        return self


class FundingMethod(StrEnum):
    PREMIUM_INTEREST_CLAMP = "premium_interest_clamp"
    """``F_8h = P + clamp(Ir - P, +-c)`` scaled to the interval (Binance, Bybit, BitMEX, Hyperliquid)."""
    MID_PREMIUM_MA = "mid_premium_ma"
    """OKX: clamp(MA(mid premium - Ir), floor, cap)."""
    DYDX_PREMIUM_VOTES = "dydx_premium_votes"
    DRIFT_TWAP_SPREAD = "drift_twap_spread"


class PremiumAveraging(StrEnum):
    LINEAR_WEIGHTED = "linear_weighted"
    MEAN = "mean"


class FundingCap(StrEnum):
    MMR_MULTIPLE = "mmr_multiple"
    """Binance: ``|F| <= k * MMR``."""
    FIXED = "fixed"
    """A fixed cap per interval (Bybit per symbol, OKX per asset, Hyperliquid 4 %/h)."""
    MARGIN_FRACTION_MULTIPLE = "margin_fraction_multiple"
    """dYdX: ``|R_8h| <= k * (IMF - MMF)``."""
    DRIFT_CONTRACT_TIER = "drift_contract_tier"
    """Drift: spread clamped to oracle TWAP / (33, 20 or 10) by contract tier."""


class FundingConfig(Sourced):
    """How funding rates are computed and when they are paid (perpstress.rules.funding)."""

    method: FundingMethod
    interval_hours: float = Field(gt=0, le=24, description="hours between settlements")
    sample_interval_s: float = Field(gt=0, description="seconds between premium samples")
    averaging: PremiumAveraging = PremiumAveraging.MEAN
    interest_rate_8h: float = Field(0.0001, ge=-0.01, le=0.01, description="interest component per 8 h")
    interest_clamp_8h: float = Field(0.0005, ge=0, le=0.01, description="clamp on (Ir - P) per 8 h")
    impact_notional_usd: float | None = Field(None, gt=0, description="impact notional for impact bid/ask, USD")
    impact_margin_usd: float | None = Field(
        None, gt=0, description="Binance: impact notional = this margin / IMR at the market's max leverage"
    )
    cap: FundingCap
    cap_value: float = Field(gt=0, description="k for multiples, the rate for fixed caps (per interval)")
    payment_price: PriceReference = PriceReference.MARK
    drift_contract_tier: Literal["A", "B", "C", "speculative"] | None = None

    @model_validator(mode="after")
    def _cap_matches_method(self) -> Self:
        if self.cap is FundingCap.DRIFT_CONTRACT_TIER and self.drift_contract_tier is None:
            raise rule_error(".drift_contract_tier", "cap drift_contract_tier needs drift_contract_tier")
        if self.method is FundingMethod.DRIFT_TWAP_SPREAD and self.cap is not FundingCap.DRIFT_CONTRACT_TIER:
            raise rule_error(".cap", "method drift_twap_spread is capped by drift_contract_tier")
        if self.cap is FundingCap.FIXED and self.cap_value >= 1:
            raise rule_error(".cap_value", f"a fixed funding cap of {self.cap_value:g} per interval is >= 100%")
        return self


class FeeConfig(Sourced):
    """Trading fees at the venue's base (lowest-volume) tier, fractions of notional."""

    maker_rate: float = Field(ge=-0.001, le=0.01)
    taker_rate: float = Field(ge=0, le=0.01)


class IocThenTakeover(Sourced):
    """Binance USD-M: cancel orders, one IOC order into the book (partial where that restores compliance), then the
    insurance fund takes the rest over at the bankruptcy price. The clearance fee goes to the insurance fund."""

    procedure: Literal["ioc_then_takeover"] = "ioc_then_takeover"
    clearance_fee_rate: float = Field(ge=0, le=0.05, description="fraction of liquidated notional, to the IF")
    max_price_deviation: float = Field(
        0.05, gt=0, le=1, description="IOC limit: worst fill as a fraction away from mark (simulation bound)"
    )


class TierStepThenTakeover(Sourced):
    """Bybit, BitMEX, OKX, Bitget: reduce the position by ``tiers_to_drop`` margin tiers with an order into the book
    (fill-or-kill or IOC), re-check, and take over the rest at the bankruptcy price when that fails or the position
    is in the lowest tiers."""

    procedure: Literal["tier_step_then_takeover"] = "tier_step_then_takeover"
    tiers_to_drop: int = Field(ge=1, le=10)
    order: Literal["fok", "ioc"] = "fok"
    full_takeover_below_tier: int = Field(
        1, ge=0, description="positions in tiers below this index (0-based) are taken over whole"
    )
    clearance_fee_rate: float = Field(0.0, ge=0, le=0.05)
    recheck_s: float = Field(0.0, ge=0, description="seconds before the next partial step (OKX ~60 s)")
    max_price_deviation: float = Field(0.05, gt=0, le=1)


class MarketThenBackstop(Sourced):
    """Hyperliquid: market orders for the whole position (20 % slices above a size, with a cooldown), no clearance
    fee; below ``backstop_mm_fraction`` of maintenance the liquidator vault takes the account over."""

    procedure: Literal["market_then_backstop"] = "market_then_backstop"
    partial_threshold_usd: float = Field(gt=0, description="positions above this notional are liquidated in slices")
    partial_fraction: float = Field(gt=0, le=1, description="slice of the position per market liquidation")
    cooldown_s: float = Field(ge=0, description="after a partial, later liquidations are for the whole position")
    backstop_mm_fraction: float = Field(gt=0, lt=1, description="vault takes over below this fraction of MM")
    max_price_deviation: float = Field(0.05, gt=0, le=1)


class FillablePriceIoc(Sourced):
    """dYdX v4: per block, up to ``max_subaccounts_per_block`` liquidatable subaccounts; an IOC liquidation order at
    the fillable price for at most ``max_position_portion`` of the position; liquidation fee to the IF."""

    procedure: Literal["fillable_price_ioc"] = "fillable_price_ioc"
    block_time_s: float = Field(gt=0)
    max_subaccounts_per_block: int = Field(ge=1)
    max_position_portion: float = Field(gt=0, le=1)
    min_position_notional_usd: float = Field(ge=0)
    max_notional_per_block_usd: float = Field(gt=0)
    max_insurance_lost_per_block_usd: float = Field(gt=0)
    max_liquidation_fee_rate: float = Field(ge=0, le=0.1)
    bankruptcy_adjustment: float = Field(gt=0)
    spread_to_maintenance_ratio: float = Field(gt=0)


class KeeperTakeover(Sourced):
    """Drift v2: a keeper takes the position over at ``oracle -+ liquidator_fee``; the user also pays an IF fee;
    the amount freed ramps up over ``liquidation_duration_s``; exit needs MM plus a buffer."""

    procedure: Literal["keeper_takeover"] = "keeper_takeover"
    liquidator_fee_rate: float = Field(ge=0, le=0.1)
    if_fee_rate: float = Field(ge=0, le=0.1)
    initial_fraction: float = Field(gt=0, le=1, description="share of the position a keeper may take at once")
    liquidation_duration_s: float = Field(ge=0, description="seconds over which the share ramps to 100 %")
    margin_buffer_ratio: float = Field(ge=0, le=0.5, description="collateral above MM needed to exit liquidation")
    whole_below_usd: float = Field(ge=0, description="positions or shortfalls below this are taken whole")


LiquidationConfig = Annotated[
    IocThenTakeover | TierStepThenTakeover | MarketThenBackstop | FillablePriceIoc | KeeperTakeover,
    Field(discriminator="procedure"),
]


class InsuranceFundKind(StrEnum):
    FUND = "fund"
    """A venue-owned fund that takes over bankrupt positions and pays gaps (CEXs, dYdX, Drift)."""
    BACKSTOP_VAULT = "backstop_vault"
    """Hyperliquid's liquidator vault (part of HLP): takes accounts over and keeps their remaining margin."""


class InsuranceFundConfig(Sourced):
    """Insurance fund size, scope and the limits that trigger ADL."""

    kind: InsuranceFundKind = InsuranceFundKind.FUND
    initial_usd: float = Field(ge=0, description="balance at the start of a run, USD")
    scope: Literal["venue", "per_market"] = "venue"
    max_takeover_notional_fraction: float | None = Field(
        None, gt=0, description="Binance: net taken-over notional per market at most this fraction of the fund"
    )
    adl_drawdown_fraction: float | None = Field(
        None, gt=0, le=1, description="ADL when the fund falls this fraction below its peak in the window"
    )
    drawdown_window_hours: float | None = Field(None, gt=0)
    per_market_claim_cap_usd: float | None = Field(
        None, ge=0, description="Drift: most a market may draw from the fund"
    )

    @model_validator(mode="after")
    def _drawdown_needs_window(self) -> Self:
        if (self.adl_drawdown_fraction is None) != (self.drawdown_window_hours is None):
            raise rule_error(".drawdown_window_hours", "adl_drawdown_fraction and drawdown_window_hours go together")
        return self


class AdlRanking(StrEnum):
    PNL_LEVERAGE = "pnl_leverage"
    """BitMEX/OKX: PnL% x effective leverage."""
    BINANCE_LEVERAGE_PNL = "binance_leverage_pnl"
    HYPERLIQUID = "hyperliquid"
    """(mark/entry) x notional/account value."""


class AdlPrice(StrEnum):
    BANKRUPTCY = "bankruptcy"
    MARK = "mark"
    PREVIOUS_MARK = "previous_mark"
    ORACLE = "oracle"


class RankedQueueAdl(Sourced):
    """Close profitable opposite positions in score order at ``price`` until the bankrupt size is covered."""

    rule: Literal["ranked_queue"] = "ranked_queue"
    ranking: AdlRanking
    price: AdlPrice
    price_when_fund_empty: AdlPrice | None = Field(
        None, description="OKX: bankruptcy price instead of mark once the fund is near empty"
    )


class RandomScanAdl(Sourced):
    """dYdX v4: offset against opposite positions from a pseudo-random start, at the bankruptcy price."""

    rule: Literal["random_scan"] = "random_scan"
    max_accounts_scanned: int = Field(ge=1)
    price: AdlPrice = AdlPrice.BANKRUPTCY


class SocialisedLossAdl(Sourced):
    """Drift v2: the loss is charged to every open position (long and short) pro rata by size; nothing closes."""

    rule: Literal["socialised_loss"] = "socialised_loss"


class ProRataAdl(Sourced):
    """Chitra et al. (2025) pro-rata families: haircut winners' profits instead of closing a queue.

    ``wealth``: the same fraction of every winner's profit. ``capped``: water-filling with a per-account cap
    ``max_haircut``. ``risk_aware``: haircuts proportional to ``leverage * g(leverage)``, capped.
    """

    rule: Literal["wealth_pro_rata", "capped_pro_rata", "risk_aware_pro_rata"]
    max_haircut: float = Field(1.0, gt=0, le=1, description="cap on the fraction of an account's profit taken")
    price: AdlPrice = AdlPrice.MARK


AdlConfig = Annotated[RankedQueueAdl | RandomScanAdl | SocialisedLossAdl | ProRataAdl, Field(discriminator="rule")]


class IndexMethod(StrEnum):
    """How a venue combines its constituents' spot prices into an index (perpstress.rules.index)."""

    WEIGHTED_MEAN = "weighted_mean"
    """Binance, Bybit, OKX, Bitget: weighted average of constituents, outliers capped at the median's band."""
    WEIGHTED_MEDIAN = "weighted_median"
    """Hyperliquid's oracle: weighted median of venues' spot mids."""
    MEDIAN = "median"
    """dYdX, Drift (oracle networks): median of sources."""


class IndexConfig(Sourced):
    """The venue's spot index: which venues' spot prices it takes, with what weights, and how it guards them.

    A constituent that is a venue of the scenario with a spot book for the asset contributes that book's mid; any
    other constituent (a venue not modelled, e.g. Coinbase) tracks the exogenous fundamental value. A constituent
    whose book has had no two-sided quote for ``stale_after_s`` gets weight 0; one that deviates from the median
    of all constituents by more than ``outlier_band`` is capped at the band's edge (weighted-mean method).
    """

    method: IndexMethod = IndexMethod.WEIGHTED_MEAN
    constituents: dict[str, float] = Field(
        default_factory=lambda: {"external": 1.0}, description="source venue -> weight (not normalised)"
    )
    outlier_band: float = Field(0.03, gt=0, lt=1, description="cap a source this fraction away from the median")
    outlier_band_by_asset: dict[str, float] = Field(default_factory=dict, description="e.g. BTC and ETH: 0.01")
    constituents_by_asset: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="asset -> {source venue: weight}: an asset whose index takes other sources than the venue's "
        "usual list (a small cap listed on fewer spot venues)",
    )
    stale_after_s: float = Field(300.0, gt=0, description="a source not updated this long gets weight 0")

    @model_validator(mode="after")
    def _weights_positive(self) -> Self:
        lists = {".constituents": self.constituents} | {
            f".constituents_by_asset.{a}": c for a, c in self.constituents_by_asset.items()
        }
        for where, constituents in lists.items():
            for name, w in constituents.items():
                if not w > 0:
                    raise rule_error(f"{where}.{name}", f"weight {w:g} must be positive")
            if not constituents:
                raise rule_error(where, "an index needs at least one constituent")
        return self

    def band(self, asset: str) -> float:
        return self.outlier_band_by_asset.get(asset, self.outlier_band)

    def constituents_of(self, asset: str) -> dict[str, float]:
        """The sources of ``asset``'s index: its own list where the venue gives one, else the venue's."""
        return self.constituents_by_asset.get(asset, self.constituents)


class LiquidationFeedRule(StrEnum):
    """What a venue's public liquidation feed shows of its liquidation orders (``perpstress.rules.feed``)."""

    EVERY_ORDER = "every_order"
    """Every liquidation order is published (Bybit's ``allLiquidation``; on-chain venues' fills)."""
    LATEST_PER_INTERVAL = "latest_per_interval"
    """Per symbol and interval, only the latest liquidation order is published (Binance ``forceOrder``, OKX)."""


class LiquidationFeedConfig(Sourced):
    """The venue's public liquidation feed: the rule that decides which liquidation orders the public sees.

    Public tallies of a crash are sums over these feeds, so on a venue that throttles its feed they are floors.
    The rule changes nothing in the simulation; it is applied to the recorded liquidations after a run.
    """

    rule: LiquidationFeedRule = LiquidationFeedRule.EVERY_ORDER
    interval_s: float = Field(
        1.0, gt=0, description="latest_per_interval: the interval, seconds (windows from the epoch)"
    )


class CollateralMethod(StrEnum):
    """How a venue prices a collateral asset for margin (shared/reference/exchange-rules.md sections 3.8, 7)."""

    INDEX = "index"
    """An external index of the asset: its fundamental value (robust to the venue's own book)."""
    OWN_BOOK = "own_book"
    """The mid of the venue's own spot book for the asset: depegs when that book is thin and sold."""
    CONVERSION_RATE = "conversion_rate"
    """``rate x`` the underlying's fundamental value (redemption or staking rate; Binance after 2025-10-14)."""
    MIX = "mix"
    """``book_weight x`` own book ``+ (1 - book_weight) x`` conversion rate (Binance wBETH/BNSOL before the fix)."""


class CollateralRule(Sourced):
    """One collateral asset on one venue: price method and haircut (``collateral ratio = 1 - haircut``)."""

    method: CollateralMethod
    haircut: float = Field(0.0, ge=0, lt=1, description="margin value = quantity x price x (1 - haircut)")
    spot_symbol: str | None = Field(None, description="the venue's spot market of the asset (own_book, mix)")
    underlying: str = Field("USDT", description="asset the conversion rate refers to (USDT = 1 USD)")
    rate: float = Field(1.0, gt=0, description="units of the underlying per unit of collateral")
    book_weight: float = Field(0.0, ge=0, le=1, description="mix: weight of the own book")
    price_floor: float = Field(0.0, ge=0, description="minimum price used for margin (Binance's USDe floor)")

    @model_validator(mode="after")
    def _book_method_has_book(self) -> Self:
        if self.method in (CollateralMethod.OWN_BOOK, CollateralMethod.MIX) and self.spot_symbol is None:
            raise rule_error(".spot_symbol", f"method {self.method.value} prices off a spot book: name spot_symbol")
        if self.method is CollateralMethod.MIX and not 0 < self.book_weight < 1:
            raise rule_error(".book_weight", f"method mix needs 0 < book_weight < 1 (got {self.book_weight:g})")
        return self


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class VenueConfig(FrozenModel):
    """One venue: its rules and its markets. ``preset`` names the data file this was resolved from."""

    preset: str | None = Field(None, description="preset this venue was built on (perpstress presets list)")
    name: str = Field(min_length=1, description="venue id used in outputs, e.g. binance")
    display_name: str = Field(min_length=1)
    kind: Literal["cex", "dex"]
    liquidation_price: PriceReference
    margin_modes: tuple[MarginMode, ...] = (MarginMode.CROSS, MarginMode.ISOLATED)
    mark: MarkConfig
    funding: FundingConfig
    fees: FeeConfig
    liquidation: LiquidationConfig
    insurance_fund: InsuranceFundConfig
    adl: AdlConfig
    liquidation_feed: LiquidationFeedConfig = Field(
        default_factory=LiquidationFeedConfig, description="what the venue's public liquidation feed shows"
    )
    perpetuals: dict[str, PerpetualMarket] = Field(min_length=1)
    margin_tables: dict[str, MarginTable] = Field(
        default_factory=dict, description="margin tables shared by several perpetuals, keyed by name"
    )
    spot: dict[str, SpotMarket] = Field(default_factory=dict)
    default_symbols: tuple[str, ...] | None = Field(
        None, description="the perpetuals a scenario gets when it names none (all when unset)"
    )
    symbols: tuple[str, ...] | None = Field(None, description="keep only these perpetuals of the preset")
    spot_symbols: tuple[str, ...] = Field((), description="spot markets of the venue simulated with their own books")
    index: IndexConfig = Field(default_factory=IndexConfig, description="the venue's spot index for its perpetuals")
    collateral: dict[str, CollateralRule] = Field(
        default_factory=dict, description="non-USD collateral assets accepted, keyed by asset (USDE, WBETH ...)"
    )
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _resolve_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            from perpstress.errors import PerpstressError

            try:
                base = canonical_preset(str(data["preset"]))
            except PerpstressError as exc:
                raise rule_error(".preset", str(exc)) from None
            tables = {**base.get("margin_tables", {}), **(data.get("margin_tables") or {})}
            data = merge_over_preset(base, expand_margin_tables(data, tables))
        return expand_margin_tables(data)

    @model_validator(mode="after")
    def _markets_agree(self) -> Self:
        for key, market in self.perpetuals.items():
            if key != market.symbol:
                raise rule_error(f".perpetuals.{key}.symbol", f"symbol {market.symbol!r} differs from its key {key!r}")
        for key, spot in self.spot.items():
            if key != spot.symbol:
                raise rule_error(f".spot.{key}.symbol", f"symbol {spot.symbol!r} differs from its key {key!r}")
        missing_spot = [s for s in self.spot_symbols if s not in self.spot]
        if missing_spot:
            known = ", ".join(sorted(self.spot)) or "none"
            raise rule_error(
                ".spot_symbols", f"{', '.join(missing_spot)} not among this venue's spot markets ({known})"
            )
        for asset, rule in self.collateral.items():
            if rule.spot_symbol is not None and rule.spot_symbol not in self.spot:
                known = ", ".join(sorted(self.spot)) or "none"
                raise rule_error(f".collateral.{asset}.spot_symbol", f"no spot market {rule.spot_symbol} ({known})")
            if rule.spot_symbol is not None and self.spot[rule.spot_symbol].base != asset:
                raise rule_error(
                    f".collateral.{asset}.spot_symbol",
                    f"{rule.spot_symbol} trades {self.spot[rule.spot_symbol].base}, not {asset}",
                )
        for field in ("symbols", "default_symbols"):
            chosen = getattr(self, field)
            missing = [s for s in chosen or () if s not in self.perpetuals]
            if missing:
                known = ", ".join(sorted(self.perpetuals))
                raise rule_error(f".{field}", f"{', '.join(missing)} not among this venue's perpetuals ({known})")
        return self

    def rule_sections(self) -> list[tuple[str, Sourced]]:
        """The venue's sourced rule tables, labelled as in the scenario file."""
        return [
            ("mark", self.mark),
            ("funding", self.funding),
            ("fees", self.fees),
            ("liquidation", self.liquidation),
            ("insurance_fund", self.insurance_fund),
            ("adl", self.adl),
            ("liquidation_feed", self.liquidation_feed),
            ("index", self.index),
            *((f"collateral.{asset}", rule) for asset, rule in self.collateral.items()),
        ]

    def markets(self) -> dict[str, PerpetualMarket]:
        """The perpetual markets in use: those named in ``symbols``, else the preset's ``default_symbols``, else
        all, in that list's order."""
        chosen = self.symbols if self.symbols is not None else self.default_symbols
        if chosen is None:
            return dict(self.perpetuals)
        return {s: self.perpetuals[s] for s in chosen}

    def spot_markets(self) -> dict[str, SpotMarket]:
        """The spot markets simulated with books (those named in ``spot_symbols``)."""
        return {s: self.spot[s] for s in self.spot_symbols}

    def market(self, symbol: str) -> PerpetualMarket:
        from perpstress.errors import UnknownNameError

        markets = self.markets()
        if symbol not in markets:
            raise UnknownNameError(f"symbol on {self.name}", symbol, list(markets))
        return markets[symbol]


def expand_margin_tables(data: Any, tables: dict[str, Any] | None = None) -> Any:
    """Give every perpetual that names a ``margin_table`` (and lists no tiers of its own) that table's tiers;
    ``tables`` defaults to the data's own ``margin_tables``.

    Tiers listed beside a table's name win; the name then stays only if they are the table's own tiers, so a
    market never claims a table it does not follow."""
    if not isinstance(data, dict) or not isinstance(data.get("perpetuals"), dict):
        return data
    if tables is None:
        tables = data.get("margin_tables") or {}
    perps = {}
    for key, market in data["perpetuals"].items():
        name = market.get("margin_table") if isinstance(market, dict) else None
        if isinstance(name, str):
            table = tables.get(name)
            if not isinstance(table, dict):
                known = ", ".join(sorted(tables)) or "none"
                raise rule_error(f".perpetuals.{key}.margin_table", f"no margin table {name!r} ({known})")
            tiers = table.get("tiers")
            if "margin_tiers" not in market:
                market = {**market, "margin_tiers": copy.deepcopy(tiers)}
            elif market["margin_tiers"] != tiers:
                market = {k: v for k, v in market.items() if k != "margin_table"}
        perps[key] = market
    return {**data, "perpetuals": perps}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: tables merge key by key, anything else (lists included) replaces.

    A liquidation or ADL table that switches its ``procedure``/``rule`` replaces the preset's table whole, since
    the other variant's parameters would not apply.
    """
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        switches = (
            isinstance(old, dict)
            and isinstance(value, dict)
            and any(k in value and k in old and value[k] != old[k] for k in ("procedure", "rule"))
        )
        if isinstance(old, dict) and isinstance(value, dict) and not switches:
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def canonical_preset(name: str) -> dict[str, Any]:
    """Preset ``name`` validated and dumped with every default written out (a fresh copy).

    Overrides are compared with this form, so a resolved scenario that spells out a default the preset file left
    implicit is not mistaken for a scenario change."""
    return copy.deepcopy(_canonical_preset(name))


@functools.cache
def _canonical_preset(name: str) -> dict[str, Any]:
    from perpstress.presets import load_preset_data

    venue = VenueConfig.model_validate(load_preset_data(name))
    dumped: dict[str, Any] = drop_none(venue.model_dump(mode="json"))
    return dumped


def drop_none(value: Any) -> Any:
    """TOML has no null: drop keys whose value is None (they are defaults when loaded again)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


SCENARIO_SOURCE = {"ref": "scenario override", "confidence": "scenario"}
_PROVENANCE_KEYS = frozenset({"source", "field_sources"})


def merge_over_preset(preset: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """:func:`deep_merge`, recording provenance: a value a scenario changes in a sourced preset table no longer
    claims the preset's source; it is tagged ``scenario`` in that table's ``field_sources`` unless the scenario
    names its own. Tables a scenario adds or replaces whole default to the ``scenario`` source."""
    merged = deep_merge(preset, override)
    _tag_overrides(preset, override, merged)
    return merged


def _tag_overrides(base: dict[str, Any], override: dict[str, Any], merged: dict[str, Any]) -> None:
    own = override.get("field_sources", {})
    for key, value in override.items():
        if key in _PROVENANCE_KEYS:
            continue
        old = base.get(key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            replaced = not isinstance(old, dict) or any(
                k in value and value[k] != old.get(k) for k in ("procedure", "rule")
            )
            _tag_overrides({} if replaced else old, value, merged[key])  # type: ignore[arg-type]
        elif "source" in base and value != old and key not in own:
            merged["field_sources"] = {**merged.get("field_sources", {}), key: dict(SCENARIO_SOURCE)}
