"""Trigger index: which positions' marks left their safe band this step, at a cost that grows with what moved.

Every open position has a band on its market's mark (see :func:`perpstress.mechanisms.margin_kernels.position_bands`):
a long fires when the mark is at or below ``lo``, a short when it is at or above ``hi``. Checking every position
every step would cost positions x steps; instead, per market, the long edges are kept sorted high-to-low and the
short edges low-to-high, each with a cursor. A step reads only the entries between the cursor and the current mark
(a binary search), plus a small *pending* set of positions whose band changed since the sorted arrays were built.

Contract: a fired position is moved to the pending set with its current band; the caller re-bands it
(:meth:`TriggerIndex.set_bands`) after checking its unit, or closes it (:meth:`TriggerIndex.deactivate`). A stale
sorted entry (its position was re-banded since) is recognised by a version number and skipped. Each step therefore
fires exactly the active positions whose band the mark has crossed, however the entries are arranged.

The sorted entries live in two runs, as in a log-structured merge: a large *main* run and a small *recent* one, each
read by its cursors. Once the pending entries read since the last fold outweigh folding them (a large re-band,
such as every holder of a collateral whose price fell, is folded within a few steps instead of being re-read every
step), the pending set is merged into the recent run (``O(recent)``); the recent run is merged into the main one
(``O(n)``) once it holds an eighth as many entries, and everything is rebuilt (``O(n log n)``) when stale entries
dominate. A step's cost thus grows with the entries the marks pass and the bands that changed, not with the
positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from perpstress.state.portfolio import F64, I32, I64


def _fire_sorted_py(
    n_markets: int,
    mark: F64,
    seg_start: I64,
    seg_end: I64,
    cursor: I64,
    edge: F64,
    ids: I64,
    ver: I64,
    version: I64,
    descending: bool,
    out: I64,
    n_out: int,
) -> int:
    """Advance each market's ``cursor`` through its sorted ``edge`` segment while the mark has reached the edge
    (``edge >= mark`` for the descending long edges, ``edge <= mark`` for the ascending short edges), appending each
    passed entry whose ``ver`` is its position's current ``version`` to ``out`` from ``n_out``; returns the new count.
    The plain-Python reference; :func:`_fire_sorted` is the compiled one that runs."""
    for m in range(n_markets):
        i = cursor[m]
        end = seg_end[m]
        while i < end:
            e = edge[i]
            hit = e >= mark[m] if descending else e <= mark[m]
            if not hit:
                break
            p = ids[i]
            if ver[i] == version[p]:
                out[n_out] = p
                n_out += 1
            i += 1
        cursor[m] = i
    return n_out


_fire_sorted = njit(cache=True)(_fire_sorted_py)


def _scan_pending_py(
    pending: I64, active: NDArray[np.bool_], in_pending: NDArray[np.bool_], market: I32, lo: F64, hi: F64, mark: F64,
    hits: I64,
) -> tuple[int, int]:  # fmt: skip
    """Compact ``pending`` in place to its active positions (a closed one leaves the set: its ``in_pending`` flag
    is cleared) and write those whose band the marks have crossed (``lo >= mark`` or ``hi <= mark``) to ``hits``,
    both in pending order; returns how many were kept and how many hit. The plain-Python reference;
    :func:`_scan_pending` is the compiled one that runs."""
    kept = 0
    n_hits = 0
    for j in range(pending.shape[0]):
        p = pending[j]
        if not active[p]:
            in_pending[p] = False
            continue
        pending[kept] = p
        kept += 1
        m = market[p]
        if lo[p] >= mark[m] or hi[p] <= mark[m]:
            hits[n_hits] = p
            n_hits += 1
    return kept, n_hits


_scan_pending = njit(cache=True)(_scan_pending_py)


def _merge_runs_py(  # type: ignore[no-untyped-def]
    n_markets, cursor, end, edges, ids, ver, new, key, new_start, edge, version, descending, out_e, out_i, out_v,
    counts,
):  # fmt: skip
    """Per market, the run's entries not yet fired (``cursor[m]`` to ``end[m]``) with the market's ``new`` positions
    (``new_start[m]`` to ``new_start[m + 1]``, sorted by ``key``: ``-edge`` for the descending long edges) merged in,
    into ``out_*`` (edge, position, version) one market after another, each market's count in ``counts``. A new
    entry goes after every old entry whose key is at most its own, new entries in their order: what ``np.insert`` at
    ``np.searchsorted(old_key, key, side="right")`` gives. Returns the entries written."""
    k = 0
    for m in range(n_markets):
        i, stop = cursor[m], end[m]
        j, last = new_start[m], new_start[m + 1]
        first = k
        while i < stop or j < last:
            take_old = j >= last
            if not take_old and i < stop:
                old_key = -edges[i] if descending else edges[i]
                take_old = old_key <= key[j]
            if take_old:
                out_e[k] = edges[i]
                out_i[k] = ids[i]
                out_v[k] = ver[i]
                i += 1
            else:
                p = new[j]
                out_e[k] = edge[p]
                out_i[k] = p
                out_v[k] = version[p]
                j += 1
            k += 1
        counts[m] = k - first
    return k


_merge_runs = njit(cache=True)(_merge_runs_py)


Segments = tuple[I64, I64, I64]
"""Per market: first entry, one past the last entry, and the cursor (the next entry not yet fired)."""
Entries = tuple[F64, I64, I64]
"""Sorted entries: the band edge, the position, and the position's version when the entry was written."""


@dataclass
class _Run:
    """Sorted long edges (high to low) and short edges (low to high), per market."""

    lo_seg: Segments
    lo_arr: Entries
    hi_seg: Segments
    hi_arr: Entries

    @classmethod
    def empty(cls, n_markets: int) -> _Run:
        z = np.zeros(n_markets, dtype=np.int64)
        none = (np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return cls((z, z.copy(), z.copy()), none, (z.copy(), z.copy(), z.copy()), none)

    @property
    def stored(self) -> int:
        """Entries, stale ones included."""
        return int(self.lo_arr[1].size + self.hi_arr[1].size)

    def live(self, version: I64) -> I64:
        """Positions with an entry not yet fired whose version is current, sorted."""
        parts = []
        for (_, end, cursor), (_, ids, ver) in ((self.lo_seg, self.lo_arr), (self.hi_seg, self.hi_arr)):
            for m in range(cursor.size):
                i, v = ids[cursor[m] : end[m]], ver[cursor[m] : end[m]]
                parts.append(i[v == version[i]])
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


class TriggerIndex:
    """Band edges of ``n_positions`` positions over ``n_markets`` markets."""

    def __init__(self, n_markets: int, position_market: I32, rebuild_fraction: float = 0.05) -> None:
        n = int(position_market.shape[0])
        self.n_markets = n_markets
        self.market = np.asarray(position_market, dtype=np.int32)
        self.lo = np.full(n, -np.inf)
        self.hi = np.full(n, np.inf)
        self.version = np.zeros(n, dtype=np.int64)
        self.active = np.zeros(n, dtype=np.bool_)
        self.in_pending = np.zeros(n, dtype=np.bool_)
        self.pending = np.zeros(0, dtype=np.int64)
        self.rebuild_fraction = rebuild_fraction
        self.rebuilds = 0
        self.merges = 0
        """Folds of the recent run into the main one."""
        self.folds = 0
        """Folds of the pending set into the recent run."""
        self.entries_read = 0
        self._pending_read = 0
        """Pending entries read since the pending set was last folded."""
        self._out = np.empty(n, dtype=np.int64)
        self._main = _Run.empty(n_markets)
        self._recent = _Run.empty(n_markets)

    def set_bands(self, positions: I64, lo: F64, hi: F64) -> None:
        """New bands for ``positions`` (they become active); they are checked through the pending set."""
        positions = np.asarray(positions, dtype=np.int64)
        self.lo[positions] = lo
        self.hi[positions] = hi
        self.version[positions] += 1
        self.active[positions] = True
        self._add_pending(positions)

    def deactivate(self, positions: I64) -> None:
        """Closed positions never fire again (until :meth:`set_bands`)."""
        positions = np.asarray(positions, dtype=np.int64)
        self.active[positions] = False
        self.version[positions] += 1

    def _add_pending(self, positions: I64) -> None:
        new = positions[~self.in_pending[positions]]
        if new.size > 1 and not np.all(new[1:] > new[:-1]):  # already sorted and unique: as np.unique leaves it
            new = np.unique(new)
        self.in_pending[new] = True
        self.pending = np.concatenate([self.pending, new])
        if self.pending.size > max(1024, self.rebuild_fraction * self.lo.size):
            self.fold_pending()

    def fold_pending(self) -> None:
        """Fold the pending set into the recent run and empty it: a merge (``O(recent)``, one ``searchsorted`` and
        ``insert`` per market, the pending entries sorted on their own). The recent run is merged into the main one
        (``O(n)``) once it holds an eighth as many entries; everything is rebuilt instead (``O(n log n)``) when the
        main run's stale entries (positions re-banded since) outnumber twice the live positions, or when the new
        entries outnumber an eighth of the main run (sorting them all costs less than merging)."""
        pending = self.pending
        main, recent = self._main, self._recent
        n_main = main.stored
        if pending.size * 8 > n_main or n_main - pending.size > 2 * int(self.active.sum()):
            self.rebuild()
            return
        self.folds += 1
        self._recent = self._merged(recent, pending)
        self.in_pending[pending] = False
        self.pending = np.zeros(0, dtype=np.int64)
        self._pending_read = 0
        if self._recent.stored * 8 > n_main:
            self.merges += 1
            self._main = self._merged(main, self._recent.live(self.version))
            self._recent = _Run.empty(self.n_markets)

    def _merged(self, run: _Run, new: I64) -> _Run:
        """``run``'s entries not yet fired, with ``new``'s current edges merged in."""
        lo_seg, lo_arr = self._merged_side(run.lo_seg, run.lo_arr, self.lo, new, descending=True)
        hi_seg, hi_arr = self._merged_side(run.hi_seg, run.hi_arr, self.hi, new, descending=False)
        return _Run(lo_seg, lo_arr, hi_seg, hi_arr)

    def _merged_side(self, seg: Segments, arr: Entries, edge: F64, new: I64,
                     descending: bool) -> tuple[Segments, Entries]:  # fmt: skip
        never = -np.inf if descending else np.inf
        new = new[self.active[new] & (edge[new] != never) & ~np.isnan(edge[new])]
        key = -edge[new] if descending else edge[new]
        order = np.lexsort((key, self.market[new]))
        new, key = new[order], key[order]
        new_start = np.searchsorted(self.market[new], np.arange(self.n_markets + 1))
        _, end, cursor = seg
        edges, ids, ver = arr
        size = int((end - cursor).sum()) + new.size
        out_e, out_i, out_v = np.empty(size), np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
        counts = np.zeros(self.n_markets, dtype=np.int64)
        _merge_runs(self.n_markets, cursor, end, edges, ids, ver, new.astype(np.int64), key,
                    new_start.astype(np.int64), edge, self.version, descending, out_e, out_i, out_v,
                    counts)  # fmt: skip
        first = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        return (first, first + counts, first.copy()), (out_e, out_i, out_v)

    def rebuild(self) -> None:
        """Sort every active band edge by market into the main run; empties the recent run and the pending set."""
        self.rebuilds += 1
        lo_seg, lo_arr = self._sorted(self.lo, descending=True)
        hi_seg, hi_arr = self._sorted(self.hi, descending=False)
        self._main = _Run(lo_seg, lo_arr, hi_seg, hi_arr)
        self._recent = _Run.empty(self.n_markets)
        self.in_pending[self.pending] = False
        self.pending = np.zeros(0, dtype=np.int64)
        self._pending_read = 0

    def _sorted(self, edge: F64, descending: bool) -> tuple[Segments, Entries]:
        never = -np.inf if descending else np.inf  # a long's lo of -inf (a short's hi of +inf) never fires
        ids = np.flatnonzero(self.active & (edge != never) & ~np.isnan(edge)).astype(np.int64)
        key = -edge[ids] if descending else edge[ids]
        order = np.lexsort((key, self.market[ids]))
        ids = ids[order]
        counts = np.bincount(self.market[ids], minlength=self.n_markets).astype(np.int64)
        start = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        end = start + counts
        return (start, end, start.copy()), (edge[ids].copy(), ids, self.version[ids].copy())

    def fired(self, mark: F64) -> I64:
        """Positions whose band the marks have crossed (each once), now in the pending set awaiting a re-band."""
        if self._pending_read > max(1024, self._recent.stored // 4, self.pending.size * 4):
            self.fold_pending()  # re-reading the pending set has cost more than folding it
        out = self._out
        n = 0
        for run in (self._main, self._recent):
            for seg, arr, desc in ((run.lo_seg, run.lo_arr, True), (run.hi_seg, run.hi_arr, False)):
                before = int(seg[2].sum())
                n = _fire_sorted(self.n_markets, mark, seg[0], seg[1], seg[2], arr[0], arr[1], arr[2], self.version,
                                 desc, out, n)  # fmt: skip
                self.entries_read += int(seg[2].sum()) - before
        from_sorted = out[:n].copy()
        pend = self.pending.copy()
        hits = np.empty(pend.size, dtype=np.int64)
        kept, n_hits = _scan_pending(pend, self.active, self.in_pending, self.market, self.lo, self.hi, mark, hits)
        self.pending = pend = pend[:kept]  # closed positions leave the pending set
        self.entries_read += int(pend.size)
        self._pending_read += int(pend.size)
        fired = np.unique(np.concatenate([from_sorted, hits[:n_hits]]))
        fired = fired[self.active[fired]]
        # Fired positions stay watched through the pending set until the caller re-bands or closes them.
        new = fired[~self.in_pending[fired]]
        self.in_pending[new] = True
        self.pending = np.concatenate([self.pending, new])
        return np.asarray(fired, dtype=np.int64)
