"""Transfer rails between venues: how long moving collateral takes, how much a route carries, how stress clogs it.

A route ``"a->b"`` moves USD collateral from an account on venue ``a`` to one on venue ``b``. Transfers queue in
request order; the route sends at most its capacity per second (a token bucket); each sent transfer lands after a
log-normal latency. Stress (``1 - risk appetite`` of the shock) multiplies latency by ``1 + congestion * stress``
and divides capacity by the same factor; a scenario can also slow or halt a route for a window. Money in a queue
or in flight belongs to no account and counts as money in transit.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from perpstress.config.base import FrozenModel, rule_error


class RailDisruption(FrozenModel):
    """A window in which a route is slowed or halted (an outage, a chain halt, a venue pausing withdrawals)."""

    from_s: float = Field(ge=0, description="start, seconds after the run's start")
    to_s: float = Field(gt=0, description="end, seconds after the run's start")
    latency_multiplier: float = Field(1.0, ge=1, description="latency x this during the window")
    halted: bool = Field(False, description="nothing is sent during the window (queued transfers wait)")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.to_s <= self.from_s:
            raise rule_error(".to_s", f"to_s {self.to_s:g} must be after from_s {self.from_s:g}")
        return self


class TransferRail(FrozenModel):
    """One route's calm behaviour and how it degrades."""

    latency_median_s: float = Field(120.0, gt=0, description="calm median latency, seconds")
    latency_sigma: float = Field(0.5, ge=0, description="log-sd of latency")
    capacity_usd_per_s: float = Field(5e6, gt=0, description="USD the route sends per second when calm")
    congestion: float = Field(3.0, ge=0, description="at full stress latency x (1 + this), capacity / (1 + this)")
    disruptions: tuple[RailDisruption, ...] = ()


class RailsConfig(FrozenModel):
    """Routes between venues; a route not listed uses ``default``."""

    default: TransferRail = Field(default_factory=TransferRail)
    routes: dict[str, TransferRail] = Field(default_factory=dict, description='keyed "from->to" by venue name')
    delayed_multiple: float = Field(
        3.0, gt=1, description="a transfer counts as delayed when it takes this times its route's calm median"
    )

    def route(self, src: str, dst: str) -> TransferRail:
        return self.routes.get(f"{src}->{dst}", self.default)
