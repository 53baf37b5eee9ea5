"""Agents' parameters: market makers and noise takers. Each field says what it represents."""

from __future__ import annotations

from enum import StrEnum
from typing import Self, TypeVar

from pydantic import Field, field_validator, model_validator

from perpstress.config.base import FrozenModel, rule_error

Config = TypeVar("Config", bound=FrozenModel)


def with_override(config: Config, override: FrozenModel | None) -> Config:
    """``config`` with the fields ``override`` sets (its unset ones are None) in place of its own; itself when there
    is no override."""
    if override is None:
        return config
    return config.model_copy(update=override.model_dump(exclude_none=True))


class SpotFairValue(StrEnum):
    """What a spot book's makers quote around."""

    FUNDAMENTAL = "fundamental"
    """The asset's exogenous fundamental value (the rest of the market)."""
    PERPETUAL_MARK = "perpetual_mark"
    """The mark of the venue's own perpetual in the asset (perp-led price discovery: the maker hedges its spot
    inventory in the perpetual); the fundamental value where the venue lists no such perpetual."""


class MakerMarketOverride(FrozenModel):
    """Per-market sizes for the makers of one market (``venue:SYMBOL``); unset fields keep the defaults."""

    capital_usd: float | None = Field(None, gt=0)
    depth_usd: float | None = Field(None, gt=0)
    inventory_limit_usd: float | None = Field(None, gt=0)
    loss_limit_usd: float | None = Field(None, gt=0)
    vol_ref: float | None = Field(None, gt=0)
    spread_vol_elasticity: float | None = Field(None, ge=0)
    size_vol_elasticity: float | None = Field(None, ge=0)
    spot_fair_value: SpotFairValue | None = None
    spot_anchor_half_life_s: float | None = Field(None, gt=0)


class RestingMarketOverride(FrozenModel):
    """Per-market resting orders (``venue:SYMBOL``); unset fields keep the defaults."""

    depth_multiple: float | None = Field(None, ge=0)
    outer: float | None = Field(None, gt=0, lt=1)


class RestingOrdersConfig(FrozenModel):
    """Limit orders resting beyond the makers' ladders, posted once before the run by participants who are not
    market makers (perpstress.mechanisms.agents.resting): they are never moved, refreshed or withdrawn, so they are
    what a book still holds when its makers have left.

    Per market and side, ``levels`` orders from ``inner`` to ``outer`` away from the start price, spaced
    geometrically with equal notional each (so the notional per unit of log-distance is even), ``depth_multiple``
    times the market's makers' calm depth per side in all. Fills go to one account per market that is never
    margin-checked (it stands for many small unlevered holders).
    """

    levels: int = Field(20, ge=1, le=200)
    inner: float = Field(0.01, gt=0, lt=1, description="distance of the nearest order from the start price")
    outer: float = Field(0.05, gt=0, lt=1, description="distance of the farthest order from the start price")
    depth_multiple: float = Field(
        0.4, ge=0, description="notional per side over the makers' calm depth per side (per_market x depth_usd)"
    )
    markets: dict[str, RestingMarketOverride] = Field(default_factory=dict, description="per venue:SYMBOL")

    @model_validator(mode="after")
    def _inner_below_outer(self) -> Self:
        outer = [self.outer, *(o.outer for o in self.markets.values() if o.outer is not None)]
        if min(outer) <= self.inner:
            raise rule_error(".outer", f"outer {min(outer):g} must be beyond inner {self.inner:g}")
        return self

    def for_market(self, key: str) -> RestingOrdersConfig:
        """This config with ``key``'s overrides applied."""
        return with_override(self, self.markets.get(key))


class MakerHedge(FrozenModel):
    """The makers of one perpetual hedge the inventory they take on with a position in the same asset's perpetual on
    another venue, held by one hedge account there (perpstress.mechanisms.agents.maker_hedges)."""

    market: str = Field(description="venue:SYMBOL whose makers hedge their inventory")
    hedge: str = Field(description="venue:SYMBOL on another venue where the hedge is held")
    ratio: float = Field(1.0, gt=0, le=1, description="share of the makers' inventory hedged")
    capital_usd: float = Field(gt=0, description="the hedge account's margin on the hedge venue, USD")
    band_usd: float = Field(250_000.0, gt=0, description="rehedge when the hedge is this far from its target, USD")
    clip_usd: float = Field(5_000_000.0, gt=0, description="largest hedge order per check, USD")
    max_leverage: float = Field(10.0, gt=0, description="the hedge stops growing at this notional / equity")
    check_interval_s: float = Field(1.0, gt=0, description="seconds between the hedger's checks")
    rehedge_after_s: float | None = Field(
        60.0, ge=0, description="after a liquidation or ADL closed part of the hedge, wait this long; none: never"
    )
    limit_fraction: float = Field(0.01, gt=0, lt=0.5, description="hedge orders limited this far past mark")


class MarketMakerConfig(FrozenModel):
    """How a market maker quotes and when it pulls back (perpstress.mechanisms.market_makers).

    Calm state: ``levels`` price levels a side, the first ``half_spread_bps`` from fair value, then every
    ``level_spacing_bps``, holding ``depth_usd`` a side in total, more at the outer levels.
    """

    per_market: int = Field(3, ge=1, le=100, description="market makers quoting each market")
    capital_usd: float = Field(gt=0, description="each maker's margin capital per market, USD")
    levels: int = Field(20, ge=1, le=200)
    half_spread_bps: float = Field(1.0, gt=0, description="calm distance of the best quote from fair value")
    level_spacing_bps: float = Field(5.0, gt=0, description="calm distance between levels")
    depth_usd: float = Field(gt=0, description="calm quoted notional per side per maker, USD")
    vol_ref: float = Field(1e-4, gt=0, description="calm realised volatility, log-price per sqrt(second)")
    vol_window_s: float = Field(60.0, gt=0, description="window of the realised-volatility estimate")
    spread_vol_elasticity: float = Field(1.0, ge=0, description="spreads scale as (vol / vol_ref) ** this")
    size_vol_elasticity: float = Field(1.0, ge=0, description="sizes scale as (vol_ref / vol) ** this")
    inventory_limit_usd: float = Field(gt=0, description="at this inventory the side that adds to it is pulled")
    loss_limit_usd: float = Field(
        gt=0, description="withdraw entirely when the drawdown reaches this (or the equity is gone)"
    )
    requote_bps: float = Field(
        0.0,
        ge=0,
        description="requote only when fair value moved this much (or fills, vol, inventory moved); 0: always",
    )
    inventory_skew_bps: float | None = Field(
        None, ge=0, description="shift of the quotes' centre at the inventory limit; none: one half-spread"
    )
    inventory_skew_permanent: float = Field(
        1.0,
        ge=0,
        le=1,
        description="share of the inventory skew that stays once the maker has laid the inventory off elsewhere "
        "(1: the skew follows the whole inventory, for ever)",
    )
    inventory_skew_half_life_s: float = Field(
        300.0, gt=0, description="the rest of the skew fades with this half-life after the inventory was taken on"
    )
    lay_off: bool = Field(
        False,
        description="makers lay their inventory off outside the venues: each step the share 1 - 0.5 ** (dt / "
        "inventory_skew_half_life_s) of it leaves, traded at their fair value with the market's outside account, "
        "so limits and skew read what they still hold (needs inventory_skew_permanent = 1)",
    )
    withdraws: bool = Field(
        True,
        description="makers withdraw on volatility, drawdown or ADL exposure (false: the counterfactual of makers "
        "that never withdraw; they still widen, thin and pull the side that adds to a full inventory)",
    )
    withdraw_vol_multiple: float = Field(8.0, gt=1, description="withdraw when vol exceeds vol_ref times this")
    return_vol_multiple: float = Field(3.0, gt=0, description="come back only when vol is below vol_ref times this")
    adl_exposure_limit: float = Field(
        0.5, gt=0, le=1, description="withdraw when ADL has recently closed this share of the maker's position"
    )
    return_half_life_s: float = Field(300.0, gt=0, description="after a withdrawal, size returns with this half-life")
    sweep_size_cut: float = Field(
        0.0,
        ge=0,
        le=1,
        description="after fills took a share f of its calm depth, a maker's size is cut by this x f (0: it posts "
        "its full size again every step)",
    )
    refill_half_life_s: float = Field(10.0, gt=0, description="a swept ladder's size grows back with this half-life")
    spot_fair_value: SpotFairValue = Field(
        SpotFairValue.FUNDAMENTAL, description="what spot books' makers quote around (perpetuals': the index)"
    )
    spot_anchor_half_life_s: float | None = Field(
        None,
        gt=0,
        description="with spot_fair_value = perpetual_mark, the half-life with which the spot market outside the "
        "scenario's venues pulls a spot book's fair value back to the fundamental value (none: nothing does)",
    )
    markets: dict[str, MakerMarketOverride] = Field(default_factory=dict, description="per venue:SYMBOL sizes")
    hedges: tuple[MakerHedge, ...] = Field(
        (), description="makers hedging their inventory on another venue (none: makers hold it unhedged)"
    )

    @model_validator(mode="after")
    def _lay_off_reads_the_whole_inventory(self) -> Self:
        if self.lay_off and self.inventory_skew_permanent != 1.0:
            raise rule_error(
                ".inventory_skew_permanent",
                f"with lay_off the inventory itself leaves, so the skew follows all of what is left: "
                f"inventory_skew_permanent must be 1, not {self.inventory_skew_permanent:g}",
            )
        return self

    @model_validator(mode="after")
    def _return_below_withdraw(self) -> Self:
        if self.return_vol_multiple >= self.withdraw_vol_multiple:
            raise rule_error(
                ".return_vol_multiple",
                f"return_vol_multiple {self.return_vol_multiple:g} must be below withdraw_vol_multiple "
                f"{self.withdraw_vol_multiple:g}, or makers flicker in and out",
            )
        return self

    def for_market(self, key: str) -> MarketMakerConfig:
        """This config with ``key``'s overrides applied."""
        return with_override(self, self.markets.get(key))


class TakerMarketOverride(FrozenModel):
    """Noise flow in one market (``venue:SYMBOL``, spot markets as ``venue:BASE/QUOTE``)."""

    rate_per_s: float | None = Field(None, ge=0, le=1000)
    median_usd: float | None = Field(None, gt=0)
    buy_bias: float = Field(0.0, ge=-0.5, le=0.5, description="extra probability of buying, calm or not")
    sell_bias_after_shock: float | None = Field(None, ge=-0.5, le=0.5)


class NoiseTakerConfig(FrozenModel):
    """Uninformed market orders: Poisson arrivals, log-normal sizes, buy or sell with equal odds."""

    rate_per_s: float = Field(0.5, ge=0, le=1000, description="orders per second per market")
    median_usd: float = Field(5000.0, gt=0)
    sigma: float = Field(1.0, ge=0, description="log-sd of order size")
    sell_bias_after_shock: float = Field(
        0.0, ge=-0.5, le=0.5, description="extra probability of selling while risk appetite is below 1"
    )
    markets: dict[str, TakerMarketOverride] = Field(default_factory=dict, description="per-market flow")

    def for_market(self, key: str) -> tuple[float, float, float, float]:
        """``(rate_per_s, median_usd, buy_bias, sell_bias_after_shock)`` in market ``key``."""
        over = self.markets.get(key)
        if over is None:
            return self.rate_per_s, self.median_usd, 0.0, self.sell_bias_after_shock
        return (
            self.rate_per_s if over.rate_per_s is None else over.rate_per_s,
            self.median_usd if over.median_usd is None else over.median_usd,
            over.buy_bias,
            self.sell_bias_after_shock if over.sell_bias_after_shock is None else over.sell_bias_after_shock,
        )


class BasisArbitrage(FrozenModel):
    """A basis trader on one venue: short the perpetual and long spot when the perp is rich, the reverse when
    cheap. Holds a futures account and a spot account on the venue, each with ``capital_usd``."""

    perpetual: str = Field(description="venue:SYMBOL of the perpetual")
    spot: str = Field(description="venue:BASE/QUOTE of the venue's spot market of the same asset")
    capital_usd: float = Field(gt=0, description="capital in each of the two accounts, USD")
    threshold_bps: float = Field(2.0, ge=0, description="edge required beyond both legs' taker fees")
    clip_usd: float = Field(100_000.0, gt=0, description="largest trade per leg per step, USD")
    max_leverage: float = Field(5.0, gt=0, description="the futures account stops adding at this leverage")
    max_position_usd: float = Field(50e6, gt=0)


class CrossVenueArbitrage(FrozenModel):
    """A cross-venue trader: sells the dearer and buys the cheaper of two perpetuals on the same asset on two
    venues, with ``capital_usd`` on each; rebalances margin between its accounts over the rail."""

    legs: tuple[str, str] = Field(description="the two venue:SYMBOL perpetuals")
    capital_usd: float = Field(gt=0, description="capital on each venue, USD")
    capital_split: tuple[float, float] = Field(
        (1.0, 1.0), description="multipliers of capital_usd on the first and second leg's venue"
    )
    threshold_bps: float = Field(2.0, ge=0, description="edge required beyond both legs' taker fees")
    clip_usd: float = Field(100_000.0, gt=0)
    max_leverage: float = Field(5.0, gt=0)
    max_position_usd: float = Field(50e6, gt=0)
    rebalance_margin_ratio: float = Field(
        0.3, gt=0, lt=1, description="ask for margin from the other venue when MM / equity reaches this"
    )

    @field_validator("capital_split")
    @classmethod
    def _positive_split(cls, value: tuple[float, float]) -> tuple[float, float]:
        if min(value) <= 0:
            raise ValueError("capital_split multipliers must be positive")
        return value


class ArbitrageConfig(FrozenModel):
    basis: tuple[BasisArbitrage, ...] = ()
    cross_venue: tuple[CrossVenueArbitrage, ...] = ()


class HedgedBook(FrozenModel):
    """Owners hedged across two venues: long ``long`` and short ``short`` of equal base size, one account on each
    venue. When a leg's MM / equity reaches ``topup_margin_ratio``, or its ADL rank enters the top
    ``1 - adl_quantile`` of its queue, the owner moves margin to it from the other leg over the rail."""

    long: str = Field(description="venue:SYMBOL of the long leg")
    short: str = Field(description="venue:SYMBOL of the short leg")
    owners: int = Field(10, ge=1, description="hedged owners at scale 1")
    notional_usd: float = Field(gt=0, description="total notional per side across owners, USD")
    leverage: float = Field(5.0, ge=1, description="each leg's initial leverage")
    long_leverage: float | None = Field(None, ge=1, description="the long leg's, when it differs")
    short_leverage: float | None = Field(None, ge=1, description="the short leg's, when it differs")
    reserve_multiple: float = Field(1.0, ge=0, description="each leg's wallet holds initial margin x (1 + this)")
    leverage_sigma: float = Field(0.0, ge=0, description="log-sd of owners' leverage around the book's (both legs)")
    notional_sigma: float = Field(0.5, ge=0, description="log-sd of owners' sizes")
    topup_margin_ratio: float = Field(0.5, gt=0, lt=1)
    topup_fraction: float = Field(0.5, gt=0, le=1, description="share of the other leg's free margin moved")
    adl_quantile: float | None = Field(
        0.8, gt=0, lt=1, description="top up a winning leg whose ADL score ranks above this quantile; none: never"
    )
    check_interval_s: float = Field(5.0, gt=0, description="seconds between the owner's checks")

    def leg_leverage(self) -> tuple[float, float]:
        """(long, short) initial leverage."""
        return (self.long_leverage or self.leverage, self.short_leverage or self.leverage)

    @model_validator(mode="after")
    def _two_venues(self) -> Self:
        if self.long.split(":")[0] == self.short.split(":")[0]:
            raise rule_error(".short", f"legs {self.long} and {self.short} are on the same venue")
        return self
