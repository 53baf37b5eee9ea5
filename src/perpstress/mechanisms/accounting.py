"""Bookkeeping over the state arrays that every mechanism shares: units, equity, closing at a price.

A position's value to its holder is its unit's collateral plus ``size * (mark - entry)``. Closing ``x`` base units
at price ``P`` moves ``x * (P - entry)`` from unrealised into the unit's collateral (the cross wallet, or the
isolated margin), which is what keeps money conserved when the counterparty books the opposite trade.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.state.portfolio import Accounts, Markets, Positions


class Accounting:
    def __init__(self, markets: Markets, accounts: Accounts, positions: Positions) -> None:
        self.markets = markets
        self.accounts = accounts
        self.positions = positions
        self.long_lots = np.bincount(
            positions.market, weights=np.maximum(positions.size_lots, 0), minlength=markets.n
        ).astype(np.int64)
        """Open interest per market in lots (total long size), kept current by every size change made here."""

    def _resize(self, p: int, new: int) -> None:
        old = int(self.positions.size_lots[p])
        self.long_lots[self.positions.market[p]] += max(new, 0) - max(old, 0)
        self.positions.size_lots[p] = new

    def base(self, p: int) -> float:
        """Position ``p``'s signed size in base units."""
        return float(self.positions.size_lots[p] * self.markets.lot_size[self.positions.market[p]])

    def unit_positions(self, account: int, position: int) -> list[int]:
        """Open positions of a unit: ``position`` itself when isolated (>= 0), else the account's cross positions."""
        pos = self.positions
        if position >= 0:
            return [position] if pos.size_lots[position] != 0 else []
        s = int(self.accounts.pos_start[account])
        c = int(self.accounts.pos_count[account])
        return [p for p in range(s, s + c) if pos.size_lots[p] != 0 and np.isnan(pos.isolated_margin[p])]

    def unit_of(self, p: int) -> tuple[int, int]:
        """The unit (account, position or -1) that position ``p`` belongs to."""
        a = int(self.positions.account[p])
        return (a, p) if not np.isnan(self.positions.isolated_margin[p]) else (a, -1)

    def collateral(self, account: int, position: int) -> float:
        return float(self.positions.isolated_margin[position] if position >= 0 else self.accounts.wallet[account])

    def credit(self, account: int, position: int, amount: float) -> None:
        if position >= 0:
            self.positions.isolated_margin[position] += amount
        else:
            self.accounts.wallet[account] += amount

    def unit_equity(self, account: int, position: int) -> float:
        eq = self.collateral(account, position)
        for p in self.unit_positions(account, position):
            m = self.positions.market[p]
            eq += self.base(p) * (self.markets.mark[m] - self.positions.entry_price[p])
        return eq

    def maintenance(self, p: int) -> float:
        m = self.positions.market[p]
        notional = abs(self.base(p)) * self.markets.mark[m]
        k = int(np.searchsorted(self.markets.tier_cap[m], notional, side="left"))
        return float(notional * self.markets.tier_mmr[m, k] - self.markets.tier_cum[m, k])

    def close(self, account: int, position: int, p: int, lots: int, price: float) -> float:
        """Trade ``lots`` (signed; against the position to reduce it) on ``p`` at ``price``; returns realised PnL."""
        m = self.positions.market[p]
        base = -lots * self.markets.lot_size[m]
        realised = float(base * (price - self.positions.entry_price[p]))
        self._resize(p, int(self.positions.size_lots[p]) + lots)
        self.credit(account, position, realised)
        return realised

    def bankruptcy_price(self, account: int, position: int, p: int) -> float:
        """Price at which closing ``p`` leaves the unit's equity at zero, its other positions at mark."""
        m = self.positions.market[p]
        q = self.base(p)
        others = self.unit_equity(account, position) - q * (self.markets.mark[m] - self.positions.entry_price[p])
        return float(max(self.positions.entry_price[p] - others / q, 0.0))

    def trade(self, account: int, position: int, p: int, lots: int, price: float) -> float:
        """Add ``lots`` (signed) to position ``p`` at ``price``: the reduced part realises PnL, an added part
        averages into the entry, a flip opens the remainder at ``price``. Returns the realised PnL."""
        pos = self.positions
        old = int(pos.size_lots[p])
        if old == 0 or (old > 0) == (lots > 0):
            new = old + lots
            pos.entry_price[p] = (old * pos.entry_price[p] + lots * price) / new if new else 0.0
            self._resize(p, new)
            return 0.0
        closing = -old if abs(lots) >= abs(old) else lots
        realised = self.close(account, position, p, closing, price)
        rest = lots - closing
        if rest:
            self._resize(p, rest)
            pos.entry_price[p] = price
        return realised


def _settle_maker_fills_py(  # type: ignore[no-untyped-def]
    owners, prices, filled, sign, lot, maker_rate, venue, pos_market, lot_size, size_lots, entry_price, wallet,
    long_lots, maker_filled, fee_pool,
):  # fmt: skip
    """The makers' side of one taker order, fill by fill in book order: :meth:`Accounting.trade` of ``-sign *
    filled[i]`` lots at ``prices[i]`` on maker ``owners[i]``'s position (a maker's position index is its account
    index, cross margin: PnL to its wallet), then the maker fee out of the wallet into ``fee_pool[venue]``. The same
    arithmetic in the same order as the Python methods, so results are identical; compiled because a crash step
    has thousands of fills. ``lot``: the executing market's lot size (the fee's); ``lot_size``: per market."""
    for i in range(owners.size):
        o = owners[i]
        price = prices[i]
        n = filled[i]
        maker_filled[o] = True
        lots = -sign * n
        old = size_lots[o]
        m = pos_market[o]
        if old == 0 or (old > 0) == (lots > 0):
            new = old + lots
            entry_price[o] = (old * entry_price[o] + lots * price) / new if new != 0 else 0.0
            long_lots[m] += max(new, 0) - max(old, 0)
            size_lots[o] = new
        else:
            closing = -old if abs(lots) >= abs(old) else lots
            realised = (-closing * lot_size[m]) * (price - entry_price[o])
            new = old + closing
            long_lots[m] += max(new, 0) - max(old, 0)
            size_lots[o] = new
            wallet[o] += realised
            rest = lots - closing
            if rest != 0:
                long_lots[m] += max(rest, 0) - max(new, 0)
                size_lots[o] = rest
                entry_price[o] = price
        fee = maker_rate * n * lot * price
        wallet[o] += -fee
        fee_pool[venue] += fee


settle_maker_fills = njit(cache=True)(_settle_maker_fills_py)
"""Compiled: see :func:`_settle_maker_fills_py`."""
