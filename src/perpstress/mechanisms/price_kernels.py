"""Compiled steps of the prices phase: the books' quotes, every endogenous index, the peers' median mids, every
mark and the published marks, one call each per step over all markets.

Each kernel does what the rule functions (:mod:`perpstress.rules.index`, :mod:`perpstress.rules.mark`) and the
engines' NumPy code did, the same arithmetic in the same order, so results are identical bit for bit. Where the
reference uses a NumPy reduction, the kernel spells out how NumPy computes it:

- ``np.median`` and :func:`perpstress.rules.mark.nanmedian`: the middle of the sorted live values, or
  ``(low + high) / 2`` of the two middle ones (:func:`median_sorted`);
- ``np.sum``: NumPy's pairwise summation, ``0.0 +`` the sum of blocks of eight (:func:`numpy_sum`);
- ``np.dot`` of fewer than 16 terms: OpenBLAS's loop of fused multiply-adds, one by one (:func:`dot_fma`). That is
  the library's choice for this CPU, not a rule, so :func:`fma_dot_is_numpys` checks it once per process; where it
  does not hold (or with 16 live sources or more) the weighted-mean index falls back to the rule function.

Exponentials stay with NumPy: its vectorised ``exp`` and libm's differ in the last bit for a few inputs in a
hundred, so the EMAs' decays are computed once, at build, by :func:`perpstress.rules.mark.ema_decay`.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from perpstress.config.venue import IndexMethod, MarkMethod

INDEX_CODE: dict[IndexMethod, int] = {
    IndexMethod.WEIGHTED_MEAN: 0,
    IndexMethod.WEIGHTED_MEDIAN: 1,
    IndexMethod.MEDIAN: 2,
}
"""The code :func:`index_step` reads for each ``IndexMethod``."""
MARK_CODE: dict[MarkMethod, int] = {
    MarkMethod.ORACLE: 0,
    MarkMethod.FAIR_PRICE: 1,
    MarkMethod.INDEX_PLUS_BASIS_MA: 2,
    MarkMethod.MEDIAN_OF_THREE: 3,
    MarkMethod.HYPERLIQUID_MEDIAN: 4,
}
"""The code :func:`mark_step` reads for each ``MarkMethod``."""
FMA_DOT_MAX = 16
"""OpenBLAS's ``ddot`` runs its one-by-one loop below this many terms (vector blocks of 16 from there)."""


def _fma_typer(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fma(*args)

    return types.float64(types.float64, types.float64, types.float64), codegen


_fma: Any = intrinsic(_fma_typer)
"""``a * b + c`` rounded once (LLVM's ``fma``; compiled code only, its plain twin is :func:`_fma_py`)."""


def _fma_py(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once: exact in rationals, then rounded to the nearest double as hardware FMA does."""
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return a * b + c
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _insert_sorted_py(v, k, x):  # type: ignore[no-untyped-def]
    """Insert ``x`` into the ascending ``v[:k]`` after the values equal to it; returns ``k + 1``."""
    i = k
    while i > 0 and v[i - 1] > x:
        v[i] = v[i - 1]
        i -= 1
    v[i] = x
    return k + 1


insert_sorted = njit(cache=True)(_insert_sorted_py)
"""Compiled: see :func:`_insert_sorted_py`."""


def _median_sorted_py(v, k):  # type: ignore[no-untyped-def]
    """The median of the ascending ``v[:k]`` (NaN when ``k == 0``): ``(v[(k - 1) // 2] + v[k // 2]) / 2``, as
    :func:`perpstress.rules.mark.nanmedian` has it. For odd ``k`` that is the middle value itself (``x + x`` and the
    halving are exact), which is what ``np.median`` returns."""
    if k == 0:
        return np.nan
    return (v[(k - 1) // 2] + v[k // 2]) / 2.0


median_sorted = njit(cache=True)(_median_sorted_py)
"""Compiled: see :func:`_median_sorted_py`."""


def _block_sum_py(a, lo, n):  # type: ignore[no-untyped-def]
    """NumPy's pairwise sum of ``a[lo:lo + n]`` for ``n <= 128``: one by one from ``-0.0`` below 8 terms; else
    eight running sums over blocks of eight added as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then
    the rest one by one."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


_block_sum = njit(cache=True)(_block_sum_py)
"""Compiled: see :func:`_block_sum_py`."""


def _pairwise_sum_py(a, lo, n):  # type: ignore[no-untyped-def]
    """NumPy's pairwise summation of ``a[lo:lo + n]``: :func:`_block_sum` up to 128 terms; above, the sums of the
    two halves (the first a multiple of 8 long), each summed so, added. The recursion is unrolled onto a stack (a
    recursive kernel loaded from numba's cache crashes)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    stage = np.empty(64, np.int64)  # 0: not split yet, 1: left half under way, 2: right half under way
    left = np.empty(64)
    top = 0
    los[0], ns[0], stage[0] = lo, n, 0
    while True:
        if ns[top] > 128:  # split: the left half first
            h = ns[top] // 2
            h -= h % 8
            stage[top] = 1
            top += 1
            los[top], ns[top], stage[top] = los[top - 1], h, 0
            continue
        res = _block_sum(a, los[top], ns[top])
        while True:  # hand the finished half to its parent
            top -= 1
            if top < 0:
                return res
            if stage[top] == 1:
                left[top] = res
                stage[top] = 2
                h = ns[top] // 2
                h -= h % 8
                top += 1
                los[top], ns[top], stage[top] = los[top - 1] + h, ns[top - 1] - h, 0
                break
            res = left[top] + res


_pairwise_sum = njit(cache=True)(_pairwise_sum_py)
"""Compiled: see :func:`_pairwise_sum_py`."""


def _numpy_sum_py(a, n):  # type: ignore[no-untyped-def]
    """``np.sum(a[:n])`` of a float64 array: the reduction's identity ``0.0`` plus the pairwise sum."""
    return 0.0 + _pairwise_sum(a, 0, n)


numpy_sum = njit(cache=True)(_numpy_sum_py)
"""Compiled: see :func:`_numpy_sum_py`."""


def _dot_fma_py(x, y, n):  # type: ignore[no-untyped-def]
    """``np.dot(x[:n], y[:n])`` for ``n`` below :data:`FMA_DOT_MAX` as OpenBLAS's ``ddot`` computes it on x86-64
    with FMA (``s = fma(x[i], y[i], s)`` from 0), added to NumPy's ``0.0``."""
    s = 0.0
    for i in range(n):
        s = _fma(x[i], y[i], s)
    return 0.0 + s


dot_fma = njit(cache=True)(_dot_fma_py)
"""Compiled: see :func:`_dot_fma_py`."""


@functools.cache
def fma_dot_is_numpys() -> bool:
    """Whether :func:`dot_fma` gives ``np.dot``'s values on this machine (checked on fixed random vectors of every
    length it is used for, once per process)."""
    rng = np.random.default_rng(20251010)
    for n in range(1, FMA_DOT_MAX):
        for _ in range(64):
            x = rng.random(n) * 10.0 ** rng.uniform(-4.0, 5.0, n)
            y = rng.random(n) * 10.0 ** rng.uniform(-2.0, 2.0, n)
            if float(np.dot(x, y)) != dot_fma(x, y, n):
                return False
    return True


# --- the index ---------------------------------------------------------------------------------------------------
def _weighted_mean_py(p, w, k, band, scratch):  # type: ignore[no-untyped-def]
    """:func:`perpstress.rules.index.weighted_mean_index` of the live sources ``p[:k]``, ``w[:k]`` (``k >= 1``,
    fewer than :data:`FMA_DOT_MAX`): ``np.median``, ``np.clip`` (``max`` then ``min``), ``np.dot`` and ``w.sum()``
    as NumPy computes them."""
    n = 0
    for i in range(k):
        n = insert_sorted(scratch, n, p[i])
    med = median_sorted(scratch, k)
    lo = med * (1 - band)
    hi = med * (1 + band)
    for i in range(k):
        c = p[i] if p[i] > lo else lo
        scratch[i] = c if c < hi else hi
    return dot_fma(scratch, w, k) / numpy_sum(w, k)


weighted_mean = njit(cache=True)(_weighted_mean_py)
"""Compiled: see :func:`_weighted_mean_py`."""


def _weighted_median_py(p, w, k, sp, sw):  # type: ignore[no-untyped-def]
    """:func:`perpstress.rules.index.weighted_median_index` of the live ``p[:k]``, ``w[:k]`` (``k >= 1``): a stable
    sort by price (into ``sp``, ``sw``), the cumulative weight summed one by one, the first source where it reaches
    half the total (``np.searchsorted``), and ``np.isclose(cum, half, rtol=1e-12, atol=0)`` for the exact half."""
    for i in range(k):
        j = i
        while j > 0 and sp[j - 1] > p[i]:
            sp[j] = sp[j - 1]
            sw[j] = sw[j - 1]
            j -= 1
        sp[j] = p[i]
        sw[j] = w[i]
    for i in range(1, k):
        sw[i] = sw[i - 1] + sw[i]
    half = sw[k - 1] / 2.0
    j = 0
    while sw[j] < half:
        j += 1
    x = sw[j]
    close = (abs(x - half) <= 0.0 + 1e-12 * abs(half) and np.isfinite(half)) or x == half
    if close and j + 1 < k:
        return (sp[j] + sp[j + 1]) / 2.0
    return sp[j]


weighted_median = njit(cache=True)(_weighted_median_py)
"""Compiled: see :func:`_weighted_median_py`."""


def _index_step_py(  # type: ignore[no-untyped-def]
    ts_ms, fundamental, mid, last_mid, last_mid_ms, previous, markets, method, band, stale_ms, start, book, weight,
    use_fma_dot, out, fallback, sp, sw,
):  # fmt: skip
    """:meth:`perpstress.mechanisms.indices.IndexEngine.step` over its plan: each live book's mid and time are
    kept (``last_mid``, ``last_mid_ms``), ``out`` starts as the fundamental values, and plan market ``markets[j]``
    (method code ``method[j]``, :data:`INDEX_CODE`) gets its rule's value of its constituents
    ``start[j]:start[j + 1]`` (``book`` the spot book's market row or -1 for an external source priced at the
    fundamental value; a book older than ``stale_ms[j]`` weighs 0), else its ``previous`` index, else the
    fundamental value. A weighted mean the kernel cannot give as NumPy would (16 live sources or more, or
    ``use_fma_dot`` false) is left to the caller: ``fallback[j]`` is set. ``sp``, ``sw``: scratch of the longest
    constituent list."""
    for m in range(mid.shape[0]):
        if np.isfinite(mid[m]):
            last_mid[m] = mid[m]
            last_mid_ms[m] = ts_ms
    for m in range(out.shape[0]):
        out[m] = fundamental[m]
    for j in range(markets.shape[0]):
        m = markets[j]
        k = 0
        for s in range(start[j], start[j + 1]):
            b = book[s]
            if b >= 0:
                price = last_mid[b]
                fresh = ts_ms - last_mid_ms[b] <= stale_ms[j]
            else:
                price = fundamental[m]
                fresh = True
            wt = weight[s] if fresh else 0.0
            if np.isfinite(price) and wt > 0 and price > 0:
                sp[k] = price
                sw[k] = wt
                k += 1
        fallback[j] = False
        value = np.nan
        if k > 0:
            if method[j] == 0:
                if k >= FMA_DOT_MAX or not use_fma_dot:
                    fallback[j] = True
                    continue
                value = weighted_mean(sp, sw, k, band[j], sp[k:])
            elif method[j] == 1:
                value = weighted_median(sp[:k].copy(), sw[:k].copy(), k, sp, sw)
            else:
                n = 0
                for i in range(k):
                    n = insert_sorted(sw, n, sp[i])
                value = median_sorted(sw, k)
        if np.isfinite(value):
            out[m] = value
        elif np.isfinite(previous[m]):
            out[m] = previous[m]
        else:
            out[m] = fundamental[m]


index_step = njit(cache=True)(_index_step_py)
"""Compiled: see :func:`_index_step_py`."""


# --- the marks ---------------------------------------------------------------------------------------------------
def _median_of_three_py(a, b, c, v):  # type: ignore[no-untyped-def]
    """:func:`perpstress.rules.mark.median_of_three` of three scalars (NaN ignored; all NaN gives NaN); ``v``:
    scratch of 3."""
    k = 0
    if a == a:
        k = insert_sorted(v, k, a)
    if b == b:
        k = insert_sorted(v, k, b)
    if c == c:
        k = insert_sorted(v, k, c)
    return median_sorted(v, k)


median_of_three = njit(cache=True)(_median_of_three_py)
"""Compiled: see :func:`_median_of_three_py`."""


def _hyperliquid_mark_py(oracle, ema_basis, bid, ask, last, peer, ema_book, v):  # type: ignore[no-untyped-def]
    """:func:`perpstress.rules.mark.hyperliquid_mark` of scalars: the median of ``oracle + ema_basis``, the book
    median and ``peer``, with ``ema_book`` as a fourth input when exactly two of the three are present (as
    :func:`perpstress.rules.mark.nanmedian` takes it); ``v``: scratch of 4."""
    in1 = oracle + ema_basis
    in2 = median_of_three(bid, ask, last, v)
    k = 0
    if in1 == in1:
        k = insert_sorted(v, k, in1)
    if in2 == in2:
        k = insert_sorted(v, k, in2)
    if peer == peer:
        k = insert_sorted(v, k, peer)
    if k == 2 and ema_book == ema_book:
        k = insert_sorted(v, k, ema_book)
    return median_sorted(v, k)


hyperliquid_mark = njit(cache=True)(_hyperliquid_mark_py)
"""Compiled: see :func:`_hyperliquid_mark_py`."""


def _mark_step_py(  # type: ignore[no-untyped-def]
    step, sample, step_s, index, bid, ask, last_trade, funding_rate, to_funding, peer_mid, method, sample_every,
    update_every, window, interval_s, decay_basis, decay_book, ring, ring_n, ring_i, ring_sum, ema_basis, ema_book,
    held_last, mark, previous,
):  # fmt: skip
    """:meth:`perpstress.mechanisms.prices.MarkEngine.step`, market by market: the held last trade, the basis
    sample into the ring (when ``sample`` and due), its moving average, the two EMAs (decays per step from
    :func:`perpstress.rules.mark.ema_decay`), and on an update step (or with no mark yet) the rule's mark (method
    code ``method[m]``, :data:`MARK_CODE`); ``previous`` takes the mark a change replaces (the new mark where it
    has none). ``mark`` and the state arrays are updated in place."""
    v = np.empty(4)
    for m in range(index.shape[0]):
        if last_trade[m] == last_trade[m]:
            held_last[m] = last_trade[m]
        mid = 0.5 * (bid[m] + ask[m])
        basis = 0.0 if np.isnan(mid) else mid - index[m]
        if sample and step % sample_every[m] == 0:  # one sample into the ring; its sum is kept as it goes
            slot = ring_i[m]
            ring_sum[m] -= ring[m, slot] if ring_n[m] >= window[m] else 0.0
            ring[m, slot] = basis
            ring_sum[m] += basis
            ring_i[m] = (slot + 1) % window[m]
            ring_n[m] = min(ring_n[m] + 1, window[m])
        ma = ring_sum[m] / max(ring_n[m], 1) if ring_n[m] > 0 else 0.0
        book_med = median_of_three(bid[m], ask[m], held_last[m], v)
        num = ema_basis[m, 0] * decay_basis[m] + basis * step_s
        den = ema_basis[m, 1] * decay_basis[m] + step_s
        ema_basis[m, 0] = num
        ema_basis[m, 1] = den
        x = index[m] if np.isnan(book_med) else book_med
        bnum = ema_book[m, 0] * decay_book + x * step_s
        bden = ema_book[m, 1] * decay_book + step_s
        ema_book[m, 0] = bnum
        ema_book[m, 1] = bden
        old = mark[m]
        if step % update_every[m] == 0 or np.isnan(old):
            code = method[m]
            p1 = index[m] * (1.0 + funding_rate[m] * (to_funding[m] / interval_s[m]))
            p2 = index[m] + ma
            if code == 0:
                new = index[m]
            elif code == 1:
                new = p1
            elif code == 2:
                new = p2
            elif code == 3:
                last = index[m] if np.isnan(held_last[m]) else held_last[m]
                if np.isnan(p1) or np.isnan(p2) or np.isnan(last):
                    new = np.nan
                else:
                    k = insert_sorted(v, 0, p1)
                    k = insert_sorted(v, k, p2)
                    k = insert_sorted(v, k, last)
                    new = v[1]
            else:
                new = hyperliquid_mark(index[m], num / den, bid[m], ask[m], held_last[m], peer_mid[m], bnum / bden, v)
            if new != old:
                previous[m] = old
            mark[m] = new
        if np.isnan(previous[m]):
            previous[m] = mark[m]


mark_step = njit(cache=True)(_mark_step_py)
"""Compiled: see :func:`_mark_step_py`."""


def _book_quotes_py(price, count, tick, bid, ask, mid):  # type: ignore[no-untyped-def]
    """:meth:`perpstress.state.orderbook.OrderBooks.best_bid_ask` (NaN for an empty side) and ``0.5 * (bid +
    ask)``, into ``bid``, ``ask``, ``mid``."""
    for m in range(count.shape[0]):
        bid[m] = price[m, 0, 0] * tick[m] if count[m, 0] > 0 else np.nan
        ask[m] = price[m, 1, 0] * tick[m] if count[m, 1] > 0 else np.nan
        mid[m] = 0.5 * (bid[m] + ask[m])


book_quotes = njit(cache=True)(_book_quotes_py)
"""Compiled: see :func:`_book_quotes_py`."""


def _peer_medians_py(mid, rows, start, members, out, v):  # type: ignore[no-untyped-def]
    """``out`` NaN, then for each ``rows[j]`` the median of the live ``mid`` of its peers
    ``members[start[j]:start[j + 1]]`` (:func:`perpstress.rules.mark.nanmedian`; NaN when none is live). ``v``:
    scratch of the longest peer list."""
    for m in range(out.shape[0]):
        out[m] = np.nan
    for j in range(rows.shape[0]):
        k = 0
        for s in range(start[j], start[j + 1]):
            x = mid[members[s]]
            if x == x:
                k = insert_sorted(v, k, x)
        out[rows[j]] = median_sorted(v, k)


peer_medians = njit(cache=True)(_peer_medians_py)
"""Compiled: see :func:`_peer_medians_py`."""


def _publish_marks_py(marks, index, mid, last_trade, before, n_perpetual, out):  # type: ignore[no-untyped-def]
    """The markets' marks: a perpetual's mark, its index where it has none; a spot book's own price, its mid, else
    its last trade, else ``before`` (its price a step earlier)."""
    for m in range(n_perpetual):
        out[m] = index[m] if np.isnan(marks[m]) else marks[m]
    for m in range(n_perpetual, out.shape[0]):
        last = before[m] if np.isnan(last_trade[m]) else last_trade[m]
        out[m] = last if np.isnan(mid[m]) else mid[m]


publish_marks = njit(cache=True)(_publish_marks_py)
"""Compiled: see :func:`_publish_marks_py`."""
