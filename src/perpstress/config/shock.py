"""The exogenous shock: what moves fundamental value and risk appetite, before any venue reacts.

Two kinds:

- ``jump_regime``: a common market factor with calm volatility; at ``at_s`` a log-jump ``jump`` and a stress regime
  whose volatility starts at ``stress_vol`` and decays to the calm level with ``half_life_s``, plus an optional
  further drift ``drift`` spread over ``drift_s`` seconds (the news digesting). Each asset moves ``beta`` times the
  factor plus its own noise. Risk appetite (1 calm, 0 none) drops to ``appetite_floor`` at the jump and recovers
  with ``appetite_half_life_s``; market makers read it.
- ``replay``: index paths read from a CSV (``ts`` in Unix ms or ISO-8601, one column per asset), linearly
  interpolated to the step grid. Appetite then follows realised volatility.

Volatilities are per square-root second of log-price (a 1 %/min calm vol is ``0.01 / sqrt(60)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from perpstress.config.base import FrozenModel, rule_error


class AssetPath(FrozenModel):
    """One asset's exogenous index."""

    start_price: float = Field(gt=0, description="index at the start of the run, quote units")
    beta: float = Field(1.0, description="sensitivity to the market factor's log-returns")
    idio_vol: float = Field(0.0, ge=0, description="own noise, log-price per sqrt(second)")


class JumpRegimeShock(FrozenModel):
    kind: Literal["jump_regime"] = "jump_regime"
    assets: dict[str, AssetPath] = Field(min_length=1)
    calm_vol: float = Field(1e-4, ge=0, description="market factor vol before the shock, per sqrt(s)")
    at_s: float = Field(ge=0, description="seconds after the start when the news hits")
    jump: float = Field(description="market factor log-jump at the news, e.g. -0.03")
    stress_vol: float = Field(ge=0, description="factor vol right after the news, per sqrt(s)")
    half_life_s: float = Field(gt=0, description="half-life of the excess volatility, seconds")
    drift: float = Field(0.0, description="further factor log-move spread evenly over drift_s")
    drift_s: float = Field(0.0, ge=0)
    appetite_floor: float = Field(0.2, ge=0, le=1, description="risk appetite right after the news")
    appetite_half_life_s: float = Field(1800.0, gt=0)

    @model_validator(mode="after")
    def _drift_needs_time(self) -> Self:
        if self.drift != 0 and self.drift_s <= 0:
            raise rule_error(".drift_s", "a non-zero drift needs drift_s > 0")
        return self


class ReplayShock(FrozenModel):
    kind: Literal["replay"] = "replay"
    csv: Path = Field(description="CSV with a ts column and one price column per asset")
    assets: tuple[str, ...] = Field(min_length=1, description="columns to read; each is an asset name")


ShockConfig = Annotated[JumpRegimeShock | ReplayShock, Field(discriminator="kind")]
