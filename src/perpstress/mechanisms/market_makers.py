"""Market makers that behave as they did on October 10: quote, widen, thin, withdraw, return.

Each maker quotes a ladder on both sides of its fair value (the index, skewed against its inventory). Explicit rules,
all in :class:`perpstress.config.agents.MarketMakerConfig`:

- **Widen** with realised volatility: half-spread and level spacing scale as ``(vol / vol_ref) ** a``.
- **Thin** with volatility and risk appetite: size scales as ``appetite * (vol_ref / vol) ** b``; the side that
  would add to inventory shrinks linearly to nothing at ``inventory_limit_usd``; the inventory-reducing side is kept.
- **Withdraw** entirely when volatility exceeds ``withdraw_vol_multiple * vol_ref``, the maker's drawdown reaches
  ``loss_limit_usd`` or its equity is gone (a maker that came back with a new loss budget larger than what it had
  left would otherwise quote on with nothing, be liquidated and quote again), or its ADL exposure passes
  ``adl_exposure_limit`` (never, with ``withdraws = false``: the
  counterfactual of makers that stay).
- **Return** once volatility is back under ``return_vol_multiple * vol_ref`` (hysteresis), size ramping back with
  ``return_half_life_s`` (makers do not restore full depth in one second).
- **Lay off** inventory elsewhere (impact that decays): the quotes' centre is skewed against the inventory not yet
  laid off, ``inventory - (1 - inventory_skew_permanent) * settled``, where ``settled`` follows the inventory with
  ``inventory_skew_half_life_s`` (:func:`settle`). Right after a fill the whole of it skews the quotes; once the
  maker has had time to lay it off, only the share ``inventory_skew_permanent`` does: the propagator of calm-market
  price impact, a permanent part and a transient part that fades. With ``inventory_skew_permanent = 1`` (the
  default) the skew follows the whole inventory.
- **Refill** a swept ladder at a finite rate (the book's resilience): when fills since its last quote took a share
  ``f`` of its calm depth per side (``|inventory change| / depth_usd``, at most 1), a maker's size is cut by
  ``sweep_size_cut * f``, and grows back with ``refill_half_life_s``. With ``sweep_size_cut = 0`` (the default) a
  maker posts its full size again every step, however much was taken.

Left out: queue-position strategy, adverse-selection learning, cross-market hedging by the maker (its inventory
is hedged off-venue by assumption, so only its margin and ADL exposure bind).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from perpstress.config.agents import MarketMakerConfig
from perpstress.state.orderbook import ASK, BID, _remove_owner, _replace_sorted_ladder
from perpstress.state.portfolio import F64


@dataclass
class MakerState:
    """What one maker carries from step to step."""

    active: bool = True
    ramp: float = 1.0
    """Fraction of full size restored after a withdrawal (0 just back, 1 fully back)."""
    peak_equity: float = 0.0
    refill: float = 1.0
    """Fraction of full size refilled after fills swept the ladder (1: nothing taken lately)."""


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
    cfg: MarketMakerConfig,
    state: MakerState,
    vol: float,
    equity: float,
    adl_exposure: float,
    dt_s: float,
    swept: float = 0.0,
) -> MakerState:
    """Apply the withdraw / return and refill rules for one step; returns the new state. ``swept``: the share of its
    calm depth fills took since the maker's last quote (0 when it was not filled)."""
    refill = 1.0 - (1.0 - state.refill) * 0.5 ** (dt_s / cfg.refill_half_life_s)
    if swept > 0.0 and cfg.sweep_size_cut > 0.0:
        refill = refill * (1.0 - cfg.sweep_size_cut * min(swept, 1.0))
    moved = _withdraw_or_return(cfg, state, vol, equity, adl_exposure, dt_s)
    return MakerState(moved.active, moved.ramp, moved.peak_equity, refill)


def _withdraw_or_return(
    cfg: MarketMakerConfig, state: MakerState, vol: float, equity: float, adl_exposure: float, dt_s: float
) -> MakerState:
    peak = max(state.peak_equity, equity)
    drawdown = peak - equity
    stressed = cfg.withdraws and vol > cfg.withdraw_vol_multiple * cfg.vol_ref
    broke = cfg.withdraws and (drawdown >= cfg.loss_limit_usd or equity <= 0.0)  # or nothing left to lose
    exposed = cfg.withdraws and adl_exposure >= cfg.adl_exposure_limit
    if state.active and (stressed or broke or exposed):
        return MakerState(active=False, ramp=0.0, peak_equity=peak)
    if not state.active:
        calm = vol < cfg.return_vol_multiple * cfg.vol_ref
        if calm and not broke and not exposed:
            return MakerState(active=True, ramp=0.0, peak_equity=equity)  # a new loss budget from here
        return MakerState(active=False, ramp=0.0, peak_equity=peak)
    ramp = 1.0 - (1.0 - state.ramp) * 0.5 ** (dt_s / cfg.return_half_life_s)
    return MakerState(active=True, ramp=ramp, peak_equity=peak)


def settle(cfg: MarketMakerConfig, settled_lots: float, inventory_lots: float, dt_s: float) -> float:
    """The inventory the maker has had time to lay off, after one step of ``dt_s``: ``settled`` moves towards the
    inventory (both in lots) with ``inventory_skew_half_life_s``."""
    return inventory_lots - (inventory_lots - settled_lots) * float(0.5 ** (dt_s / cfg.inventory_skew_half_life_s))


def skew_lots(cfg: MarketMakerConfig, settled_lots: float, inventory_lots: float) -> float:
    """The inventory the quotes are skewed against: all of it less the laid-off share that does not stay."""
    if cfg.inventory_skew_permanent == 1.0:
        return inventory_lots
    return inventory_lots - (1.0 - cfg.inventory_skew_permanent) * settled_lots


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
    cfg: MarketMakerConfig,
    state: MakerState,
    fair: float,
    vol: float,
    inventory_usd: float,
    appetite: float,
    skew_usd: float | None = None,
) -> QuoteShape | None:
    """The rules above as numbers; None when the maker is not quoting. ``skew_usd``: the inventory the centre is
    skewed against (:func:`skew_lots` at mark; none: all of ``inventory_usd``); the sides' limits read the whole
    inventory."""
    if not state.active or state.ramp <= 0.0 or appetite <= 0.0:
        return None
    stress = max(vol / cfg.vol_ref, 1.0)
    widen = stress**cfg.spread_vol_elasticity
    thin = stress ** (-cfg.size_vol_elasticity)
    half = cfg.half_spread_bps * 1e-4 * widen
    spacing = cfg.level_spacing_bps * 1e-4 * widen
    full_skew = half if cfg.inventory_skew_bps is None else cfg.inventory_skew_bps * 1e-4
    inv = inventory_usd / cfg.inventory_limit_usd
    held = inv if skew_usd is None else skew_usd / cfg.inventory_limit_usd
    skew = -min(max(held, -1.0), 1.0) * full_skew  # long inventory: quote lower
    return QuoteShape(
        mid=fair * (1.0 + skew),
        half=half,
        spacing=spacing,
        levels=cfg.levels,
        side_usd=cfg.depth_usd * thin * appetite * state.ramp * state.refill,
        bid_scale=min(max(1.0 - inv, 0.0), 1.0),  # a long maker stops buying at its limit
        ask_scale=min(max(1.0 + inv, 0.0), 1.0),  # a short maker stops selling at its limit
    )


def quote(
    cfg: MarketMakerConfig,
    state: MakerState,
    fair: float,
    vol: float,
    inventory_usd: float,
    appetite: float,
    skew_usd: float | None = None,
) -> Ladder:
    """The ladder to post this step (prices not yet rounded to ticks): the plain version of :func:`post_ladder`."""
    q = quote_shape(cfg, state, fair, vol, inventory_usd, appetite, skew_usd)
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
    # the ladder is best first (prices monotone in the level, rounding monotone): posted in one merge each side
    _replace_sorted_ladder(price, lots, owner, count, m, 0, who, bid_ticks[:nb], bid_lots[:nb])
    _replace_sorted_ladder(price, lots, owner, count, m, 1, who, ask_ticks[:na], ask_lots[:na])


post_ladder = njit(cache=True)(_post_ladder_py)
"""Compiled: see :func:`_post_ladder_py`."""


# Columns of :func:`maker_config_table`'s per-market table, read by :func:`makers_step`.
(C_VOL_REF, C_WITHDRAW_VOL, C_RETURN_VOL, C_LOSS_LIMIT, C_ADL_LIMIT, C_RAMP_DECAY, C_REQUOTE_BPS, C_INV_LIMIT,
 C_SPREAD_ELASTICITY, C_SIZE_ELASTICITY, C_HALF_SPREAD_BPS, C_SPACING_BPS, C_SKEW_BPS, C_DEPTH_USD,
 C_SWEEP_CUT, C_REFILL_DECAY, C_SKEW_PERMANENT, C_SETTLE_DECAY, N_CFG) = range(19)  # fmt: skip


def maker_config_table(cfgs: list[MarketMakerConfig], step_s: float) -> tuple[F64, np.ndarray]:
    """Per market, the makers' configuration as a float table (columns ``C_*``; ``C_SKEW_BPS`` NaN for "one
    half-spread") and the ladder levels; ``C_RAMP_DECAY`` is :func:`update_state`'s ``0.5 ** (dt / half_life)``
    for a step of ``step_s``, computed here as it is there (``C_REFILL_DECAY`` and ``C_SETTLE_DECAY``: the refill's
    and :func:`settle`'s)."""
    t = np.empty((len(cfgs), N_CFG))
    for m, c in enumerate(cfgs):
        t[m, C_VOL_REF] = c.vol_ref
        t[m, C_WITHDRAW_VOL] = c.withdraw_vol_multiple if c.withdraws else np.inf
        t[m, C_RETURN_VOL] = c.return_vol_multiple
        t[m, C_LOSS_LIMIT] = c.loss_limit_usd if c.withdraws else np.inf
        t[m, C_ADL_LIMIT] = c.adl_exposure_limit if c.withdraws else np.inf
        t[m, C_RAMP_DECAY] = 0.5 ** (step_s / c.return_half_life_s)
        t[m, C_REQUOTE_BPS] = c.requote_bps
        t[m, C_INV_LIMIT] = c.inventory_limit_usd
        t[m, C_SPREAD_ELASTICITY] = c.spread_vol_elasticity
        t[m, C_SIZE_ELASTICITY] = c.size_vol_elasticity
        t[m, C_HALF_SPREAD_BPS] = c.half_spread_bps
        t[m, C_SPACING_BPS] = c.level_spacing_bps
        t[m, C_SKEW_BPS] = np.nan if c.inventory_skew_bps is None else c.inventory_skew_bps
        t[m, C_DEPTH_USD] = c.depth_usd
        t[m, C_SWEEP_CUT] = c.sweep_size_cut
        t[m, C_REFILL_DECAY] = 0.5 ** (step_s / c.refill_half_life_s)
        t[m, C_SKEW_PERMANENT] = c.inventory_skew_permanent
        t[m, C_SETTLE_DECAY] = 0.5 ** (step_s / c.inventory_skew_half_life_s)
    return t, np.array([c.levels for c in cfgs], dtype=np.int64)


def _makers_step_py(  # type: ignore[no-untyped-def]
    price, lots, owner, count, makers, start_lots, active, ramp, peak, refill, settled, last, filled,
    pos_market, size_lots, entry, iso, pos_start, pos_count, wallet, lot_size, tick_size, mark,
    adl_lots, vol, fair, appetite, cfg, levels,
):  # fmt: skip
    """Every maker's step, in account order: :func:`update_state` (equity as
    :meth:`perpstress.mechanisms.accounting.Accounting.unit_equity` of its cross unit), the requote test,
    :func:`quote_shape` and :func:`post_ladder` (or the cancel of its ladder), the same arithmetic in the same
    order. Maker ``makers[i]``'s position is ``makers[i]``; its state ``active``/``ramp``/``peak``/``refill``, the
    lots it has laid off (``settled``, :func:`settle`, every step) and the last quote's (fair value, vol, inventory,
    appetite, ramp, refill, skewed inventory) in ``last[i]`` are updated in place, as are the books and ``filled``.
    Python's ``max(a, b)`` / ``min(a, b)`` are spelt out (``b if b > a else a``), so NaN goes the same way. The
    powers are computed here, one scalar ``pow`` each as in :func:`quote_shape` (libm's, bit for bit): NumPy's
    vectorised ``np.power`` may differ from it in the last bit."""
    for i in range(makers.shape[0]):
        a = makers[i]
        m = pos_market[a]
        c = cfg[m]
        vol_m = vol[m]
        held_lots = size_lots[a] - start_lots[i]
        inventory = held_lots * lot_size[m] * mark[m]
        settled[i] = held_lots - (held_lots - settled[i]) * c[C_SETTLE_DECAY]
        if c[C_SKEW_PERMANENT] == 1.0:
            skewed = inventory
        else:
            skewed = (held_lots - (1.0 - c[C_SKEW_PERMANENT]) * settled[i]) * lot_size[m] * mark[m]
        equity = wallet[a]
        for p in range(pos_start[a], pos_start[a] + pos_count[a]):
            if size_lots[p] != 0 and np.isnan(iso[p]):
                equity += (size_lots[p] * lot_size[pos_market[p]]) * (mark[pos_market[p]] - entry[p])
        held = abs(float(size_lots[a]))
        d = held + adl_lots[a]
        adl_share = adl_lots[a] / (1.0 if d < 1.0 else d)
        # update_state: the refill first, then withdraw / return
        r = 1.0 - (1.0 - refill[i]) * c[C_REFILL_DECAY]
        if filled[a] and c[C_SWEEP_CUT] > 0.0 and not np.isnan(last[i, 2]):
            swept = abs(inventory - last[i, 2]) / c[C_DEPTH_USD]
            if swept > 0.0:
                r = r * (1.0 - c[C_SWEEP_CUT] * (1.0 if swept > 1.0 else swept))
        refill[i] = r
        was_active = active[i]
        new_peak = equity if equity > peak[i] else peak[i]
        broke = new_peak - equity >= c[C_LOSS_LIMIT] or (equity <= 0.0 and c[C_LOSS_LIMIT] < np.inf)
        exposed = adl_share >= c[C_ADL_LIMIT]
        if was_active and (vol_m > c[C_WITHDRAW_VOL] * c[C_VOL_REF] or broke or exposed):
            active[i] = False
            ramp[i] = 0.0
            peak[i] = new_peak
        elif not was_active:
            if vol_m < c[C_RETURN_VOL] * c[C_VOL_REF] and not broke and not exposed:
                active[i] = True
                peak[i] = equity  # a new loss budget from here
            else:
                peak[i] = new_peak
            ramp[i] = 0.0
        else:
            ramp[i] = 1.0 - (1.0 - ramp[i]) * c[C_RAMP_DECAY]
            peak[i] = new_peak
        fair_m = fair[m]
        if c[C_REQUOTE_BPS] > 0 and not filled[a] and active[i] == was_active:
            v0 = last[i, 1]
            ref = c[C_VOL_REF]
            if (abs(fair_m - last[i, 0]) <= c[C_REQUOTE_BPS] * 1e-4 * last[i, 0]
                    and abs(vol_m - v0) <= 0.1 * (ref if ref > v0 else v0)
                    and abs(inventory - last[i, 2]) <= 0.02 * c[C_INV_LIMIT] and abs(appetite - last[i, 3]) <= 0.01
                    and abs(ramp[i] - last[i, 4]) <= 0.02 and abs(refill[i] - last[i, 5]) <= 0.02
                    and abs(skewed - last[i, 6]) <= 0.02 * c[C_INV_LIMIT]):  # fmt: skip
                continue
        filled[a] = False
        last[i, 0] = fair_m
        last[i, 1] = vol_m
        last[i, 2] = inventory
        last[i, 3] = appetite
        last[i, 4] = ramp[i]
        last[i, 5] = refill[i]
        last[i, 6] = skewed
        if not active[i] or ramp[i] <= 0.0 or appetite <= 0.0:  # quote_shape's None
            _remove_owner(price, lots, owner, count, m, BID, a)
            _remove_owner(price, lots, owner, count, m, ASK, a)
            continue
        s = vol_m / c[C_VOL_REF]
        stress = 1.0 if s < 1.0 else s
        widen = stress ** c[C_SPREAD_ELASTICITY]
        thin = stress ** (-c[C_SIZE_ELASTICITY])
        half = c[C_HALF_SPREAD_BPS] * 1e-4 * widen
        spacing = c[C_SPACING_BPS] * 1e-4 * widen
        full_skew = half if np.isnan(c[C_SKEW_BPS]) else c[C_SKEW_BPS] * 1e-4
        inv = inventory / c[C_INV_LIMIT]
        held = skewed / c[C_INV_LIMIT]
        lo = -1.0 if held < -1.0 else held
        skew = -(1.0 if lo > 1.0 else lo) * full_skew
        b = 1.0 - inv
        b = 0.0 if b < 0.0 else b
        k = 1.0 + inv
        k = 0.0 if k < 0.0 else k
        post_ladder(price, lots, owner, count, m, a, fair_m * (1.0 + skew), half, spacing, levels[m],
                    c[C_DEPTH_USD] * thin * appetite * ramp[i] * refill[i], 1.0 if b > 1.0 else b,
                    1.0 if k > 1.0 else k,
                    tick_size[m], lot_size[m])  # fmt: skip


makers_step = njit(cache=True)(_makers_step_py)
"""Compiled: see :func:`_makers_step_py`. It calls :func:`post_ladder` and the book kernels of
:mod:`perpstress.state.orderbook`; numba's cache does not see a change to a callee in another module, so after
editing those clear ``__pycache__`` (or the numba cache) before trusting a run."""
