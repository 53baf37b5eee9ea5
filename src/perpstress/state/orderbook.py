"""L2 order books for many markets as arrays, with owner-tagged resting orders and walk-the-book matching.

Per market and side, up to ``capacity`` resting orders are kept sorted best-first (bids high to low, asks low to
high); equal prices keep arrival order, so matching is price-time priority. Prices are integer ticks, sizes integer
lots; ``owner`` is the maker's account id, so every fill says whom it hit. A market maker replaces its whole ladder
on a side in one call (what it does each step). Capacity is small (makers x levels), so an insert or a replace
shifts at most ``capacity`` entries, and a taker order touches only the levels it consumes.

Matching: a taker order of ``lots`` (buy > 0) walks the opposite side up to ``limit_tick``; IOC fills what it can,
fill-or-kill fills all or nothing. Orders that would cross on entry are refused (post-only), so the book is never
crossed. Left out: hidden and iceberg orders, self-trade prevention, per-order ids (an owner has at most one
order per price per side).

The plain-Python kernels (``*_py``) are the reference; the compiled versions run.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.state.portfolio import F64, I64

BID, ASK = 0, 1
NO_PRICE = np.iinfo(np.int64).min


def _remove_owner_py(price: I64, lots: I64, owner: I64, count: I64, m: int, side: int, who: int) -> None:
    n = count[m, side]
    k = 0
    for i in range(n):
        if owner[m, side, i] != who:
            price[m, side, k] = price[m, side, i]
            lots[m, side, k] = lots[m, side, i]
            owner[m, side, k] = owner[m, side, i]
            k += 1
    count[m, side] = k


_remove_owner = njit(cache=True)(_remove_owner_py)


def _better(side: int, a: int, b: int) -> bool:
    """Whether price ``a`` is strictly better than ``b`` for resting orders on ``side``."""
    return a > b if side == BID else a < b


_better_nb = njit(cache=True)(_better)


def _insert_py(
    price: I64, lots: I64, owner: I64, count: I64, m: int, side: int, tick: int, size: int, who: int
) -> bool:
    """Insert one order after every resting order at an equal or better price; False if the side is full or the
    order would cross the other side."""
    n = count[m, side]
    if size <= 0 or n >= price.shape[2]:
        return False
    other = 1 - side
    if count[m, other] > 0:
        best_other = price[m, other, 0]
        if (side == BID and tick >= best_other) or (side == ASK and tick <= best_other):
            return False
    pos = n
    while pos > 0 and _better_nb(side, tick, price[m, side, pos - 1]):
        pos -= 1
    for i in range(n, pos, -1):
        price[m, side, i] = price[m, side, i - 1]
        lots[m, side, i] = lots[m, side, i - 1]
        owner[m, side, i] = owner[m, side, i - 1]
    price[m, side, pos] = tick
    lots[m, side, pos] = size
    owner[m, side, pos] = who
    count[m, side] = n + 1
    return True


_insert = njit(cache=True)(_insert_py)


def _replace_ladder_py(
    price: I64, lots: I64, owner: I64, count: I64, m: int, side: int, who: int, ticks: I64, sizes: I64
) -> int:
    """Cancel ``who``'s orders on one side and post ``ticks``/``sizes``; returns how many were posted."""
    _remove_owner(price, lots, owner, count, m, side, who)
    posted = 0
    for j in range(ticks.shape[0]):
        if _insert(price, lots, owner, count, m, side, ticks[j], sizes[j], who):
            posted += 1
    return posted


_replace_ladder = njit(cache=True)(_replace_ladder_py)


def _replace_sorted_ladder_py(
    price: I64, lots: I64, owner: I64, count: I64, m: int, side: int, who: int, ticks: I64, sizes: I64
) -> int:
    """:func:`_replace_ladder` for a ladder ordered best first (bids' ticks non-increasing, asks' non-decreasing),
    with the same result in one merge pass instead of an insertion per order: the orders ``_insert`` would accept
    (size, room, not crossing the other side, which this side's posting does not move) are merged after every
    resting order at an equal or better price, as ``_insert`` places them one by one."""
    n = count[m, side]
    kp = np.empty(n, np.int64)
    kl = np.empty(n, np.int64)
    ko = np.empty(n, np.int64)
    k = 0
    for i in range(n):  # the others' orders, in book order
        if owner[m, side, i] != who:
            kp[k] = price[m, side, i]
            kl[k] = lots[m, side, i]
            ko[k] = owner[m, side, i]
            k += 1
    other = 1 - side
    crossing = count[m, other] > 0
    best_other = price[m, other, 0]
    total = k
    accept = np.zeros(ticks.shape[0], np.bool_)
    for j in range(ticks.shape[0]):
        t = ticks[j]
        if sizes[j] <= 0 or total >= price.shape[2]:
            continue
        if crossing and ((side == BID and t >= best_other) or (side == ASK and t <= best_other)):
            continue
        accept[j] = True
        total += 1
    i = 0
    out = 0
    for j in range(ticks.shape[0]):
        if not accept[j]:
            continue
        while i < k and not _better_nb(side, ticks[j], kp[i]):
            price[m, side, out] = kp[i]
            lots[m, side, out] = kl[i]
            owner[m, side, out] = ko[i]
            i += 1
            out += 1
        price[m, side, out] = ticks[j]
        lots[m, side, out] = sizes[j]
        owner[m, side, out] = who
        out += 1
    while i < k:
        price[m, side, out] = kp[i]
        lots[m, side, out] = kl[i]
        owner[m, side, out] = ko[i]
        i += 1
        out += 1
    count[m, side] = total
    return total - k


_replace_sorted_ladder = njit(cache=True)(_replace_sorted_ladder_py)


def _depth_all_py(price, lots, count, tick, lot, reference, fraction, out_bid, out_ask):  # type: ignore[no-untyped-def]
    """Quote notional within ``fraction`` of each market's ``reference`` on each side (books are sorted best
    first, so each side's walk stops at the first level outside)."""
    for m in range(count.shape[0]):
        lo = reference[m] * (1.0 - fraction)
        hi = reference[m] * (1.0 + fraction)
        total = 0.0
        for i in range(count[m, 0]):
            px = price[m, 0, i] * tick[m]
            if px < lo:
                break
            total += px * lots[m, 0, i] * lot[m]
        out_bid[m] = total
        total = 0.0
        for i in range(count[m, 1]):
            px = price[m, 1, i] * tick[m]
            if px > hi:
                break
            total += px * lots[m, 1, i] * lot[m]
        out_ask[m] = total


_depth_all = njit(cache=True)(_depth_all_py)


def _match_py(
    price: I64,
    lots: I64,
    owner: I64,
    count: I64,
    m: int,
    want: int,
    limit_tick: int,
    fill_or_kill: bool,
    out_owner: I64,
    out_tick: I64,
    out_lots: I64,
) -> int:
    """Taker order of ``want`` lots (buy > 0) against market ``m``; writes fills to ``out_*``, returns their count."""
    side = ASK if want > 0 else BID
    need = abs(want)
    n = count[m, side]
    if fill_or_kill:
        avail = 0
        for i in range(n):
            t = price[m, side, i]
            if (side == ASK and t > limit_tick) or (side == BID and t < limit_tick):
                break
            avail += lots[m, side, i]
            if avail >= need:
                break
        if avail < need:
            return 0
    k = 0
    i = 0
    while i < n and need > 0:
        t = price[m, side, i]
        if (side == ASK and t > limit_tick) or (side == BID and t < limit_tick):
            break
        take = min(need, lots[m, side, i])
        out_owner[k] = owner[m, side, i]
        out_tick[k] = t
        out_lots[k] = take
        k += 1
        need -= take
        lots[m, side, i] -= take
        i += 1
    # drop exhausted orders from the front
    start = 0
    while start < n and lots[m, side, start] == 0:
        start += 1
    if start > 0:
        for j in range(start, n):
            price[m, side, j - start] = price[m, side, j]
            lots[m, side, j - start] = lots[m, side, j]
            owner[m, side, j - start] = owner[m, side, j]
        count[m, side] = n - start
    return k


_match = njit(cache=True)(_match_py)


class OrderBooks:
    """Books of ``n_markets`` markets, ``capacity`` resting orders per side."""

    def __init__(self, n_markets: int, capacity: int, tick_size: F64, lot_size: F64) -> None:
        shape = (n_markets, 2, capacity)
        self.price = np.zeros(shape, dtype=np.int64)
        self.lots = np.zeros(shape, dtype=np.int64)
        self.owner = np.full(shape, -1, dtype=np.int64)
        self.count = np.zeros((n_markets, 2), dtype=np.int64)
        self.tick_size = np.asarray(tick_size, dtype=np.float64)
        self.lot_size = np.asarray(lot_size, dtype=np.float64)
        self._fill_owner = np.zeros(2 * capacity, dtype=np.int64)
        self._fill_tick = np.zeros(2 * capacity, dtype=np.int64)
        self._fill_lots = np.zeros(2 * capacity, dtype=np.int64)

    @property
    def n_markets(self) -> int:
        return int(self.count.shape[0])

    def replace_ladder(self, market: int, side: int, owner: int, prices: F64, sizes: F64) -> int:
        """Post ``owner``'s ladder (prices in quote units, sizes in base units; rounded: bids down, asks up, sizes
        down to whole lots), replacing its previous orders on that side."""
        tick = self.tick_size[market]
        raw = prices / tick
        ticks = np.floor(raw + 1e-9) if side == BID else np.ceil(raw - 1e-9)
        lots = np.floor(sizes / self.lot_size[market] + 1e-9).astype(np.int64)
        keep = lots > 0
        return int(
            _replace_ladder(
                self.price,
                self.lots,
                self.owner,
                self.count,
                market,
                side,
                owner,
                ticks[keep].astype(np.int64),
                lots[keep],
            )
        )

    def cancel_owner_in(self, market: int, owner: int) -> None:
        """Cancel ``owner``'s orders in one market, both sides."""
        for side in (BID, ASK):
            _remove_owner(self.price, self.lots, self.owner, self.count, market, side, owner)

    def cancel_owner(self, owner: int) -> None:
        for m in range(self.n_markets):
            for side in (BID, ASK):
                _remove_owner(self.price, self.lots, self.owner, self.count, m, side, owner)

    def match(self, market: int, lots: int, limit_price: float, fill_or_kill: bool) -> tuple[I64, I64, I64]:
        """Walk the book; returns (maker owners, fill prices in ticks, lots) of the fills, best first."""
        tick = self.tick_size[market]
        limit = int(np.floor(limit_price / tick + 1e-9)) if lots > 0 else int(np.ceil(limit_price / tick - 1e-9))
        k = _match(self.price, self.lots, self.owner, self.count, market, int(lots), limit, fill_or_kill,
                   self._fill_owner, self._fill_tick, self._fill_lots)  # fmt: skip
        return self._fill_owner[:k].copy(), self._fill_tick[:k].copy(), self._fill_lots[:k].copy()

    # --- queries -------------------------------------------------------------------------------------------
    def best(self, market: int, side: int) -> float:
        return float(self.price[market, side, 0] * self.tick_size[market]) if self.count[market, side] else np.nan

    def best_bid_ask(self) -> tuple[F64, F64]:
        has_bid = self.count[:, BID] > 0
        has_ask = self.count[:, ASK] > 0
        bid = np.where(has_bid, self.price[:, BID, 0] * self.tick_size, np.nan)
        ask = np.where(has_ask, self.price[:, ASK, 0] * self.tick_size, np.nan)
        return bid, ask

    def depth_within(self, market: int, side: int, fraction: float, reference: float) -> float:
        """Quote notional resting within ``fraction`` of ``reference`` on one side, USD."""
        n = int(self.count[market, side])
        px = self.price[market, side, :n] * self.tick_size[market]
        q = self.lots[market, side, :n] * self.lot_size[market]
        inside = px >= reference * (1 - fraction) if side == BID else px <= reference * (1 + fraction)
        return float((px * q)[inside].sum())

    def depth_all(self, fraction: float, reference: F64, out_bid: F64, out_ask: F64) -> None:
        """:meth:`depth_within` for every market and both sides at once, into ``out_bid``/``out_ask``."""
        _depth_all(self.price, self.lots, self.count, self.tick_size, self.lot_size,
                   np.asarray(reference, dtype=np.float64), fraction, out_bid, out_ask)  # fmt: skip

    def impact_price(self, market: int, side: int, notional: float) -> float:
        """Average price of a taker order of ``notional`` USD against ``side`` (NaN if the book is too thin)."""
        n = int(self.count[market, side])
        px = self.price[market, side, :n] * self.tick_size[market]
        q = self.lots[market, side, :n] * self.lot_size[market]
        value = np.cumsum(px * q)
        if n == 0 or value[-1] < notional:
            return float("nan")
        k = int(np.searchsorted(value, notional))
        before_v = value[k - 1] if k else 0.0
        before_q = q[:k].sum()
        part = (notional - before_v) / px[k]
        return float(notional / (before_q + part))

    def is_crossed(self) -> bool:
        both = (self.count[:, BID] > 0) & (self.count[:, ASK] > 0)
        return bool(np.any(self.price[both, BID, 0] >= self.price[both, ASK, 0]))

    def rows(self, market: int) -> list[tuple[str, float, float, int]]:
        """The book as readable rows (side, price, size, owner), best first, for debugging and tests."""
        out = []
        for side, name in ((BID, "bid"), (ASK, "ask")):
            for i in range(int(self.count[market, side])):
                px = float(self.price[market, side, i] * self.tick_size[market])
                size = float(self.lots[market, side, i] * self.lot_size[market])
                out.append((name, px, size, int(self.owner[market, side, i])))
        return out
