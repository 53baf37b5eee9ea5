"""Funds unwind what they took over: each step Drift's keepers and every insurance fund or backstop vault sell
``engine.fund_unwind_fraction`` of their inventory (at least one lot) into the books with IOC orders limited 1 %
past mark; a fund's fill is booked against its inventory, a keeper's like any taker's. Then each fund records its
equity for its drawdown trigger. Assumption: funds unwind at a fixed pace, whatever the book's depth.

A fund never holds less than nothing: a fund whose equity (balance plus its inventory at mark) has fallen below
zero (its takeovers unwound, or marked, below their bankruptcy prices) is brought back to zero and the deficit
recorded as the venue's bad debt, the loss no fund paid. Money stays conserved: the fund gains what bad debt
records. (Drift would socialise such a loss; no scenario gives its fund inventory.)
"""

from __future__ import annotations

import numpy as np

from perpstress.mechanisms.execution import ForcedExecution
from perpstress.state.clock import Clock
from perpstress.state.world import World


class FundsPhase:
    def __init__(self, world: World, execution: ForcedExecution) -> None:
        self.world = world
        self.execution = execution

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
