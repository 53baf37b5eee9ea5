"""The crowd's flow during the run: new leveraged positions opened while prices move (mechanisms.agents.flow).

Three rules, each reading one measure of a market's mark (the mark at the start of the step):

- *dip buyers* open longs while the mark is ``dip.threshold`` or more below its recent peak (the highest mark over
  ``recent_window_s``); measure ``1 - mark / peak``;
- *momentum shorts* open shorts while the mark has fallen ``momentum.threshold`` or more over the last
  ``momentum.window_s``; measure ``1 - mark / mark(window ago)``;
- *the squeeze*: while the mark is ``squeeze.threshold`` or more above its recent trough (the lowest mark over
  ``recent_window_s``) after a fall of at least ``squeeze.after_fall`` from the recent peak to that trough, orders
  cover the market's oldest open flow short (when ``squeeze.covers``) or, when none is open, open longs; measure
  ``mark / trough - 1``.

With ``hold_median_s`` set, every flow position is also closed by its owner once its holding time (log-normal,
median ``hold_median_s``, log-sd ``hold_sigma``, drawn from the run's ``flow_hold`` stream when the position opens)
has passed: flow traders are short-horizon, not holders to the end of the run.

A rule's orders arrive as a Poisson process of rate ``rate_per_s x min(measure / threshold, max_multiple) x
rate_multiple x scale`` per market while its measure is at or above its threshold (none below). Sizes are
log-normal (``median_usd / scale``, ``sigma``; ``--scale`` scales accounts, not notional, as the population's does),
leverage log-normal like the crowd's, capped by the tier at the order's notional. Each order is one new cross account
from the market's dormant pool (``markets[key].accounts x scale``, allocated at build); an order finding its pool used
up is dropped and counted. Before ``start_s`` the measures are kept but no order is drawn (a flow that answers
news: its rates were measured on the crash, not on the calm before it). The section is off (no pool, no phase, no
draws) while ``markets`` is empty.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from perpstress.config.base import FrozenModel, rule_error


class FlowRule(FrozenModel):
    """When and how fast one kind of crowd flow opens positions."""

    threshold: float = Field(gt=0, lt=1, description="the rule's measure at which orders start, fraction")
    rate_per_s: float = Field(ge=0, le=10_000, description="orders per second at the threshold, scale 1")
    max_multiple: float = Field(4.0, ge=1, le=100, description="the rate grows with measure / threshold up to this")


class MomentumRule(FlowRule):
    window_s: float = Field(60.0, gt=0, le=86_400, description="the fall is measured over this many seconds")


class SqueezeRule(FlowRule):
    after_fall: float = Field(
        0.03, ge=0, lt=1, description="only after the recent peak-to-trough fall reached this, fraction"
    )
    covers: bool = Field(True, description="an order covers the market's oldest open flow short before opening longs")


class FlowMarket(FrozenModel):
    """The flow in one perpetual market (``venue:SYMBOL``)."""

    accounts: int = Field(ge=1, le=100_000_000, description="dormant flow accounts of this market at scale 1")
    rate_multiple: float = Field(1.0, ge=0, description="multiplies every rule's rate in this market")
    median_usd: float | None = Field(None, gt=0, description="median order notional at scale 1; none: the section's")


class CrowdFlowConfig(FrozenModel):
    """Crowd-like accounts that open leveraged positions during the run (see the module docstring)."""

    markets: dict[str, FlowMarket] = Field(default_factory=dict, description="keyed by venue:SYMBOL; empty: off")
    recent_window_s: float = Field(1800.0, gt=0, le=86_400, description="the recent peak and trough: over this")
    dip: FlowRule | None = Field(None, description="dip buyers (longs after a fall from the recent peak)")
    momentum: MomentumRule | None = Field(None, description="momentum shorts (shorts while the price falls)")
    squeeze: SqueezeRule | None = Field(None, description="shorts covered and longs opened on the rebound")
    median_usd: float = Field(20_000.0, gt=0, description="median order notional at scale 1, USD")
    sigma: float = Field(1.0, ge=0, le=5, description="log-sd of order notional")
    leverage_median: float | None = Field(None, ge=1, description="none: the population's (else the crowd's)")
    leverage_sigma: float | None = Field(None, ge=0, description="none: the population's (else the crowd's)")
    limit_fraction: float = Field(0.02, gt=0, lt=0.5, description="market orders limited this far past mark")
    start_s: float = Field(
        0.0, ge=0, le=864_000, description="no rule opens or covers before this many seconds into the run"
    )
    hold_median_s: float | None = Field(
        None,
        gt=0,
        le=864_000,
        description="a flow position is closed by its owner after a log-normal holding time of this median, seconds "
        "(none: held to the end of the run unless liquidated, ADL'd or covered)",
    )
    hold_sigma: float = Field(1.0, ge=0, le=5, description="log-sd of the holding time")

    @property
    def enabled(self) -> bool:
        return bool(self.markets) and any(r is not None for r in (self.dip, self.momentum, self.squeeze))

    @model_validator(mode="after")
    def _rules_need_markets(self) -> Self:
        if self.markets and not any(r is not None for r in (self.dip, self.momentum, self.squeeze)):
            raise rule_error(".markets", "flow markets are given but no rule (dip, momentum or squeeze) is set")
        return self
