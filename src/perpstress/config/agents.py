"""Agents' parameters: market makers and noise takers. Each field says what it represents."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from perpstress.config.base import FrozenModel, rule_error


class MakerMarketOverride(FrozenModel):
    """Per-market sizes for the makers of one market (``venue:SYMBOL``); unset fields keep the defaults."""

    capital_usd: float | None = Field(None, gt=0)
    depth_usd: float | None = Field(None, gt=0)
    inventory_limit_usd: float | None = Field(None, gt=0)
    loss_limit_usd: float | None = Field(None, gt=0)


class MarketMakerConfig(FrozenModel):
    """How a market maker quotes and when it pulls back (perpstress.mechanisms.market_makers).

    Calm state: ``levels`` price levels a side, the first ``half_spread_bps`` from fair value, then every
    ``level_spacing_bps``, holding ``depth_usd`` a side in total, more at the outer levels.
    """

    per_market: int = Field(3, ge=1, description="market makers quoting each market")
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
    loss_limit_usd: float = Field(gt=0, description="withdraw entirely when the drawdown reaches this")
    withdraw_vol_multiple: float = Field(8.0, gt=1, description="withdraw when vol exceeds vol_ref times this")
    return_vol_multiple: float = Field(3.0, gt=0, description="come back only when vol is below vol_ref times this")
    adl_exposure_limit: float = Field(
        0.5, gt=0, le=1, description="withdraw when ADL has recently closed this share of the maker's position"
    )
    return_half_life_s: float = Field(300.0, gt=0, description="after a withdrawal, size returns with this half-life")
    markets: dict[str, MakerMarketOverride] = Field(default_factory=dict, description="per venue:SYMBOL sizes")

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
        over = self.markets.get(key)
        if over is None:
            return self
        return self.model_copy(update=over.model_dump(exclude_none=True))


class NoiseTakerConfig(FrozenModel):
    """Uninformed market orders: Poisson arrivals, log-normal sizes, buy or sell with equal odds."""

    rate_per_s: float = Field(0.5, ge=0, description="orders per second per market")
    median_usd: float = Field(5000.0, gt=0)
    sigma: float = Field(1.0, ge=0, description="log-sd of order size")
    sell_bias_after_shock: float = Field(
        0.0, ge=-0.5, le=0.5, description="extra probability of selling while risk appetite is below 1"
    )
