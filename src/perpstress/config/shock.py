"""The exogenous shock: what moves fundamental value and risk appetite, before any venue reacts.

Two kinds:

- ``jump_regime``: a common market factor with calm volatility; at ``at_s`` a log-jump ``jump`` (spread evenly over
  ``jump_s`` seconds; 0, the default: in one step) and a stress regime whose volatility starts at ``stress_vol`` and
  decays to the calm level with ``half_life_s``, plus an optional further drift ``drift`` spread over the
  ``drift_s`` seconds after the jump (the news digesting). Each asset moves ``beta`` times the
  factor plus its own noise. An asset that ``tracks`` another is ``rate`` times that asset's index at every step
  (a staking token: wBETH = ETH x its exchange rate), with no factor or noise of its own. Risk appetite (1 calm,
  0 none) drops to ``appetite_floor`` at the jump and recovers with ``appetite_half_life_s``; market makers read
  it.
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
    """One asset's exogenous index: its own (``start_price``, ``beta``, ``idio_vol``), or ``rate`` times the index
    of the asset it ``tracks``."""

    start_price: float | None = Field(None, gt=0, description="index at the start of the run, quote units")
    beta: float = Field(1.0, description="sensitivity to the market factor's log-returns")
    idio_vol: float = Field(0.0, ge=0, description="own noise, log-price per sqrt(second)")
    tracks: str | None = Field(None, min_length=1, description="asset whose index this one is rate times")
    rate: float = Field(1.0, gt=0, description="tracks: units of the tracked asset one unit is worth")

    @model_validator(mode="after")
    def _own_or_tracked(self) -> Self:
        if self.tracks is None:
            if self.start_price is None:
                raise rule_error(".start_price", "an asset path needs start_price (or tracks another asset)")
            if self.rate != 1.0:
                raise rule_error(".rate", "rate applies to an asset that tracks another: name tracks")
            return self
        if self.start_price is not None:
            raise rule_error(".start_price", f"tracks {self.tracks}: its start is rate x {self.tracks}'s, drop it")
        if self.beta != 1.0 or self.idio_vol != 0.0:
            raise rule_error(".tracks", f"tracks {self.tracks}: it moves with it, drop beta and idio_vol")
        return self


class JumpRegimeShock(FrozenModel):
    kind: Literal["jump_regime"] = "jump_regime"
    assets: dict[str, AssetPath] = Field(min_length=1)
    calm_vol: float = Field(1e-4, ge=0, description="market factor vol before the shock, per sqrt(s)")
    at_s: float = Field(ge=0, description="seconds after the start when the news hits")
    jump: float = Field(description="market factor log-jump at the news, e.g. -0.03")
    jump_s: float = Field(0.0, ge=0, description="the jump spread evenly over this many seconds (0: one step)")
    stress_vol: float = Field(ge=0, description="factor vol right after the news, per sqrt(s)")
    half_life_s: float = Field(gt=0, description="half-life of the excess volatility, seconds")
    drift: float = Field(0.0, description="further factor log-move spread evenly over drift_s, after the jump")
    drift_s: float = Field(0.0, ge=0)
    appetite_floor: float = Field(0.2, ge=0, le=1, description="risk appetite right after the news")
    appetite_half_life_s: float = Field(1800.0, gt=0)

    @model_validator(mode="after")
    def _drift_needs_time(self) -> Self:
        if self.drift != 0 and self.drift_s <= 0:
            raise rule_error(".drift_s", "a non-zero drift needs drift_s > 0")
        for name, a in self.assets.items():
            if a.tracks is None:
                continue
            tracked = self.assets.get(a.tracks)
            if tracked is None:
                known = ", ".join(n for n, b in self.assets.items() if b.tracks is None)
                raise rule_error(f".assets.{name}.tracks", f"no asset {a.tracks} among the shock's assets ({known})")
            if tracked.tracks is not None:
                raise rule_error(
                    f".assets.{name}.tracks", f"{a.tracks} tracks {tracked.tracks}: track an asset with its own path"
                )
        return self

    def start_price(self, name: str) -> float:
        """The asset's index at the start: its own, or ``rate`` times the tracked asset's."""
        a = self.assets[name]
        own = self.assets[a.tracks] if a.tracks is not None else a
        return a.rate * (own.start_price if own.start_price is not None else float("nan"))


class ReplayShock(FrozenModel):
    kind: Literal["replay"] = "replay"
    csv: Path = Field(description="CSV with a ts column and one price column per asset")
    assets: tuple[str, ...] = Field(min_length=1, description="columns to read; each is an asset name")


ShockConfig = Annotated[JumpRegimeShock | ReplayShock, Field(discriminator="kind")]


class WiderMarketConfig(FrozenModel):
    """The market outside the scenario's venues, answering their net taker flow (``[wider_market]``): each asset's
    fundamental value is its exogenous path times ``exp(impact_per_open_interest * permanent * F / OI)``, ``F`` the
    net taker flow (base units, buys positive) into every order book of the asset since the start, ``OI`` the
    asset's open interest over the scenario's perpetuals at the start (base units). Assets with no perpetual are
    not moved."""

    impact_per_open_interest: float = Field(
        gt=0,
        le=100,
        description="one minute's log-price impact of a net taker flow as large as the asset's open interest",
    )
    permanent: float = Field(gt=0, le=1, description="the share of that impact that stays (the wider market's)")
