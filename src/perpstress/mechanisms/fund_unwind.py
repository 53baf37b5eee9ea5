"""Funds unwind what they took over: each step Drift's keepers and every insurance fund or backstop vault sell
``engine.fund_unwind_fraction`` of their inventory (at least one lot) into the books with IOC orders limited 1 %
past mark; a fund's fill is booked against its inventory, a keeper's like any taker's. Then each fund records its
equity for its drawdown trigger. Assumption: funds unwind at a fixed pace, whatever the book's depth.

A fund never holds less than nothing: a fund whose equity (balance plus its inventory at mark) has fallen below
zero (its takeovers unwound, or marked, below their bankruptcy prices) is brought back to zero and the deficit
recorded as the venue's bad debt, the loss no fund paid. Money stays conserved: the fund gains what bad debt
records. (Drift would socialise such a loss; no scenario gives its fund inventory.)

The funds' unwinds and equity run in one compiled call a step (:func:`unwind_funds`) when forced orders go to the
books and no trade is recorded; the Python loop over :class:`~perpstress.mechanisms.execution.BookExecution` and
:class:`~perpstress.mechanisms.insurance.InsuranceFunds` is the reference (and the path otherwise).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.mechanisms.execution import BookExecution, ForcedExecution
from perpstress.mechanisms.liquidation.kernels import _execute, _fund_equity, _fund_trade
from perpstress.state.clock import Clock
from perpstress.state.world import World


def _unwind_funds_py(n_funds, frac, positions, accounts, markets, books, makers, funds, bad_debt, equity):  # type: ignore[no-untyped-def]
    """The funds' part of :meth:`FundsPhase.__call__` with the books' execution and no trade records, fund by fund
    and, within a fund, market by market where it holds inventory: an IOC of ``frac`` of the inventory (at least one
    lot, at most the inventory rounded to lots) limited 1 % past mark through the book
    (:func:`~perpstress.mechanisms.liquidation.kernels._execute`), its fill booked against the inventory
    (:func:`~perpstress.mechanisms.liquidation.kernels._fund_trade`, :meth:`InsuranceFunds.unwind`'s arithmetic); then
    a negative equity (:func:`~perpstress.mechanisms.liquidation.kernels._fund_equity`) brought back to zero as bad
    debt, and the equity after written to ``equity[f]`` (what :meth:`InsuranceFunds.observe` records). The same
    arithmetic in the same order as the Python loop (``round`` is ``np.rint``: both round half to even)."""
    mark, lot_size = markets[0], markets[1]
    balance, inventory = funds[0], funds[1]
    for f in range(n_funds):
        for m in range(inventory.shape[1]):
            inv = inventory[f, m]
            if inv == 0:
                continue
            lot = lot_size[m]
            s = 1 if inv > 0 else -1
            want = int(abs(inv) * frac / lot)
            if want < 1:
                want = 1
            most = int(np.rint(abs(inv) / lot))
            n = most if most < want else want
            lots = -s * n
            side = 0 if lots == 0 else -s
            limit_price = mark[m] * (1 + side * 0.01)
            filled, average = _execute(m, lots, limit_price, False, positions, accounts, markets, books, makers)
            if filled != 0:
                _fund_trade(f, m, filled * lot, average, funds)
        deficit = -_fund_equity(f, mark, funds)
        if deficit > 0:
            balance[f] += deficit
            bad_debt[f] += deficit
        equity[f] = _fund_equity(f, mark, funds)


unwind_funds = njit(cache=True)(_unwind_funds_py)
"""Compiled: see :func:`_unwind_funds_py`. It calls the liquidation kernels' ``_execute``, ``_fund_trade`` and
``_fund_equity``; numba's cache does not see a change to a callee in another module, so after editing those clear
``__pycache__`` before trusting a run."""


class FundsPhase:
    def __init__(self, world: World, execution: ForcedExecution) -> None:
        self.world = world
        self.execution = execution
        self.compiled = True
        """Unwind the funds in one compiled call (:func:`unwind_funds`) where the execution allows it (False: the
        Python loop, the reference)."""

    def __call__(self, clock: Clock) -> None:
        w = self.world
        frac = w.scenario.engine.fund_unwind_fraction
        pos, mk, funds = w.positions, w.markets, w.funds
        keepers = w.keeper_ids
        for k in keepers[pos.size_lots[keepers] != 0]:  # keepers unwind too
            km = int(pos.market[k])
            held = int(pos.size_lots[k])
            sell = -int(np.sign(held)) * min(abs(held), max(1, int(abs(held) * frac)))
            self.execution.taker_trade(int(k), km, sell, float(mk.mark[km]) * (1 + np.sign(sell) * 0.01))
        ex = self.execution
        if self.compiled and isinstance(ex, BookExecution) and not w.scenario.engine.record_trades:
            n = len(w.venues)
            equity = np.zeros(n)
            books = w.books
            unwind_funds(
                n, float(frac), (pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
                (w.accounts.pos_start, w.accounts.pos_count, w.accounts.wallet),
                (mk.mark, mk.lot_size, mk.tick_size, mk.venue, mk.tier_cap, mk.tier_mmr, mk.tier_cum),
                (books.price, books.lots, books.owner, books.count, books._fill_owner, books._fill_tick,
                 books._fill_lots),
                (w.maker_fee, w.maker_filled, w.ledger.fee_pool, w.last_trade, w.volume_usd, ex.accounting.long_lots),
                (funds.balance, funds.inventory, funds.entry_price, funds.claimed, funds.cost_adjustment),
                w.ledger.bad_debt, equity,
            )  # fmt: skip
            for f in range(n):
                funds.record_equity(f, clock.ts_ms, float(equity[f]))
            return
        for f in range(len(w.venues)):
            for m in np.flatnonzero(funds.inventory[f]):
                inv = funds.inventory[f, m]
                lots = -int(np.sign(inv)) * max(1, int(abs(inv) * frac / mk.lot_size[m]))
                lots = int(np.sign(lots)) * min(abs(lots), round(abs(inv) / mk.lot_size[m]))
                mark = float(mk.mark[m])
                fill = self.execution.execute(int(m), lots, mark * (1 + np.sign(lots) * 0.01), False, -1)
                if fill.lots:
                    funds.unwind(f, int(m), fill.lots * mk.lot_size[m], fill.average_price)
            deficit = -funds.equity(f, mk.mark)
            if deficit > 0:
                funds.balance[f] += deficit
                w.ledger.bad_debt[f] += deficit  # fund f is venue f's
            funds.observe(f, clock.ts_ms, mk.mark)
