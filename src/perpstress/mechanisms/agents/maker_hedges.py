"""Market makers hedging their inventory on another venue (``[[makers.hedges]]``,
:class:`perpstress.config.agents.MakerHedge`).

Rule. The makers of one perpetual take on inventory as takers and forced orders hit their quotes (a maker's
inventory is its position less its start position, which stands for the other side's hedged book). Every
``check_interval_s`` their hedge account on the other venue compares its position with the target, ``-ratio`` times
the makers' inventory in base units; when the gap is worth ``band_usd`` or more it sends an IOC market order for the
gap (at most ``clip_usd``, limited ``limit_fraction`` past mark) through that venue's book; an order that would grow
the hedge is cut to ``max_leverage`` times the account's equity (counted as capital-bound when nothing is left).
The hedge account is margined and liquidated as any account (checked every step) and is an ADL candidate: when a
liquidation or ADL closes part of it, the makers are unhedged by what was closed, and the hedger waits
``rehedge_after_s`` before hedging again (never, when unset). The phase records the largest unhedged notional (the
makers' inventory plus the hedge, at the hedge market's mark) and every forced close of a hedge.

Left out, plainly: one hedge account per hedged market (the makers hedge together); the hedger moves no margin
between venues, and hedges only in the perpetual named (no spot, no other asset).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perpstress.config.agents import MakerHedge
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.execution import BookExecution
from perpstress.state.clock import Clock
from perpstress.state.world import World


class MakerHedgesPhase:
    """Each hedge's check, in ``makers.hedges`` order (see the module docstring)."""

    def __init__(self, world: World, accounting: Accounting, execution: BookExecution) -> None:
        self.world = world
        self.accounting = accounting
        self.execution = execution
        assert world.scenario.makers is not None
        self.specs: list[MakerHedge] = list(world.scenario.makers.hedges)
        ids = {k: i for i, k in enumerate(world.market_keys)}
        pos = world.positions
        self.account = np.asarray(world.maker_hedge_ids, dtype=np.int64)
        self.hedge_market = [ids[h.hedge] for h in self.specs]
        self.makers = [world.maker_ids[pos.market[world.maker_ids] == ids[h.market]] for h in self.specs]
        self.makers_start = [pos.size_lots[m].copy() for m in self.makers]
        """The makers' start positions: their inventory is what they hold beyond them."""
        self.source_lot = [float(world.markets.lot_size[ids[h.market]]) for h in self.specs]
        step_s = world.scenario.step_ms / 1000.0
        self.every = [max(1, round(h.check_interval_s / step_s)) for h in self.specs]
        self.expected = [0] * len(self.specs)
        """Per hedge: its position as the hedger last left it (a difference is a forced close)."""
        self.resume_ms = [0.0] * len(self.specs)
        """Per hedge: no hedging before this time (after a forced close); infinite: never again."""
        self.trades = 0
        self.traded_usd = 0.0
        self.capital_bound_checks = 0
        self.forced_closes = 0
        self.forced_lots = 0
        self.max_unhedged_usd = 0.0
        self.max_hedge_usd = 0.0

    def inventory_base(self, i: int) -> float:
        """The makers' inventory in hedge ``i``'s market, base units (long > 0)."""
        lots = self.world.positions.size_lots[self.makers[i]] - self.makers_start[i]
        return float(lots.sum()) * self.source_lot[i]

    def __call__(self, clock: Clock) -> None:
        w = self.world
        for i, spec in enumerate(self.specs):
            if clock.step % self.every[i]:
                continue
            a, m = int(self.account[i]), self.hedge_market[i]
            lots = int(w.positions.size_lots[a])
            if lots != self.expected[i]:  # a liquidation or ADL closed part of the hedge
                self.forced_closes += 1
                self.forced_lots += abs(self.expected[i] - lots)
                wait = spec.rehedge_after_s
                self.resume_ms[i] = np.inf if wait is None else w.now_ms + 1000.0 * wait
                self.expected[i] = lots
            mark = float(w.markets.mark[m])
            lot = float(w.markets.lot_size[m])
            inventory = self.inventory_base(i)
            hedge = lots * lot
            self.max_unhedged_usd = max(self.max_unhedged_usd, abs(inventory + hedge) * mark)
            self.max_hedge_usd = max(self.max_hedge_usd, abs(hedge) * mark)
            if w.now_ms < self.resume_ms[i]:
                continue
            gap = -spec.ratio * inventory - hedge
            if abs(gap) * mark < spec.band_usd:
                continue
            order = float(np.clip(gap, -spec.clip_usd / mark, spec.clip_usd / mark))
            if abs(hedge + order) > abs(hedge):  # the hedge grows: within max_leverage x equity
                room = spec.max_leverage * self.accounting.unit_equity(a, -1) / mark - abs(hedge)
                if room * mark < spec.band_usd:
                    self.capital_bound_checks += 1
                    continue
                order = float(np.clip(order, -room, room))
            n = int(order / lot)
            if n == 0:
                continue
            fill = self.execution.taker_trade(a, m, n, mark * (1 + np.sign(n) * spec.limit_fraction))
            if fill.lots:
                self.trades += 1
                self.traded_usd += abs(fill.lots) * lot * fill.average_price
            self.expected[i] = int(w.positions.size_lots[a])

    def summary(self, liquidated: list[int], adl_hit: list[int], adl_notional: list[float]) -> dict[str, Any]:
        """Totals for summary.json; ``liquidated``, ``adl_hit`` and ``adl_notional`` are the runs' records'
        account columns (and ADL notional)."""
        hedges = set(self.account.tolist())
        adl = [n for a, n in zip(adl_hit, adl_notional, strict=True) if a in hedges]
        return {
            "hedges": len(self.specs),
            "trades": self.trades,
            "traded_usd": self.traded_usd,
            "capital_bound_checks": self.capital_bound_checks,
            "forced_closes": self.forced_closes,
            "liquidation_rows": sum(1 for a in liquidated if a in hedges),
            "adl_fills": len(adl),
            "adl_notional_usd": float(sum(adl)),
            "max_hedge_usd": self.max_hedge_usd,
            "max_unhedged_usd": self.max_unhedged_usd,
        }
