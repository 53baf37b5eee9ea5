"""Compiled ADL, the same arithmetic in the same order as the Python rules (the reference, ``AdlBook.compiled =
False``): the walk of a ranked queue across a round's requests (:meth:`RankedQueue.execute_round`; ranking stays in
NumPy, it is vectorised already), and a venue's round of random-scan or pro-rata requests in one call
(:func:`allocate_requests`: candidates, the rule's allocation with :func:`~perpstress.rules.adl.water_fill`'s
arithmetic, whole lots by largest remainders, the random scan's start from the same stream in the same order).
Each fill closes the winner and the bankrupt position against each other at the request's price
(:meth:`~perpstress.mechanisms.adl.base.AdlBook.fill`); fill rows go into arrays the rule appends to its record.
:func:`adl_closes` groups a round's fills into the liquidated side's rows (``Cascade.record_adl_closes``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.mechanisms.margin_kernels import _cross_sums
from perpstress.mechanisms.price_kernels import numpy_sum
from perpstress.mechanisms.unit_kernels import _close

A_REQUEST, A_WINNER, A_LOTS = 0, 1, 2
"""Columns of the integer fill rows: the request's index, the winner's account, the lots closed."""
B_NOTIONAL, B_LOSS, B_PNL = 0, 1, 2
"""Columns of the float fill rows: notional at the fill price, the winner's loss versus closing at mark, and the
winner's PnL on the closed quantity (the fill price against its entry)."""


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
    entry_price = positions[2]
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
                base = n * lot
                out_f[k, B_PNL] = -side * base * (price - entry_price[p])
                _close(a, p if not np.isnan(isolated_margin[p]) else -1, p, n * side, price, positions, accounts,
                       lot_size, long_lots)  # fmt: skip
                _close(pos_account[q], q if not np.isnan(isolated_margin[q]) else -1, q, -n * side, price, positions,
                       accounts, lot_size, long_lots)  # fmt: skip
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


RANDOM_SCAN, WEALTH_PRO_RATA, CAPPED_PRO_RATA, RISK_AWARE_PRO_RATA = 1, 2, 3, 4
"""Rule codes of :func:`allocate_requests`."""
P_MAX_ACCOUNTS, P_MAX_HAIRCUT = 0, 1
N_PARAMS = 2
"""Indices of a rule's parameters (``RandomScanAdl.max_accounts_scanned``, ``ProRataAdl.max_haircut``)."""
TINY = float(np.finfo(np.float64).tiny)


def _round_to_lots_py(amounts, caps, total, out):  # type: ignore[no-untyped-def]
    """:func:`~perpstress.mechanisms.adl.base.round_to_lots` into ``out``: whole lots summing to ``min(total,
    caps.sum())``, floors first, then one lot at a time to the largest remainders, then to whoever has room."""
    n = amounts.shape[0]
    cap_sum = 0
    for i in range(n):
        cap_sum += caps[i]
    total = cap_sum if cap_sum < total else total
    key = np.empty(n)
    base_sum = 0
    for i in range(n):
        f = np.floor(amounts[i] + 1e-9)
        b = int(f)
        b = caps[i] if caps[i] < b else b
        out[i] = b
        base_sum += b
        key[i] = -(amounts[i] - f)
    short = total - base_sum
    order = np.argsort(key, kind="mergesort")
    for j in range(n):
        if short <= 0:
            break
        i = order[j]
        if out[i] < caps[i]:
            out[i] += 1
            short -= 1
    for j in range(n):
        if short <= 0:
            break
        i = order[j]
        add = caps[i] - out[i]
        add = short if short < add else add
        out[i] += add
        short -= add


_round_to_lots = njit(cache=True)(_round_to_lots_py)


def _water_fill_finite_py(quantity, w, c, x):  # type: ignore[no-untyped-def]
    """:func:`~perpstress.rules.adl.water_fill` without infinite weights, into ``x`` (zeros on entry); returns
    what is left unallocated. The same arithmetic in the same order: the live caps' sum as NumPy's, accounts
    visited in the order they reach their cap (stable), suffix sums from the end."""
    n = w.shape[0]
    live = np.empty(n, np.int64)
    n_live = 0
    for i in range(n):
        if w[i] > 0 and c[i] > 0:
            live[n_live] = i
            n_live += 1
    caps = np.empty(n_live)
    for j in range(n_live):
        caps[j] = c[live[j]]
    total_cap = numpy_sum(caps, n_live)
    if quantity >= total_cap:
        for j in range(n_live):
            x[live[j]] = c[live[j]]
        return quantity - total_cap
    top = 0.0
    for j in range(n_live):
        top = w[live[j]] if w[live[j]] > top else top
    key = np.empty(n_live)
    for j in range(n_live):
        i = live[j]
        cap = c[i] if c[i] >= TINY else TINY
        key[j] = -(w[i] / top) / cap
    by_key = np.argsort(key, kind="mergesort")
    order = np.empty(n_live, np.int64)
    for j in range(n_live):
        order[j] = live[by_key[j]]
    suffix = np.empty(n_live)
    s = 0.0
    for k in range(n_live - 1, -1, -1):
        s += w[order[k]]
        suffix[k] = s
    remaining = quantity
    for k in range(n_live):
        i = order[k]
        share = remaining * (w[i] / suffix[k])
        if share < c[i]:
            for j in range(k, n_live):
                r = order[j]
                v = remaining * (w[r] / suffix[k])
                x[r] = c[r] if c[r] <= v else v
            return 0.0
        x[i] = c[i]
        remaining -= c[i]
    return 0.0 if remaining < 0.0 else remaining


_water_fill_finite = njit(cache=True)(_water_fill_finite_py)


def _water_fill_py(quantity, w, c, x):  # type: ignore[no-untyped-def]
    """:func:`~perpstress.rules.adl.water_fill` into ``x`` (zeros on entry); returns what is left: infinite
    weights (with room) first, shared equally, then the others on what they left."""
    n = w.shape[0]
    infinite = np.zeros(n, np.bool_)
    some = False
    for i in range(n):
        if np.isinf(w[i]) and w[i] > 0 and c[i] > 0:
            infinite[i] = True
            some = True
    if not some:
        return _water_fill_finite(quantity, w, c, x)
    w_first, c_first = np.zeros(n), np.zeros(n)
    w_rest, c_rest = np.zeros(n), np.zeros(n)
    for i in range(n):
        if infinite[i]:
            w_first[i] = 1.0
            c_first[i] = c[i]
        else:
            w_rest[i] = w[i]
            c_rest[i] = c[i]
    first, rest = np.zeros(n), np.zeros(n)
    remaining = _water_fill_finite(quantity, w_first, c_first, first)
    left = _water_fill_finite(remaining, w_rest, c_rest, rest)
    for i in range(n):
        x[i] = first[i] + rest[i]
    return left


_water_fill = njit(cache=True)(_water_fill_py)


def _allocate_requests_py(  # type: ignore[no-untyped-def]
    rule, params, first, req_market, req_account, req_position, req_lots, req_price, market_order, market_start,
    pos_account, positions, accounts, markets, long_lots, rng, out_i, out_f, counts,
):  # fmt: skip
    """A round's requests of one venue, from request ``first`` on, in order, each allocated on the sizes the
    previous ones left (:meth:`~perpstress.mechanisms.adl.base.AllocatingRule.execute`): the candidates (the other
    accounts' opposite positions in the market, ``market_order`` from ``market_start``; in profit at mark for the
    pro-rata rules), the rule's amounts (``rule``: :data:`RANDOM_SCAN`, whose start is drawn from ``rng``, or a
    pro-rata member), whole lots by largest remainders, then the fills in the rule's order at the request's price.

    Writes fill rows (``A_*``/``B_*`` columns) from row 0; stops before a request whose market could overflow
    the rows left. ``counts``: (rows written, the next request to run). Returns the lots left uncovered."""
    pos_market, size_lots, entry_price, isolated_margin = positions
    pos_start, pos_count, wallet = accounts
    mark_of, lot_size, tier_cap, tier_mmr, tier_cum = markets
    profitable = rule != RANDOM_SCAN
    left = 0
    k = 0
    r = first
    while r < req_market.shape[0]:
        m = req_market[r]
        lo, hi = market_start[m], market_start[m + 1]
        if k + (hi - lo) > out_i.shape[0]:
            break
        mark = mark_of[m]
        lot = lot_size[m]
        side = 1 if req_lots[r] > 0 else -1
        want = abs(req_lots[r])
        cand = np.empty(hi - lo, np.int64)
        n = 0
        for i in range(lo, hi):
            p = market_order[i]
            s = size_lots[p]
            sign = 1 if s > 0 else (-1 if s < 0 else 0)
            if sign != -side:
                continue
            if profitable and not s * lot * (mark - entry_price[p]) > 0:
                continue
            if pos_account[p] == req_account[r]:
                continue
            cand[n] = p
            n += 1
        if n == 0:
            left += want
            r += 1
            continue
        sizes = np.empty(n, np.int64)
        upnl = np.empty(n)
        for j in range(n):
            p = cand[j]
            sizes[j] = abs(size_lots[p])
            upnl[j] = size_lots[p] * lot * (mark - entry_price[p])
        take = np.zeros(n)
        caps = np.empty(n, np.int64)
        sequence = np.empty(n, np.int64)
        if rule == RANDOM_SCAN:
            start = rng.integers(0, n)
            for j in range(n):
                sequence[j] = (start + j) % n
                caps[j] = sizes[j]
            remaining = float(want)
            scanned = n if n < params[P_MAX_ACCOUNTS] else int(params[P_MAX_ACCOUNTS])
            for j in range(scanned):
                i = (start + j) % n
                if remaining <= 0:
                    break
                x = remaining if remaining < sizes[i] else float(sizes[i])
                take[i] = x
                remaining -= x
        else:
            weights = np.empty(n)
            room = np.empty(n)
            h = params[P_MAX_HAIRCUT]
            for j in range(n):
                sequence[j] = j
                profit = upnl[j] if upnl[j] >= 0.0 else 0.0
                if rule == WEALTH_PRO_RATA:
                    weights[j] = profit
                    room[j] = float(sizes[j])
                    caps[j] = sizes[j]
                else:
                    room[j] = h * sizes[j]
                    caps[j] = np.int64(np.floor(h * sizes[j] + 1e-9))
                    if rule == CAPPED_PRO_RATA:
                        weights[j] = profit
                    else:
                        p = cand[j]
                        if np.isnan(isolated_margin[p]):
                            equity = _cross_sums(pos_account[p], pos_start, pos_count, wallet, pos_market, size_lots,
                                                 entry_price, isolated_margin, lot_size, mark_of, tier_cap, tier_mmr,
                                                 tier_cum)[0]  # fmt: skip
                        else:
                            equity = isolated_margin[p] + size_lots[p] * lot * (mark - entry_price[p])
                        notional = abs(size_lots[p] * lot) * mark
                        leverage = notional / equity if equity > 0 else np.inf
                        weights[j] = profit * leverage * leverage
            _water_fill(float(want), weights, room, take)
        lots = np.empty(n, np.int64)
        _round_to_lots(take, caps, int(np.rint(numpy_sum(take, n))), lots)
        price = req_price[r]
        q = req_position[r]
        closed = 0
        for j in range(n):
            i = sequence[j]
            if lots[i] <= 0:
                continue
            p = cand[i]
            a = pos_account[p]
            fill = lots[i]
            base = fill * lot
            out_f[k, B_PNL] = -side * base * (price - entry_price[p])
            _close(a, p if not np.isnan(isolated_margin[p]) else -1, p, fill * side, price, positions, accounts,
                   lot_size, long_lots)  # fmt: skip
            _close(pos_account[q], q if not np.isnan(isolated_margin[q]) else -1, q, -fill * side, price, positions,
                   accounts, lot_size, long_lots)  # fmt: skip
            out_i[k, A_REQUEST] = r
            out_i[k, A_WINNER] = a
            out_i[k, A_LOTS] = fill
            out_f[k, B_NOTIONAL] = base * price
            out_f[k, B_LOSS] = -side * base * (mark - price)
            k += 1
        for j in range(n):
            closed += lots[j]
        left += want - closed
        r += 1
    counts[0] = k
    counts[1] = r
    return left


allocate_requests = njit(cache=True)(_allocate_requests_py)


def _adl_closes_py(venue, market, bankrupt, side, lots, notional, mark, lot_size, out_i, out_f):  # type: ignore[no-untyped-def]
    """The liquidated side of ADL fills, one row per (venue, market, bankrupt account, side) in the order each
    first appears (``Cascade.record_adl_closes``): lots and notional summed in fill order, the first fill's mark,
    the average price ``notional / (lots * lot size)``. Rows: ``out_i`` (venue, market, account, the bankrupt
    side, its signed lots), ``out_f`` (notional, price, mark); returns how many."""
    n = venue.shape[0]
    order = np.arange(n)
    order = order[np.argsort(side[order], kind="mergesort")]
    order = order[np.argsort(bankrupt[order], kind="mergesort")]
    order = order[np.argsort(market[order], kind="mergesort")]
    order = order[np.argsort(venue[order], kind="mergesort")]
    first = np.empty(n, np.int64)
    total_lots = np.empty(n)
    total_notional = np.empty(n)
    g = -1
    for j in range(n):
        i = order[j]
        if g < 0 or not (venue[i] == venue[first[g]] and market[i] == market[first[g]]
                         and bankrupt[i] == bankrupt[first[g]] and side[i] == side[first[g]]):  # fmt: skip
            g += 1
            first[g] = i
            total_lots[g] = 0.0
            total_notional[g] = 0.0
        total_lots[g] += lots[i]
        total_notional[g] += notional[i]
    groups = g + 1
    by_first = np.argsort(first[:groups])
    for r in range(groups):
        g = by_first[r]
        i = first[g]
        m = market[i]
        s = -side[i]
        out_i[r, 0] = venue[i]
        out_i[r, 1] = m
        out_i[r, 2] = bankrupt[i]
        out_i[r, 3] = s
        out_i[r, 4] = s * np.int64(total_lots[g])
        out_f[r, 0] = total_notional[g]
        out_f[r, 1] = total_notional[g] / (total_lots[g] * lot_size[m])
        out_f[r, 2] = mark[i]
    return groups


adl_closes = njit(cache=True)(_adl_closes_py)
