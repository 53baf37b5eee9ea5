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
arithmetic) and stops at each stop due; the walk then resumes after it, so every position sees the state that the
positions before it left, as in a per-position loop. With the books' execution and no trade records, the whole walk,
stops included, is compiled (:func:`crowd_act`: the stop's order, close, fee and gap through the liquidation
kernels), one call a round, except that a stopped collateral holder hands back to Python for its conversion at the
close and the walk resumes after it; otherwise each stop goes through :meth:`CrowdStops.stop` in Python, the
reference.

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
from perpstress.mechanisms.liquidation.kernels import _execute, _settle_gap
from perpstress.mechanisms.margin_kernels import fold_triggers, isolated_balances, position_bands, unit_balances
from perpstress.mechanisms.unit_kernels import _close, _unit_equity
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


def _crowd_stop_py(  # type: ignore[no-untyped-def]
    p, dry, pos_account, stop_price, taker_fee, positions, accounts, markets, books, makers, long_lots, funds,
    bad_debt, ps, socialises, social,
):  # fmt: skip
    """:meth:`CrowdStops.stop` of position ``p`` with the books' execution: a market order closing it limited 5 % past
    mark (:func:`~perpstress.mechanisms.liquidation.kernels._execute`; short of the whole position it marks its side
    ``dry``), the fill closed on its unit (:func:`~perpstress.mechanisms.unit_kernels._close`), the taker fee (at most
    the unit's equity left, not below 0, as ``min``/``max`` pick) out of its collateral into the venue's pool, its gap
    settled (:func:`~perpstress.mechanisms.liquidation.kernels._settle_gap`, fund ``venue``); a closed position's stop
    cleared. Returns the notional filled (0.0 for none) and whether anything filled."""
    pos_market, size_lots, isolated_margin = positions[0], positions[1], positions[3]
    wallet = accounts[2]
    mark, lot_size, market_venue = markets[0], markets[1], markets[3]
    fee_pool = makers[2]
    lots = size_lots[p]
    m = pos_market[p]
    side = 1 if lots > 0 else -1
    a = pos_account[p]
    position = p if not np.isnan(isolated_margin[p]) else -1
    filled, average = _execute(m, -lots, mark[m] * (1 - side * 0.05), False, positions, accounts, markets, books,
                               makers)  # fmt: skip
    if filled != -lots:
        dry[m, 0 if side > 0 else 1] = True
    notional = 0.0
    if filled != 0:
        _close(a, position, p, filled, average, positions, accounts, lot_size, long_lots)
        venue = market_venue[m]
        notional = abs(filled) * lot_size[m] * average
        fee = taker_fee[venue] * notional
        left = _unit_equity(a, position, positions, accounts, markets)
        if left < 0.0:  # max(equity, 0.0) as Python picks, NaN kept
            left = 0.0
        if left < fee:  # min(fee, left) as Python picks
            fee = left
        if position >= 0:
            isolated_margin[position] += -fee
        else:
            wallet[a] += -fee
        fee_pool[venue] += fee
        _settle_gap(venue, venue, a, position, positions, accounts, funds, bad_debt, ps, socialises[venue], lot_size,
                    social)  # fmt: skip
    if size_lots[p] == 0:
        stop_price[p] = np.nan
    return notional, filled != 0


crowd_stop = njit(cache=True)(_crowd_stop_py)
"""Compiled: see :func:`_crowd_stop_py`."""


def _crowd_act_py(  # type: ignore[no-untyped-def]
    fired, i, dry, pos_account, pos_start, pos_count, stop_price, topup_reserve, topup_delay, call_ms, now_ms, calls,
    topup_ratio, counts, sums, taker_fee, holding_row, holding_quantity, positions, accounts, markets, books, makers,
    long_lots, funds, bad_debt, ps, socialises, social,
):  # fmt: skip
    """:meth:`CrowdStops.act`'s walk from ``fired[i]``: :func:`crowd_topups` (margin calls included) and, at each stop
    it hands back, :func:`crowd_stop`, then on after it. ``counts``: top-ups and stops filled; ``sums``: top-up USD,
    external inflow and stops' notional, added to one after another as the Python loop adds them.

    A filled stop of a cross position whose account holds collateral (``holding_row[a] >= 0``, past the table's end
    none, with ``holding_quantity`` left) ends the call: its conversion at the close is the caller's, before the walk
    goes on. Returns the index to resume at and that account, or ``(fired.size, -1)`` when the walk is done."""
    pos_market, size_lots, entry, iso_margin = positions
    wallet = accounts[2]
    mark, lot, caps, mmr, cum = markets[0], markets[1], markets[4], markets[5], markets[6]
    n = fired.shape[0]
    while True:
        i, c, usd, external_in = crowd_topups(fired, i, dry, pos_account, pos_start, pos_count, wallet, pos_market,
                                              size_lots, entry, iso_margin, lot, mark, caps, mmr, cum, stop_price,
                                              topup_reserve, topup_delay, call_ms, now_ms, calls, topup_ratio,
                                              counts[0], sums[0], sums[1])  # fmt: skip
        counts[0] = c
        sums[0] = usd
        sums[1] = external_in
        if i == n:
            return n, -1
        p = fired[i]
        cross = np.isnan(iso_margin[p])
        notional, filled = crowd_stop(p, dry, pos_account, stop_price, taker_fee, positions, accounts, markets, books,
                                      makers, long_lots, funds, bad_debt, ps, socialises, social)  # fmt: skip
        i += 1
        if filled:
            counts[1] += 1
            sums[2] += notional
            a = pos_account[p]
            if cross and a < holding_row.shape[0]:
                r = holding_row[a]
                if r >= 0 and holding_quantity[r] > 0:
                    return i, a


crowd_act = njit(cache=True)(_crowd_act_py)
"""Compiled: see :func:`_crowd_act_py`. It calls kernels of other modules (the liquidation and unit kernels, the
order book's ``_match``); numba's cache does not see a change to a callee in another module, so after editing those
clear ``__pycache__`` before trusting a run."""


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
        self.compiled = True
        """Walk the fired positions, stops included, in compiled calls (:func:`crowd_act`) where the execution
        allows it (False: stops one by one in Python, the reference)."""
        self._socialises = np.array(liquidation.socialises_losses, dtype=np.bool_)

    def _act_compiled(self, crowd: I64, dry: NDArray[np.bool_]) -> None:
        """:meth:`act` in calls of :func:`crowd_act`: one per round, and one more after each stopped collateral
        holder, whose collateral :meth:`~perpstress.mechanisms.collateral.CollateralHoldings.convert_closed`
        converts in between, where :meth:`stop` converts it."""
        w = self.world
        pos, acc, mk, books, liq, held = w.positions, w.accounts, w.markets, w.books, self.liquidation, w.collateral
        counts = np.array([self.topups["count"], self.stops["count"]], dtype=np.int64)
        sums = np.array([self.topups["usd"], w.ledger.external_in, self.stops["notional_usd"]], dtype=np.float64)
        rows, quantity = (held.row_of, held.quantity) if held.pairs else (np.zeros(0, np.int64), np.zeros(0))
        positions = pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin
        markets = mk.mark, mk.lot_size, mk.tick_size, mk.venue, mk.tier_cap, mk.tier_mmr, mk.tier_cum
        order_books = (books.price, books.lots, books.owner, books.count, books._fill_owner, books._fill_tick,
                       books._fill_lots)  # fmt: skip
        makers = (w.maker_fee, w.maker_filled, w.ledger.fee_pool, w.last_trade, w.volume_usd,
                  self.execution.accounting.long_lots)  # fmt: skip
        funds, social = liq.gap_funds(), liq._social()
        i = 0
        while True:
            i, holder = crowd_act(
                crowd, i, dry, pos.account, acc.pos_start, acc.pos_count, w.stop_price, w.topup_reserve,
                w.topup_delay_ms, w.call_ms, float(w.now_ms), self.calls, self.topup_ratio, counts, sums, w.taker_fee,
                rows, quantity, positions, (acc.pos_start, acc.pos_count, acc.wallet), markets, order_books, makers,
                self.accounting.long_lots, funds, w.ledger.bad_debt, liq._scratch, self._socialises, social,
            )  # fmt: skip
            if holder < 0:
                break
            sums[1] += held.convert_closed((int(holder),), self.accounting)
        self.topups["count"], self.stops["count"] = int(counts[0]), int(counts[1])
        self.topups["usd"], w.ledger.external_in, self.stops["notional_usd"] = (float(x) for x in sums)

    def act(self, fired: np.ndarray) -> None:
        """Crowd behaviour at a trigger, position by position in ``fired``'s order: a stop closes the position with
        a market order; a top-up adds margin from the account's reserve (an external inflow) to bring MM / balance
        back to half the top-up ratio. The top-ups are made by :func:`crowd_topups`, the stops by :meth:`stop`, or
        the whole walk by :func:`crowd_act` where the execution allows it (``compiled``)."""
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
        ex, liq = self.execution, self.liquidation
        if self.compiled and liq.compiled and isinstance(ex, BookExecution) and not w.scenario.engine.record_trades:
            self._act_compiled(crowd, dry)
            return
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
            units += [(a, -1) for a in cross[bal < req].tolist()]
        iso = candidates[iso_mask].astype(np.int64)
        if iso.size:
            bal, req = isolated_balances(iso, *v.positions_and_markets)
            units += [(p, p) for p in iso[bal < req].tolist()]
        return units
