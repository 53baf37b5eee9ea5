"""The crowd: leveraged accounts holding positions when the run starts (the simple configurable generator).

Per market, the crowd holds ``notional_usd`` of gross position notional, ``long_share`` of it long. Position
notionals are log-normal, rescaled so their total is exact; leverage is log-normal around ``leverage_median``,
capped by the tier's maximum at that notional; entries are spread around the start price by ``entry_dispersion``
(log-sd) shifted by ``entry_offset`` (mean log of entry/start: > 0 means the crowd bought higher, so starts
under water). Market makers hold the crowd's net position so every market's long and short sizes balance.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from perpstress.config.base import FrozenModel


class CrowdMarket(FrozenModel):
    """The crowd in one market, addressed as ``venue:SYMBOL``."""

    notional_usd: float = Field(gt=0, description="gross crowd notional (longs + shorts) at the start price, USD")
    long_share: float = Field(0.7, ge=0, le=1, description="fraction of crowd notional that is long")
    accounts: int = Field(1000, ge=1, description="crowd accounts in this market at scale 1")


class CrowdBehaviour(FrozenModel):
    """What crowd accounts do besides holding a position; shared by both generators."""

    isolated_share: float = Field(0.3, ge=0, le=1, description="fraction of accounts in isolated mode")
    stop_share: float = Field(0.1, ge=0, le=1, description="fraction of accounts with a stop-loss")
    stop_distance: float = Field(0.05, gt=0, lt=1, description="stop distance from entry, fraction")
    topup_share: float = Field(0.2, ge=0, le=1, description="fraction of accounts that top up margin")
    topup_reserve_multiple: float = Field(1.0, ge=0, description="reserve available to top up, x initial margin")


class CrowdConfig(CrowdBehaviour):
    markets: dict[str, CrowdMarket] = Field(default_factory=dict, description="keyed by venue:SYMBOL")
    notional_sigma: float = Field(1.5, ge=0, description="log-sd of position notional")
    leverage_median: float = Field(10.0, ge=1)
    leverage_sigma: float = Field(0.7, ge=0, description="log-sd of leverage")
    entry_dispersion: float = Field(0.02, ge=0, description="log-sd of entry price around the start price")
    entry_offset: float = Field(0.0, description="mean log(entry / start price)")
    topup_margin_ratio: float = Field(0.8, gt=0, lt=1, description="top up when MM / balance reaches this")
    topup_delay_median_s: float = Field(
        0.0, ge=0, le=86_400, description="median seconds from a margin call to its top-up (log-normal); 0: at once"
    )
    topup_delay_sigma: float = Field(1.0, ge=0, le=5, description="log-sd of the delay from call to top-up")
    topup_unanswered_share: float = Field(
        0.0, ge=0, le=1, description="share of the accounts that top up which never answer a margin call"
    )
    collateral: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="venue -> {asset: share}: share of the venue's cross accounts margined in that asset",
    )


class PopulationMarket(FrozenModel):
    """One market's observable aggregates (``venue:SYMBOL``)."""

    open_interest_usd: float = Field(gt=0, description="open interest at the start, one side, USD (exact)")
    crowd_short_share: float = Field(
        0.6, ge=0, le=1, description="share of the short side the crowd holds; makers and hedgers hold the rest"
    )
    long_short_account_ratio: float = Field(
        2.0, gt=0, description="crowd long accounts per short account (the long/short ratio venues publish)"
    )
    account_weight: float = Field(1.0, gt=0, description="relative number of accounts per USD of open interest")


class PopulationConfig(CrowdBehaviour):
    """A crowd built from public aggregates (perpstress.population.generator): exact open interest per market, a
    heavy-tailed leverage distribution with a crowded high-leverage long segment, entries spread along the
    preceding days' price path, margin modes, stops and top-ups, collateral shares per venue."""

    accounts: int = Field(ge=2, description="crowd accounts across all markets at scale 1")
    markets: dict[str, PopulationMarket] = Field(min_length=1, description="keyed by venue:SYMBOL")
    notional_sigma: float = Field(1.8, ge=0, description="log-sd of position notional (heavy tail)")
    leverage_median: float = Field(8.0, ge=1)
    leverage_sigma: float = Field(0.6, ge=0)
    leverage_size_elasticity: float = Field(
        0.0, ge=0, description="leverage x (notional / median notional) ** -this: large accounts lever less"
    )
    crowded_long_share: float = Field(0.25, ge=0, le=1, description="share of long accounts in the crowded segment")
    crowded_leverage_median: float = Field(40.0, ge=1, description="their median leverage (capped by the tier)")
    entry_path: tuple[float, ...] = Field(
        (1.0,), min_length=1, description="prices relative to the start along the preceding days (entries sample it)"
    )
    entry_dispersion: float = Field(0.005, ge=0, description="log-sd around the sampled path price")
    beta_to_path: dict[str, float] = Field(
        default_factory=dict, description="per base asset: exponent applied to the path's ratios (alts moved more)"
    )
    survivors: Literal["cushion", "chosen_leverage"] = Field(
        "cushion",
        description="an account the path left within reach of liquidation holds a cushion of 0.3-3 % of its notional "
        "above maintenance (cushion), or its chosen leverage again at the start price (chosen_leverage: it was "
        "topped up, or liquidated and opened again)",
    )
