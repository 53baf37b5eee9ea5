"""The trading desk: the World as arbitrageurs and cross-venue hedgers see it (the
:class:`~perpstress.mechanisms.traders.TradingWorld` protocol), and their phase.

The desk answers what a trader may know (best quotes, fees, its positions, equity, maintenance, notional, cash, money
in transit towards an account) and does what it may do (an IOC taker order; a transfer between its accounts over
the rail, debited now). A spot account's cash is its wallet less what its holdings cost; it has no maintenance.

Phase: every arbitrageur acts in order (:func:`perpstress.mechanisms.arbitrage.act`), then, on steps when some
hedged owner looks, the hedgers check their legs (:meth:`perpstress.mechanisms.hedging.HedgePairs.check`) with the
set of legs whose ADL rank is above their book's quantile.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perpstress.mechanisms import arbitrage, hedging
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlEngine
from perpstress.mechanisms.execution import BookExecution
from perpstress.state.clock import Clock
from perpstress.state.orderbook import ASK, BID
from perpstress.state.world import CROWD, World


class TradingDesk:
    """:class:`~perpstress.mechanisms.traders.TradingWorld` over a World. ``reband``: called with an account
    whose wallet a transfer debited, when it is a crowd account (its trigger bands moved)."""

    def __init__(self, world: World, accounting: Accounting, execution: BookExecution,
                 reband: Callable[[np.ndarray], None]) -> None:  # fmt: skip
        self.world = world
        self.accounting = accounting
        self.execution = execution
        self._reband = reband

    @property
    def now_ms(self) -> int:
        return self.world.now_ms

    def quotes(self, market: int) -> tuple[float, float]:
        return self.world.books.best(market, BID), self.world.books.best(market, ASK)

    def taker_fee_rate(self, market: int) -> float:
        return float(self.world.taker_fee[self.world.markets.venue[market]])

    def lot_size(self, market: int) -> float:
        return float(self.world.markets.lot_size[market])

    def trade(self, account: int, market: int, lots: int, limit_price: float) -> tuple[int, float]:
        fill = self.execution.taker_trade(account, market, lots, limit_price)
        return fill.lots, fill.average_price

    def position_lots(self, account: int) -> int:
        return int(self.world.positions.size_lots[account])

    def equity(self, account: int) -> float:
        return self.accounting.unit_equity(*self.accounting.unit_of(account))

    def maintenance(self, account: int) -> float:
        return 0.0 if self.world.spot_account[account] else self.accounting.maintenance(account)

    def notional(self, account: int) -> float:
        w = self.world
        return abs(self.accounting.base(account)) * float(w.markets.mark[w.positions.market[account]])

    def wallet(self, account: int) -> float:
        """Cash: a spot account's wallet less what its holdings cost; a futures account's cross wallet."""
        w = float(self.world.accounts.wallet[account])
        if self.world.spot_account[account]:
            w -= self.accounting.base(account) * float(self.world.positions.entry_price[account])
        return w

    def in_transit_to(self, account: int) -> float:
        return self.world.rails.pending_by_account.get(account, 0.0)

    def transfer(self, owner: int, src_account: int, dst_account: int, usd: float, purpose: str) -> None:
        if usd <= 0:
            return
        w = self.world
        w.accounts.wallet[src_account] -= usd
        venues = w.accounts.venue
        w.rails.request(w.now_ms, owner, int(venues[src_account]), int(venues[dst_account]), src_account,
                        dst_account, usd, purpose)  # fmt: skip
        if w.kind[src_account] == CROWD:
            self._reband(np.array([src_account]))


class ArbitragePhase:
    """Arbitrageurs, then hedgers, act through the desk."""

    def __init__(self, desk: TradingDesk, arbitrageurs: list[arbitrage.ArbLegs], hedges: hedging.HedgePairs,
                 adl: AdlEngine) -> None:  # fmt: skip
        self.desk = desk
        self.world = desk.world
        self.arbitrageurs = arbitrageurs
        self.hedges = hedges
        self.adl = adl

    def __call__(self, clock: Clock) -> None:
        for trader in self.arbitrageurs:
            arbitrage.act(self.desk, trader)
        if self.hedges.n and any(clock.step % every == 0 for every in self.hedges.check_every):
            self.hedges.check(self.desk, clock.step, self.adl_high())  # ranks only on steps when an owner looks

    def adl_high(self) -> set[int]:
        """Hedged legs whose ADL score ranks above their book's quantile among the market's winning positions on
        the same side (the indicator venues show; estimated on at most 5,000 sampled candidates)."""
        high: set[int] = set()
        hedges, pos = self.hedges, self.world.positions
        for i in range(hedges.n):
            q = hedges.adl_quantile[hedges.book[i]]
            if q is None:
                continue
            for a in (int(hedges.long_account[i]), int(hedges.short_account[i])):
                lots = int(pos.size_lots[a])
                if lots == 0:
                    continue
                m = int(pos.market[a])
                rank = self.adl.rank_percentile(m, a, 1 if lots > 0 else -1)
                if rank is not None and rank >= q:
                    high.add(a)
        return high
