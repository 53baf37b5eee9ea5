"""The within-step liquidation cascade: rounds of margin check, liquidation and ADL until nothing more fires.

A round: the trigger index fires crowd positions whose band a mark left; their stops and top-ups act; the margin
monitor checks those and the accounts watched every step (makers, hedgers, arbitrageurs); liquidatable units that
hold non-USD collateral sell it into their venue's spot book first (units the cash saves are dropped). The rest go
to their venue's liquidation procedure, venue by venue (a maker's open orders are cancelled first); ADL executes the
round's requests; gaps past bankruptcy are settled (fund, then bad debt), for the bankrupt units and for ADL winners
closed far past mark; collateral holders those closes left with nothing open convert their collateral at once
(before the next revaluation can move it: :mod:`perpstress.mechanisms.collateral`); ADL closes are recorded as
liquidations of kind ``adl``; fills on hedged legs are noted as hedge breaks. If anything filled, collateral is
revalued and marks move (without sampling) and another round runs, up to ``engine.max_cascade_rounds``. A venue's
liquidations, ADL requests, gap settlements and ADL close rows of a round each run in one compiled call (the
modules say which and how to run their Python reference).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.engine.kernel import Timing
from perpstress.mechanisms import hedging
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlEngine
from perpstress.mechanisms.adl import kernels as adl_kernels
from perpstress.mechanisms.agents.crowd import CrowdBands, CrowdStops, MarginMonitor
from perpstress.mechanisms.agents.desk import TradingDesk
from perpstress.mechanisms.execution import ForcedExecution
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.mechanisms.pricing import PricesPhase
from perpstress.state.clock import Clock
from perpstress.state.membership import Membership
from perpstress.state.world import CROWD, MAKER, World


def _sorted_union_py(a, b, out):  # type: ignore[no-untyped-def]
    """The union of two strictly increasing integer arrays into ``out``, increasing (``np.unique`` of their
    concatenation); returns its length, or -1 (``out`` unspecified) when either array is not strictly increasing."""
    for x in (a, b):
        for i in range(1, x.shape[0]):
            if x[i] <= x[i - 1]:
                return -1
    i = j = k = 0
    while i < a.shape[0] or j < b.shape[0]:
        if j == b.shape[0] or (i < a.shape[0] and a[i] < b[j]):
            out[k] = a[i]
            i += 1
        elif i == a.shape[0] or b[j] < a[i]:
            out[k] = b[j]
            j += 1
        else:
            out[k] = a[i]
            i += 1
            j += 1
        k += 1
    return k


sorted_union = njit(cache=True)(_sorted_union_py)
"""Compiled: see :func:`_sorted_union_py`."""


def candidates_of(fired: np.ndarray, watched: np.ndarray) -> np.ndarray:
    """``np.unique`` of the fired positions and the watched accounts (both int64): one compiled merge when both are
    strictly increasing, as the trigger index and the World give them."""
    out = np.empty(fired.size + watched.size, dtype=np.int64)
    n = sorted_union(fired, watched, out) if fired.dtype == watched.dtype == np.int64 else -1
    return out[:n] if n >= 0 else np.unique(np.concatenate([fired, watched]).astype(np.int64))


class Cascade:
    """The liquidation phase (timed as section ``cascade`` of it)."""

    def __init__(self, world: World, accounting: Accounting, execution: ForcedExecution, bands: CrowdBands,
                 stops: CrowdStops, monitor: MarginMonitor, liquidation: LiquidationEngine, adl: AdlEngine,
                 prices: PricesPhase, hedges: hedging.HedgePairs, desk: TradingDesk,
                 timing: Timing) -> None:  # fmt: skip
        self.world = world
        self.accounting = accounting
        self.execution = execution
        self.bands = bands
        self.stops = stops
        self.monitor = monitor
        self.liquidation = liquidation
        self.adl = adl
        self.prices = prices
        self.hedges = hedges
        self.hedge_accounts = set(hedges.leg_of())
        self.desk = desk
        self.timing = timing
        self._units = Membership(max(world.accounts.n, world.positions.n))
        """Which fired positions are not among a round's units."""
        self.collateral_caused_accounts: dict[int, int] = {}
        """Accounts whose liquidation their collateral's fall caused, and the pair that fell most."""

    def __call__(self, clock: Clock) -> None:
        with self.timing.section("cascade"):
            self.run(clock)

    def run(self, clock: Clock) -> None:
        """The within-step cascade: rounds of margin check, liquidation and ADL until nothing more fires."""
        w = self.world
        liq, adl = self.liquidation, self.adl
        for _ in range(w.scenario.engine.max_cascade_rounds):
            fired = w.triggers.fired(w.markets.mark)
            self.stops.act(fired)
            candidates = candidates_of(fired, w.watch_ids)
            candidates = candidates[(w.positions.size_lots[candidates] != 0) & ~w.spot_account[candidates]]
            units = self.monitor.liquidatable(candidates)
            if units and w.collateral.pairs:
                units = self.sell_collateral(units)
            liquidated = np.array([a for a, _ in units], dtype=np.int64)  # accounts (cross) or positions (isolated)
            survivors = fired[self._units.outside(fired, liquidated)] if fired.size else fired
            self.bands.reband(survivors[w.kind[survivors] == CROWD])
            if not units:
                break
            liq_before, adl_before = len(liq.record.lots), len(adl.record.lots)
            makers = liquidated[w.kind[liquidated] == MAKER]
            for account in np.unique(makers).tolist() if makers.size else ():
                w.books.cancel_owner(account)  # every procedure starts by cancelling the account's open orders
            unit_venue = w.accounts.venue[liquidated]  # a crowd position's id is its account's
            for venue in range(len(w.venues)):
                of_venue = np.flatnonzero(unit_venue == venue).tolist()
                if not of_venue:
                    continue
                vunits = [units[i] for i in of_venue]
                requests = liq.liquidate(clock.ts_ms, venue, vunits)
                fund_empty = w.funds.balance[venue] <= 0.01 * max(w.funds.start_balance[venue], 1.0)
                hit_from = len(adl.record.account)
                adl.execute_batch(clock.ts_ms, requests, self.prices.mark_engine.previous, w.index_now, fund_empty)
                bankrupt = [int(req.position) for req in requests]
                winners = [int(hit) for hit in set(adl.record.account[hit_from:])]  # closed far past mark: may be under
                liq.settle_gaps(venue, *self.units_of(np.array(bankrupt + winners, dtype=np.int64)))
                if w.collateral.pairs:  # holders these closes left with nothing open convert at the close
                    closed = sorted({a for a, _ in vunits}.union(winners))
                    w.ledger.external_in += w.collateral.convert_closed(closed, self.accounting)
                self.record_adl_closes(hit_from)
            touched = np.concatenate([liquidated, np.array(adl.record.account[adl_before:], dtype=np.int64)])
            self.bands.reband(np.unique(touched[w.kind[touched] == CROWD]))
            if self.hedge_accounts:
                self.note_hedge_fills(liq_before, adl_before)
            if len(liq.record.lots) + len(adl.record.lots) == liq_before + adl_before:
                break  # nothing filled or closed: another round would find the same units and the same books
            self.prices.revalue_collateral()
            self.prices.marks(clock, sample=False)

    def units_of(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The units (accounts, and the positions themselves where isolated, else -1) of ``positions``, as
        :meth:`Accounting.unit_of` gives them one by one."""
        pos = self.world.positions
        accounts = pos.account[positions].astype(np.int64)
        return accounts, np.where(np.isnan(pos.isolated_margin[positions]), -1, positions).astype(np.int64)

    def record_adl_closes(self, adl_from: int) -> None:
        """The liquidated side of ADL fills is a liquidation too (venues count it so): one row of kind ``adl`` per
        bankrupt unit and market, at the fills' average price, so liquidation totals include what ADL closed.
        Grouped in one compiled call (:func:`~perpstress.mechanisms.adl.kernels.adl_closes`); the Python loop
        when ADL runs in Python (``AdlBook.compiled = False``), the reference."""
        adl, liq = self.adl.record, self.liquidation.record
        if not self.adl.book.compiled:
            self._record_adl_closes_python(adl_from)
            return
        k = len(adl.lots) - adl_from
        if k <= 0:
            return
        out_i = np.zeros((k, 5), dtype=np.int64)
        out_f = np.zeros((k, 3), dtype=np.float64)
        ints = [np.array(c[adl_from:], dtype=np.int64) for c in (adl.venue, adl.market, adl.bankrupt_account,
                                                                   adl.side, adl.lots)]  # fmt: skip
        n = int(adl_kernels.adl_closes(ints[0], ints[1], ints[2], ints[3], ints[4],
                                       np.array(adl.notional_usd[adl_from:], dtype=np.float64),
                                       np.array(adl.mark[adl_from:], dtype=np.float64), self.world.markets.lot_size,
                                       out_i, out_f))  # fmt: skip
        liq.ts_ms.extend([self.world.now_ms] * n)
        for icolumn, ivalues in zip((liq.venue, liq.market, liq.account, liq.side, liq.lots), out_i[:n].T, strict=True):
            icolumn.extend(ivalues.tolist())
        for fcolumn, fvalues in zip((liq.notional_usd, liq.price, liq.mark), out_f[:n].T, strict=True):
            fcolumn.extend(fvalues.tolist())
        liq.kind.extend(["adl"] * n)
        liq.fee_usd.extend([0.0] * n)

    def _record_adl_closes_python(self, adl_from: int) -> None:
        adl, liq = self.adl.record, self.liquidation.record
        closes: dict[tuple[int, int, int, int], list[float]] = {}
        for i in range(adl_from, len(adl.lots)):
            key = (int(adl.venue[i]), int(adl.market[i]), int(adl.bankrupt_account[i]), -int(adl.side[i]))
            row = closes.setdefault(key, [0.0, 0.0, float(adl.mark[i])])
            row[0] += adl.lots[i]
            row[1] += adl.notional_usd[i]
        for (venue, market, account, side), (lots, notional, mark) in closes.items():
            price = notional / (lots * float(self.world.markets.lot_size[market]))
            liq.add(self.world.now_ms, venue, market, account, side, side * int(lots), notional, price, mark, "adl",
                    0.0)  # fmt: skip

    def note_hedge_fills(self, liq_from: int, adl_from: int) -> None:
        liq, adl = self.liquidation.record, self.adl.record
        fills = [
            (int(a), "liquidation", int(n)) for a, n in zip(liq.account[liq_from:], liq.lots[liq_from:], strict=True)
        ]
        fills += [(int(a), "adl", int(n)) for a, n in zip(adl.account[adl_from:], adl.lots[adl_from:], strict=True)]
        hit = [f for f in fills if f[0] in self.hedge_accounts]
        if hit:
            self.hedges.note_fills(self.desk, hit, self.world.markets.mark)

    def sell_collateral(self, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A liquidation whose account would have stood with its collateral at the reference price is counted
        against the pair that fell most. Then the account's collateral is sold into its venue's own spot book (IOC
        down to ``max_sale_discount`` below the best bid) and the rest converted off-book; units the cash saves
        are dropped."""
        w = self.world
        hold = w.collateral
        cross = np.array([a for a, position in units if position < 0], dtype=np.int64)
        holding = cross[hold.row_among(cross) >= 0].tolist()  # the cross units holding collateral, in their order
        for account in holding:
            extra = hold.shortfall_at_reference(account)
            if extra <= 0 or account in self.collateral_caused_accounts:
                continue
            equity = self.accounting.unit_equity(account, -1)
            requirement = sum(self.accounting.maintenance(p) for p in self.accounting.unit_positions(account, -1))
            if equity + extra >= requirement:
                rows = hold.rows_of(account)
                worst = max(
                    rows, key=lambda r: hold.quantity[r] * (hold.reference[hold.pair[r]] - hold.price[hold.pair[r]])
                )
                pair_id = int(hold.pair[worst])
                hold.caused[pair_id] += 1
                self.collateral_caused_accounts[account] = pair_id
        sold_any = False
        for account in holding:
            for r in hold.rows_of(account):
                if hold.quantity[r] <= 0:
                    continue
                pair = hold.pairs[hold.pair[r]]
                m = pair.spot_market
                if m >= 0:
                    lots = int(hold.quantity[r] / w.markets.lot_size[m])
                    bid, _ = self.desk.quotes(m)
                    if lots > 0 and np.isfinite(bid):
                        fill = self.execution.execute(m, -lots, bid * (1 - hold.max_sale_discount), False, account)
                        if fill.lots:
                            q = -fill.lots * float(w.markets.lot_size[m])
                            hold.sold(r, q, q * fill.average_price, w.accounts.wallet)
                sold_any = True
                w.ledger.external_in += hold.convert_off_book(r)
        if sold_any:
            self.prices.revalue_collateral()
            still = set(self.monitor.liquidatable(np.array(sorted({a for a, _ in units}), dtype=np.int64)))
            units = [u for u in units if u in still]
        return units
