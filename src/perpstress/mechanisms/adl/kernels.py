"""Compiled ADL: the walk of a ranked queue across a round's requests (:meth:`RankedQueue.execute_round`), each fill
closing the winner and the bankrupt position against each other at the request's price
(:meth:`~perpstress.mechanisms.adl.base.AdlBook.fill`), the same arithmetic in the same order; fill rows go into
arrays the rule appends to its record. Ranking stays in NumPy (it is vectorised already).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.mechanisms.unit_kernels import _close

A_REQUEST, A_WINNER, A_LOTS = 0, 1, 2
"""Columns of the integer fill rows: the request's index, the winner's account, the lots closed."""
B_NOTIONAL, B_LOSS = 0, 1
"""Columns of the float fill rows: notional at the fill price, the winner's loss versus closing at mark."""


def _walk_queue_py(  # type: ignore[no-untyped-def]
    order, req_position, req_lots, req_price, side, m, pos_account, positions, accounts, markets, long_lots, out_i,
    out_f, counts,
):  # fmt: skip
    """Requests (bankrupt ``req_position`` of ``req_lots`` lots on ``side``, at ``req_price``) in order against the
    queue ``order`` (winners' positions, first deleveraged first), from where the previous request stopped: each
    fill ``min(winner's size, what the request still wants)`` lots; a winner closed out moves the cursor on (so with
    winners on the opposite side there are at most ``order.size + req_position.size`` fills, the rows given).
    Writes ``counts[0]`` fill rows; returns the lots left uncovered."""
    isolated_margin = positions[3]
    size_lots = positions[1]
    mark = markets[0][m]
    lot = markets[1][m]
    lot_size = markets[1]
    left = 0
    cursor = 0
    k = 0
    for r in range(req_position.shape[0]):
        want = abs(req_lots[r])
        price = req_price[r]
        q = req_position[r]
        while want > 0 and cursor < order.shape[0]:
            p = order[cursor]
            held = abs(size_lots[p])
            n = want if want < held else held
            if n > 0:
                if k == out_i.shape[0]:
                    raise IndexError("walk_queue: more fills than rows (a winner on the bankrupt side?)")
                a = pos_account[p]
                _close(a, p if not np.isnan(isolated_margin[p]) else -1, p, n * side, price, positions, accounts,
                       lot_size, long_lots)  # fmt: skip
                _close(pos_account[q], q if not np.isnan(isolated_margin[q]) else -1, q, -n * side, price, positions,
                       accounts, lot_size, long_lots)  # fmt: skip
                base = n * lot
                out_i[k, A_REQUEST] = r
                out_i[k, A_WINNER] = a
                out_i[k, A_LOTS] = n
                out_f[k, B_NOTIONAL] = base * price
                out_f[k, B_LOSS] = -side * base * (mark - price)
                k += 1
                want -= n
            if size_lots[p] == 0:
                cursor += 1
        left += want
    counts[0] = k
    return left


walk_queue = njit(cache=True)(_walk_queue_py)
