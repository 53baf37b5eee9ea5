"""Compiled bookkeeping of margin units over the state arrays, the same arithmetic in the same order as
:class:`~perpstress.mechanisms.accounting.Accounting`'s methods (so results are identical): a unit's open positions,
its equity, a close at a price, a position's bankruptcy price. Shared by the compiled liquidation and ADL.

State comes as tuples of the engine's arrays: ``positions`` (market, size_lots, entry_price, isolated_margin),
``accounts`` (pos_start, pos_count, wallet), ``markets`` (mark, lot_size, then anything).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _unit_positions_py(account, position, pos_start, pos_count, size_lots, isolated_margin, out):  # type: ignore[no-untyped-def]
    """:meth:`Accounting.unit_positions` into ``out``; returns how many."""
    if position >= 0:
        if size_lots[position] != 0:
            out[0] = position
            return 1
        return 0
    n = 0
    s = pos_start[account]
    for p in range(s, s + pos_count[account]):
        if size_lots[p] != 0 and np.isnan(isolated_margin[p]):
            out[n] = p
            n += 1
    return n


_unit_positions = njit(cache=True)(_unit_positions_py)


def _unit_equity_py(account, position, positions, accounts, markets):  # type: ignore[no-untyped-def]
    """:meth:`Accounting.unit_equity`: collateral plus each open position's ``base * (mark - entry)``, in order."""
    pos_market, size_lots, entry_price, isolated_margin = positions
    pos_start, pos_count, wallet = accounts
    mark, lot_size = markets[0], markets[1]
    if position >= 0:
        eq = isolated_margin[position]
        if size_lots[position] != 0:
            m = pos_market[position]
            eq += size_lots[position] * lot_size[m] * (mark[m] - entry_price[position])
        return eq
    eq = wallet[account]
    s = pos_start[account]
    for p in range(s, s + pos_count[account]):
        if size_lots[p] != 0 and np.isnan(isolated_margin[p]):
            m = pos_market[p]
            eq += size_lots[p] * lot_size[m] * (mark[m] - entry_price[p])
    return eq


_unit_equity = njit(cache=True)(_unit_equity_py)


def _close_py(account, position, p, lots, price, positions, accounts, lot_size, long_lots):  # type: ignore[no-untyped-def]
    """:meth:`Accounting.close`: trade ``lots`` against position ``p`` at ``price``, the realised PnL to its unit."""
    pos_market, size_lots, entry_price, isolated_margin = positions
    wallet = accounts[2]
    m = pos_market[p]
    base = -lots * lot_size[m]
    realised = base * (price - entry_price[p])
    old = size_lots[p]
    new = old + lots
    long_lots[m] += max(new, 0) - max(old, 0)
    size_lots[p] = new
    if position >= 0:
        isolated_margin[position] += realised
    else:
        wallet[account] += realised


_close = njit(cache=True)(_close_py)


def _bankruptcy_price_py(account, position, p, positions, accounts, markets):  # type: ignore[no-untyped-def]
    """:meth:`Accounting.bankruptcy_price`."""
    pos_market, size_lots, entry_price = positions[0], positions[1], positions[2]
    mark, lot_size = markets[0], markets[1]
    m = pos_market[p]
    q = size_lots[p] * lot_size[m]
    others = _unit_equity(account, position, positions, accounts, markets) - q * (mark[m] - entry_price[p])
    bp = entry_price[p] - others / q
    return 0.0 if bp < 0.0 else bp


_bankruptcy_price = njit(cache=True)(_bankruptcy_price_py)


def _trade_py(account, position, p, lots, price, positions, accounts, lot_size, long_lots):  # type: ignore[no-untyped-def]
    """:meth:`Accounting.trade`: add ``lots`` to position ``p`` at ``price``; the reduced part realises PnL to the
    unit, an added part averages into the entry, a flip opens the remainder at ``price``."""
    pos_market, size_lots, entry_price = positions[0], positions[1], positions[2]
    m = pos_market[p]
    old = size_lots[p]
    if old == 0 or (old > 0) == (lots > 0):
        new = old + lots
        entry_price[p] = (old * entry_price[p] + lots * price) / new if new != 0 else 0.0
        long_lots[m] += max(new, 0) - max(old, 0)
        size_lots[p] = new
        return
    closing = -old if abs(lots) >= abs(old) else lots
    _close(account, position, p, closing, price, positions, accounts, lot_size, long_lots)
    rest = lots - closing
    if rest != 0:
        now = size_lots[p]
        long_lots[m] += max(rest, 0) - max(now, 0)
        size_lots[p] = rest
        entry_price[p] = price


_trade = njit(cache=True)(_trade_py)


def _unit_maintenance_py(n, ps, positions, markets):  # type: ignore[no-untyped-def]
    """The sum, in order, of :meth:`Accounting.maintenance` over the unit's ``n`` open positions ``ps[:n]``."""
    pos_market, size_lots = positions[0], positions[1]
    mark, lot_size, tier_cap, tier_mmr, tier_cum = markets[0], markets[1], markets[4], markets[5], markets[6]
    total = 0.0
    for j in range(n):
        p = ps[j]
        m = pos_market[p]
        notional = abs(size_lots[p] * lot_size[m]) * mark[m]
        k = np.searchsorted(tier_cap[m], notional)
        total += notional * tier_mmr[m, k] - tier_cum[m, k]
    return total


_unit_maintenance = njit(cache=True)(_unit_maintenance_py)
