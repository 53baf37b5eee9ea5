"""Market makers that behave as they did on October 10: quote, widen, thin, withdraw, return.

Each maker quotes a ladder on both sides of its fair value (the index, skewed against its inventory). Explicit rules,
all in :class:`perpstress.config.agents.MarketMakerConfig`:

- **Widen** with realised volatility: half-spread and level spacing scale as ``(vol / vol_ref) ** a``.
- **Thin** with volatility and risk appetite: size scales as ``appetite * (vol_ref / vol) ** b``; the side that
  would add to inventory shrinks linearly to nothing at ``inventory_limit_usd``; the inventory-reducing side is kept.
- **Withdraw** entirely when volatility exceeds ``withdraw_vol_multiple * vol_ref``, the maker's drawdown reaches
  ``loss_limit_usd``, or its ADL exposure passes ``adl_exposure_limit``.
- **Return** once volatility is back under ``return_vol_multiple * vol_ref`` (hysteresis), size ramping back with
  ``return_half_life_s`` (makers do not restore full depth in one second).

Left out: queue-position strategy, adverse-selection learning, cross-market hedging by the maker (its inventory
is hedged off-venue by assumption, so only its margin and ADL exposure bind).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from perpstress.config.agents import MarketMakerConfig
from perpstress.state.orderbook import _replace_ladder
from perpstress.state.portfolio import F64


@dataclass
class MakerState:
    """What one maker carries from step to step."""

    active: bool = True
    ramp: float = 1.0
    """Fraction of full size restored after a withdrawal (0 just back, 1 fully back)."""
    peak_equity: float = 0.0


@dataclass(frozen=True)
class Ladder:
    """Prices (quote units) and sizes (base units) per side, best level first. Empty arrays when not quoting."""

    bid_price: F64
    bid_size: F64
    ask_price: F64
    ask_size: F64

    @classmethod
    def empty(cls) -> Ladder:
        z = np.zeros(0)
        return cls(z, z, z, z)


def update_state(
    cfg: MarketMakerConfig, state: MakerState, vol: float, equity: float, adl_exposure: float, dt_s: float
) -> MakerState:
    """Apply the withdraw / return rules for one step; returns the new state."""
    peak = max(state.peak_equity, equity)
    drawdown = peak - equity
    stressed = vol > cfg.withdraw_vol_multiple * cfg.vol_ref
    broke = drawdown >= cfg.loss_limit_usd
    exposed = adl_exposure >= cfg.adl_exposure_limit
    if state.active and (stressed or broke or exposed):
        return MakerState(active=False, ramp=0.0, peak_equity=peak)
    if not state.active:
        calm = vol < cfg.return_vol_multiple * cfg.vol_ref
        if calm and not broke and not exposed:
            return MakerState(active=True, ramp=0.0, peak_equity=equity)  # a new loss budget from here
        return MakerState(active=False, ramp=0.0, peak_equity=peak)
    ramp = 1.0 - (1.0 - state.ramp) * 0.5 ** (dt_s / cfg.return_half_life_s)
    return MakerState(active=True, ramp=ramp, peak_equity=peak)


@dataclass(frozen=True)
class QuoteShape:
    """A ladder's defining numbers: centre, first-level distance and spacing (fractions of price), USD per side
    and the fraction of it each side keeps. :func:`quote` spells the ladder out; the engine posts the same ladder
    with the compiled :func:`post_ladder`."""

    mid: float
    half: float
    spacing: float
    levels: int
    side_usd: float
    bid_scale: float
    ask_scale: float


def quote_shape(
    cfg: MarketMakerConfig, state: MakerState, fair: float, vol: float, inventory_usd: float, appetite: float
) -> QuoteShape | None:
    """The rules above as numbers; None when the maker is not quoting."""
    if not state.active or state.ramp <= 0.0 or appetite <= 0.0:
        return None
    stress = max(vol / cfg.vol_ref, 1.0)
    widen = stress**cfg.spread_vol_elasticity
    thin = stress ** (-cfg.size_vol_elasticity)
    half = cfg.half_spread_bps * 1e-4 * widen
    spacing = cfg.level_spacing_bps * 1e-4 * widen
    full_skew = half if cfg.inventory_skew_bps is None else cfg.inventory_skew_bps * 1e-4
    inv = inventory_usd / cfg.inventory_limit_usd
    skew = -min(max(inv, -1.0), 1.0) * full_skew  # long inventory: quote lower
    return QuoteShape(
        mid=fair * (1.0 + skew),
        half=half,
        spacing=spacing,
        levels=cfg.levels,
        side_usd=cfg.depth_usd * thin * appetite * state.ramp,
        bid_scale=min(max(1.0 - inv, 0.0), 1.0),  # a long maker stops buying at its limit
        ask_scale=min(max(1.0 + inv, 0.0), 1.0),  # a short maker stops selling at its limit
    )


def quote(
    cfg: MarketMakerConfig, state: MakerState, fair: float, vol: float, inventory_usd: float, appetite: float
) -> Ladder:
    """The ladder to post this step (prices not yet rounded to ticks): the plain version of :func:`post_ladder`."""
    q = quote_shape(cfg, state, fair, vol, inventory_usd, appetite)
    if q is None:
        return Ladder.empty()
    k = np.arange(q.levels, dtype=np.float64)
    shape = (k + 1.0) / ((k + 1.0).sum())  # more size further out, as observed books do
    side_usd, bid_scale, ask_scale, half, spacing, mid = q.side_usd, q.bid_scale, q.ask_scale, q.half, q.spacing, q.mid
    bid_price = mid * (1.0 - half - spacing * k)
    ask_price = mid * (1.0 + half + spacing * k)
    keep = bid_price > 0
    return Ladder(
        bid_price=bid_price[keep],
        bid_size=(side_usd * bid_scale * shape / np.maximum(bid_price, 1e-300))[keep],
        ask_price=ask_price,
        ask_size=side_usd * ask_scale * shape / ask_price,
    )


def realised_vol(log_returns: F64, dt_s: float) -> float:
    """Realised volatility per sqrt(second) from recent log-returns."""
    if log_returns.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(log_returns**2) / dt_s))


def _post_ladder_py(  # type: ignore[no-untyped-def]
    price, lots, owner, count, m, who, mid, half, spacing, levels, side_usd, bid_scale, ask_scale, tick, lot
):
    """:func:`quote`'s ladder rounded (bids down, asks up to ticks; sizes down to lots) and posted in place of
    ``who``'s previous orders on both sides, in one compiled call."""
    total = levels * (levels + 1) / 2.0
    bid_ticks = np.empty(levels, np.int64)
    bid_lots = np.empty(levels, np.int64)
    ask_ticks = np.empty(levels, np.int64)
    ask_lots = np.empty(levels, np.int64)
    nb = 0
    na = 0
    for k in range(levels):
        w = (k + 1.0) / total
        bp = mid * (1.0 - half - spacing * k)
        if bp > 0:
            q = np.floor(side_usd * bid_scale * w / bp / lot + 1e-9)
            if q > 0:
                bid_ticks[nb] = np.int64(np.floor(bp / tick + 1e-9))
                bid_lots[nb] = np.int64(q)
                nb += 1
        ap = mid * (1.0 + half + spacing * k)
        q = np.floor(side_usd * ask_scale * w / ap / lot + 1e-9)
        if q > 0:
            ask_ticks[na] = np.int64(np.ceil(ap / tick - 1e-9))
            ask_lots[na] = np.int64(q)
            na += 1
    _replace_ladder(price, lots, owner, count, m, 0, who, bid_ticks[:nb], bid_lots[:nb])
    _replace_ladder(price, lots, owner, count, m, 1, who, ask_ticks[:na], ask_lots[:na])


post_ladder = njit(cache=True)(_post_ladder_py)
"""Compiled: see :func:`_post_ladder_py`."""
