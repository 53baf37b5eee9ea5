"""Execution: taker orders against the order books, or (the counterfactual without forced flow) absorbed at mark.

Rule: a taker order walks its market's book price by price up to its limit (IOC; fill-or-kill when asked). Each
fill settles the maker's side at once (position and maker fee, compiled: a crash step has thousands of fills) and
sets the market's last trade; a taker trade (:meth:`BookExecution.taker_trade`) then books the taker's side and its
taker fee. Fees go to the venue's fee pool. Left out: latency, queue position, hidden or iceberg orders, self-trade
prevention.

:class:`AbsorbedExecution` is the counterfactual twin's execution for forced orders (liquidations, funds' unwinds,
collateral sales) when ``engine.forced_flow = "absorbed_at_mark"``: the order never reaches the book; an outside
absorber (the market's ABSORBER account) fills it in full at the market's mark when the order's limit allows it (an
infinitely deep quote at the mark), else not at all. No maker fills, no maker fee, no last trade and no volume;
the absorber's position is an account's position like any other, so money, open interest and funding count it.
"""

from __future__ import annotations

import numpy as np

from perpstress.mechanisms.accounting import Accounting, settle_maker_fills
from perpstress.mechanisms.liquidation import Fill
from perpstress.state.world import World


class _TakerSide:
    """What every execution shares: a taker's whole order, its side booked after the fills."""

    world: World
    accounting: Accounting

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill:
        raise NotImplementedError

    def taker_trade(self, account: int, m: int, lots: int, limit: float, fee_within_equity: bool = False) -> Fill:
        """An IOC taker order of ``account`` (one cross position, id = account): the book's fills, then the
        taker's side at their average price and the taker fee out of its wallet into the venue's fee pool (with
        absorbed flow, the absorber is the counterparty: a keeper's unwind). With ``fee_within_equity`` the fee
        is at most the equity the trade leaves the account (a close past bankruptcy pays none), as a stop's."""
        w = self.world
        fill = self.execute(m, lots, limit, False, account)
        if fill.lots:
            self.accounting.trade(account, -1, account, fill.lots, fill.average_price)
            venue = int(w.markets.venue[m])
            fee = w.taker_fee[venue] * abs(fill.lots) * w.markets.lot_size[m] * fill.average_price
            if fee_within_equity:
                fee = min(fee, max(self.accounting.unit_equity(account, -1), 0.0))
            self.accounting.credit(account, -1, -fee)
            w.ledger.fee_pool[venue] += fee
        return fill


class BookExecution(_TakerSide):
    """Taker orders against the books; settles the makers' side (position, maker fee) and the last trade."""

    def __init__(self, world: World, accounting: Accounting) -> None:
        self.world = world
        self.accounting = accounting

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill:
        w = self.world
        owners, ticks, filled = w.books.match(market, lots, limit_price, fill_or_kill)
        if filled.size == 0:
            return Fill(0, float("nan"))
        tick = w.markets.tick_size[market]
        prices = ticks * tick
        venue = int(w.markets.venue[market])
        maker_rate = w.maker_fee[venue]
        sign = 1 if lots > 0 else -1
        if w.scenario.engine.record_trades:
            k = int(filled.size)
            for name, values in (("ts_ms", [w.now_ms] * k), ("market", [market] * k), ("account", [taker] * k),
                                 ("maker", owners.tolist()), ("lots", (sign * filled).tolist()),
                                 ("price", prices.tolist())):  # fmt: skip
                w.trades[name].extend(values)
        pos = w.positions
        settle_maker_fills(owners, prices, filled, sign, float(w.markets.lot_size[market]), float(maker_rate), venue,
                           pos.market, w.markets.lot_size, pos.size_lots, pos.entry_price, w.accounts.wallet,
                           self.accounting.long_lots, w.maker_filled, w.ledger.fee_pool)  # fmt: skip
        total = int(filled.sum())
        w.last_trade[market] = float(prices[-1])
        w.volume_usd[market] += float((prices * filled).sum() * w.markets.lot_size[market])
        return Fill(sign * total, float((prices * filled).sum() / total))


class AbsorbedExecution(_TakerSide):
    """Forced orders filled by the market's absorber at the mark, within their limits; nothing reaches the books."""

    def __init__(self, world: World, accounting: Accounting) -> None:
        if world.absorber_ids.size != world.markets.n:
            raise ValueError("absorbed forced flow needs one absorber account per market (engine.forced_flow)")
        self.world = world
        self.accounting = accounting
        self.absorbed_usd = np.zeros(world.markets.n)
        """Per market: notional absorbed so far, USD."""

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill:
        w = self.world
        mark = float(w.markets.mark[market])
        if lots == 0 or not np.isfinite(mark) or (mark > limit_price if lots > 0 else mark < limit_price):
            return Fill(0, float("nan"))
        absorber = int(w.absorber_ids[market])
        self.accounting.trade(absorber, -1, absorber, -lots, mark)
        self.absorbed_usd[market] += abs(lots) * float(w.markets.lot_size[market]) * mark
        return Fill(lots, mark)


ForcedExecution = BookExecution | AbsorbedExecution
"""Where forced orders trade: the books, or the absorbers at mark (``engine.forced_flow``)."""
