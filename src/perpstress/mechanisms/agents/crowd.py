"""The leveraged crowd between steps: trigger bands, stops, top-ups, and the margin monitor.

Rules. Each crowd position carries a *band* of its market's mark inside which nothing about it can happen: its unit
cannot be liquidatable (:func:`~perpstress.mechanisms.margin_kernels.position_bands`), its stop cannot trigger and
its top-up is not due (:func:`~perpstress.mechanisms.margin_kernels.fold_triggers` folds both in as band edges; the
top-up edge is the liquidation-price solve with maintenance scaled by ``1 / topup_margin_ratio``). The trigger index
(:mod:`perpstress.state.triggers`) fires a position only when a mark leaves its band, so a calm step reads no crowd
account. A band allows for the account's collateral falling (``engine.collateral_band_cushion``).

At a trigger: a *stop* closes the position with a market order (limited 5 % past mark), paying the taker fee out of
what equity is left; a stop filled past bankruptcy has its gap settled by the fund, then bad debt; a collateral
holder's stop converts its collateral to cash at the close (:mod:`perpstress.mechanisms.collateral`). A *top-up* adds
margin from the account's reserve (an external inflow) to bring MM / balance back to half the top-up ratio. With
``crowd.topup_delay_median_s`` or ``topup_unanswered_share`` set, a top-up due is a margin call first: the account
answers it after its own delay (log-normal, drawn at build) if it is still due then, or never (the share that never
answers); a position firing while its call waits fires again each step, as its band edge is still crossed.

The fired positions are walked in order by one compiled kernel (:func:`crowd_topups`), which makes the top-ups (the
unit's equity and the position's maintenance with :class:`~perpstress.mechanisms.accounting.Accounting`'s
arithmetic) and hands each stop due back to Python, where it goes through the book; the walk then resumes after it,
so every position sees the state that the positions before it left, as in a per-position loop.

The margin monitor (:class:`MarginMonitor`) finds the liquidatable units among candidates: a cross account whose
balance is below its maintenance at mark, or an isolated position whose margin is. Assumptions: a crowd member
never adds to or flips its position, and acts only at its triggers (no discretionary closes).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.mechanisms.margin_kernels import fold_triggers, isolated_balances, position_bands, unit_balances
from perpstress.state.portfolio import F64, I32, I64
from perpstress.state.world import CROWD, World


def _crowd_topups_py(
    fired: I64,
    i: int,
    dry: NDArray[np.bool_],
    pos_account: I32,
    pos_start: I64,
    pos_count: I32,
    wallet: F64,
    pos_market: I32,
    size_lots: I64,
    entry: F64,
    iso_margin: F64,
    lot: F64,
    mark: F64,
    caps: F64,
    mmr: F64,
    cum: F64,
    stop_price: F64,
    topup_reserve: F64,
    topup_delay: F64,
    call_ms: F64,
    now_ms: float,
    calls: I64,
    topup_ratio: float,
    count: int,
    usd: float,
    external_in: float,
) -> tuple[int, int, float, float]:
    """Walk the crowd positions ``fired[i:]`` in order, making their top-ups, until one whose stop is due.

    A closed position is skipped. A position whose stop the mark has reached (a long at or below it, a short at or
    above) is a stop: on a ``dry[market, 0 long / 1 short]`` side it is skipped, else the walk stops there and
    returns its index, for the caller to execute it and resume after it. Any other position with a top-up reserve
    tops up when its unit's equity is at most 0 or its maintenance over equity has reached ``topup_ratio``: it adds
    ``min(reserve, max(MM / (0.5 * topup_ratio) - equity, 0))`` to its isolated margin or its account's wallet, out
    of its reserve, counting it in ``count``, ``usd`` and ``external_in`` one add after another. The unit's equity
    and the maintenance are :meth:`Accounting.unit_equity` and :meth:`Accounting.maintenance` term for term (the tier
    found by ``np.searchsorted`` on the caps, ``side="left"``). A top-up due from a position whose ``topup_delay``
    (ms) is positive is a margin call: made at ``now_ms`` if none is outstanding (``call_ms`` NaN; counted in
    ``calls[0]``, and in ``calls[1]`` when the delay is infinite: a call never answered), answered only once
    ``now_ms - call_ms >= topup_delay`` (the call then closed); a position found not due closes its outstanding call.
    Returns the stop's index (``fired.size`` when the walk is done) and the new ``count``, ``usd`` and
    ``external_in``."""
    n = fired.shape[0]
    while i < n:
        p = fired[i]
        lots = size_lots[p]
        if lots == 0:
            i += 1
            continue
        m = pos_market[p]
        stop = stop_price[p]
        if stop == stop and (mark[m] <= stop if lots > 0 else mark[m] >= stop):
            if not dry[m, 0 if lots > 0 else 1]:
                return i, count, usd, external_in
            i += 1
            continue
        if topup_reserve[p] > 0:
            a = pos_account[p]
            isolated = not np.isnan(iso_margin[p])
            if isolated:
                equity = iso_margin[p] + (lots * lot[m]) * (mark[m] - entry[p])
            else:
                equity = wallet[a]
                for q in range(pos_start[a], pos_start[a] + pos_count[a]):
                    if size_lots[q] != 0 and np.isnan(iso_margin[q]):
                        mq = pos_market[q]
                        equity += (size_lots[q] * lot[mq]) * (mark[mq] - entry[q])
            notional = abs(lots * lot[m]) * mark[m]
            k = np.searchsorted(caps[m], notional, side="left")
            mm = notional * mmr[m, k] - cum[m, k]
            due = equity <= 0 or mm / equity >= topup_ratio
            if due and topup_delay[p] > 0:
                if call_ms[p] != call_ms[p]:
                    call_ms[p] = now_ms
                    calls[0] += 1
                    if topup_delay[p] == np.inf:
                        calls[1] += 1
                if now_ms - call_ms[p] < topup_delay[p]:
                    due = False
                else:
                    call_ms[p] = np.nan
            elif not due:
                call_ms[p] = np.nan
            if due:
                need = mm / (0.5 * topup_ratio) - equity
                if need < 0.0:  # max(need, 0.0) as Python picks, NaN kept
                    need = 0.0
                add = topup_reserve[p]
                if need < add:  # min(reserve, need) as Python picks
                    add = need
                if add > 0:
                    if isolated:
                        iso_margin[p] += add
                    else:
                        wallet[a] += add
                    topup_reserve[p] -= add
                    external_in += add
                    count += 1
                    usd += add
        i += 1
    return i, count, usd, external_in


crowd_topups = njit(cache=True)(_crowd_topups_py)
"""Compiled: see :func:`_crowd_topups_py`."""


class CrowdBands:
    """The crowd's trigger bands: recomputed for the accounts something moved (``reband``) and handed to the
    trigger index."""

    def __init__(self, world: World) -> None:
        self.world = world
        n_acc = world.accounts.n
        self.topup_ratio = world.scenario.crowd.topup_margin_ratio
        # the top-up trigger is the liquidation-price solve with maintenance scaled by 1 / ratio
        self.topup_mmr = world.markets.tier_mmr / self.topup_ratio
        self.topup_cum = world.markets.tier_cum / self.topup_ratio
        self.lo = np.full(n_acc, -np.inf)
        self.band_cushion = np.zeros(n_acc)
        """Per account, USD its trigger bands leave aside for its collateral falling (see mechanisms.collateral)."""
        self.hi = np.full(n_acc, np.inf)

    def start(self) -> None:
        """Bands for every crowd position at the start, and the trigger index built over them."""
        w = self.world
        w.collateral.fallen_pairs(w.scenario.engine.collateral_band_cushion)  # bands allow for collateral falls
        self.reband(w.crowd_ids)
        w.triggers.rebuild()

    def reband_crowd(self, accounts: I64) -> None:
        """:meth:`reband` the crowd accounts among ``accounts``."""
        self.reband(accounts[self.world.kind[accounts] == CROWD])

    def reband(self, accounts: np.ndarray) -> None:
        if accounts.size == 0:
            return
        w = self.world
        acc = accounts.astype(np.int32)
        v = w.view
        ids = accounts.astype(np.int64)  # position id == account id
        cushion = self.band_cushion
        if w.collateral.pairs:
            cushion[ids] = w.collateral.band_cushion(ids, w.scenario.engine.collateral_band_cushion)
        position_bands(acc, v.pos_start, v.pos_count, v.wallet, cushion, v.pos_market, v.size_lots, v.entry,
                       v.iso_margin, v.lot, v.mark, v.tier_cap, v.tier_mmr, v.tier_cum, self.lo, self.hi)  # fmt: skip
        # stops and top-ups are band edges too (only crowd positions have them: NaN stops, no reserve elsewhere)
        fold_triggers(ids, v.pos_market, v.size_lots, v.entry, v.iso_margin, v.wallet, cushion, v.lot, w.stop_price,
                      w.topup_reserve, v.tier_cap, self.topup_mmr, self.topup_cum, self.lo, self.hi)  # fmt: skip
        open_ = ids[w.positions.size_lots[ids] != 0]
        closed = ids[w.positions.size_lots[ids] == 0]
        if open_.size:
            w.triggers.set_bands(open_, self.lo[open_], self.hi[open_])
        if closed.size:
            w.triggers.deactivate(closed)


class CrowdStops:
    """Stops and top-ups of crowd positions whose trigger fired."""

    def __init__(self, world: World, accounting: Accounting, execution: BookExecution,
                 liquidation: LiquidationEngine) -> None:  # fmt: skip
        self.world = world
        self.accounting = accounting
        self.execution = execution
        self.liquidation = liquidation
        self.topup_ratio = world.scenario.crowd.topup_margin_ratio
        self.stops = {"count": 0, "notional_usd": 0.0}
        self.topups = {"count": 0, "usd": 0.0}
        self.calls = np.zeros(2, np.int64)
        """Margin calls made (answered later or not), and those made to accounts that never answer."""
        self.delayed = bool(world.scenario.crowd.topup_delay_median_s or world.scenario.crowd.topup_unanswered_share)
        """Top-ups wait for margin calls to be answered (``crowd.topup_delay_median_s``, ``topup_unanswered_share``)."""

    def act(self, fired: np.ndarray) -> None:
        """Crowd behaviour at a trigger, position by position in ``fired``'s order: a stop closes the position with
        a market order; a top-up adds margin from the account's reserve (an external inflow) to bring MM / balance
        back to half the top-up ratio. The top-ups are made by :func:`crowd_topups`, the stops by :meth:`stop`."""
        w = self.world
        crowd = fired[w.kind[fired] == CROWD].astype(np.int64)
        if crowd.size == 0:
            return
        v = w.view
        dry = np.zeros((w.markets.n, 2), dtype=np.bool_)
        """Per market and side (0 long, 1 short): a stop there found the book empty within the stops' limit, or
        emptied it, during this call. The limit is the same for every stop there (the mark does not move within the
        call) and the book only shrinks, so later stops on that side cannot fill either; they keep trying at the
        next check, as before."""
        i = 0
        while True:
            i, self.topups["count"], self.topups["usd"], w.ledger.external_in = crowd_topups(
                crowd, i, dry, w.positions.account, v.pos_start, v.pos_count, v.wallet, v.pos_market, v.size_lots,
                v.entry, v.iso_margin, v.lot, v.mark, v.tier_cap, v.tier_mmr, v.tier_cum, w.stop_price,
                w.topup_reserve, w.topup_delay_ms, w.call_ms, float(w.now_ms), self.calls, self.topup_ratio,
                int(self.topups["count"]), self.topups["usd"], w.ledger.external_in,
            )  # fmt: skip
            if i == crowd.size:
                return
            self.stop(int(crowd[i]), dry)
            i += 1

    def stop(self, p: int, dry: NDArray[np.bool_]) -> None:
        """Position ``p``'s stop, due: a market order closing it, limited 5 % past mark; the taker fee out of what
        equity is left; the gap of a fill past bankruptcy settled; a holder left with nothing open converts its
        collateral at once (:meth:`~perpstress.mechanisms.collateral.CollateralHoldings.convert_closed`). A fill
        short of the whole position marks its side of the market ``dry``; a position left open keeps its stop, to
        try again while the mark is past it."""
        w = self.world
        pos, mk = w.positions, w.markets
        accounting = self.accounting
        lots = int(pos.size_lots[p])
        m = int(pos.market[p])
        mark = float(mk.mark[m])
        side = 1 if lots > 0 else -1
        unit = accounting.unit_of(p)
        fill = self.execution.execute(m, -lots, mark * (1 - side * 0.05), False, p)
        if fill.lots != -lots:
            dry[m, 0 if side > 0 else 1] = True
        if fill.lots:
            accounting.close(*unit, p, fill.lots, fill.average_price)
            venue = int(mk.venue[m])
            notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
            fee = min(w.taker_fee[venue] * notional, max(accounting.unit_equity(*unit), 0.0))
            accounting.credit(*unit, -fee)
            w.ledger.fee_pool[venue] += fee
            self.stops["count"] += 1
            self.stops["notional_usd"] += notional
            self.liquidation.settle_gap(venue, *unit)  # a stop filled past bankruptcy: fund, then bad debt
            if w.collateral.pairs and unit[1] < 0:
                w.ledger.external_in += w.collateral.convert_closed((unit[0],), accounting)
        if pos.size_lots[p] == 0:
            w.stop_price[p] = np.nan  # done; an unfilled stop keeps trying while the mark is past it


class MarginMonitor:
    """Which margin units among candidate accounts are liquidatable at the current marks."""

    def __init__(self, world: World) -> None:
        self.world = world

    def liquidatable(self, candidates: np.ndarray) -> list[tuple[int, int]]:
        """Units ``(account, -1)`` (cross) and ``(position, position)`` (isolated) whose margin balance is below
        their maintenance margin, cross accounts first, each in the candidates' order."""
        if candidates.size == 0:
            return []
        v = self.world.view
        iso_mask = ~np.isnan(v.iso_margin[candidates])
        units: list[tuple[int, int]] = []
        cross = candidates[~iso_mask].astype(np.int32)
        if cross.size:
            bal, req = unit_balances(cross, *v)
            units += [(int(a), -1) for a in cross[bal < req]]
        iso = candidates[iso_mask].astype(np.int64)
        if iso.size:
            bal, req = isolated_balances(iso, *v.positions_and_markets)
            units += [(int(p), int(p)) for p in iso[bal < req]]
        return units
