"""Measures of a crash, computed the same way from real data and from a run (pure functions over arrays).

Times are Unix milliseconds; prices quote units; depth USD. :mod:`perpstress.validation.derive` applies these to the
files in ``shared/data`` to get the real figures; :mod:`perpstress.validation.targets` applies them to a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from perpstress.state.portfolio import F64, I64

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Drawdown:
    """The deepest fall from a running peak: ``fraction = 1 - low / peak`` (0 when the price never falls)."""

    fraction: float
    peak: float
    peak_ts_ms: int
    low: float
    low_ts_ms: int


def max_drawdown(ts_ms: ArrayLike, price: ArrayLike) -> Drawdown:
    """Peak-to-trough drawdown of a price path; NaN prices (no trade yet) are skipped."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    p = np.asarray(price, dtype=np.float64)
    ok = np.isfinite(p) & (p > 0)
    ts, p = ts[ok], p[ok]
    if p.size == 0:
        raise ValueError("no finite prices")
    peak = np.maximum.accumulate(p)
    ratio = p / peak
    i = int(np.argmin(ratio))
    j = int(np.flatnonzero(p[: i + 1] == peak[i])[0])
    return Drawdown(float(1.0 - ratio[i]), float(peak[i]), int(ts[j]), float(p[i]), int(ts[i]))


def low_time(ts_ms: ArrayLike, price: ArrayLike) -> tuple[float, int]:
    """The lowest finite price and the first time it is reached."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    p = np.asarray(price, dtype=np.float64)
    ok = np.isfinite(p)
    if not ok.any():
        raise ValueError("no finite prices")
    i = int(np.flatnonzero(ok)[np.argmin(p[ok])])
    return float(p[i]), int(ts[i])


def snapshots(ts_ms: ArrayLike, values: ArrayLike, every_ms: int = 30_000) -> tuple[I64, F64]:
    """The series as a venue's periodic snapshots: at each multiple of ``every_ms`` from the first sample, the last
    value at or before it. Binance's book-depth archive holds a snapshot every ~30 s; a run records every step, so
    sampling a run this way compares like with like (a one-step dip counts no more than a real one would)."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if ts.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    grid = np.arange(ts[0], ts[-1] + 1, every_ms, dtype=np.int64)
    idx = np.searchsorted(ts, grid, side="right") - 1
    return grid, v[idx]


def rolling_median(ts_ms: ArrayLike, values: ArrayLike, window_ms: int) -> F64:
    """At each sample, the median of the samples in ``(t - window_ms, t]`` (NaNs ignored)."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    lo = np.searchsorted(ts, ts - window_ms, side="right")
    out = np.empty(v.size)
    for i in range(v.size):
        w = v[lo[i] : i + 1]
        w = w[np.isfinite(w)]
        out[i] = float(np.median(w)) if w.size else np.nan
    return out


@dataclass(frozen=True)
class DepthEpisode:
    """A collapse of book depth and its recovery.

    ``pre_level``: median depth over the window before the shock; ``trough``: the lowest depth after the shock;
    ``collapse = 1 - trough / pre_level``; ``recovered_ts_ms``: the first time after the trough at which the
    rolling median of depth since the trough is back to ``recovery_fraction`` of the pre-crash level (None: not
    within the data).
    """

    pre_level: float
    pre_samples: int
    trough: float
    trough_ts_ms: int
    collapse: float
    recovery_fraction: float
    recovered_ts_ms: int | None

    @property
    def recovery_minutes(self) -> float | None:
        if self.recovered_ts_ms is None:
            return None
        return (self.recovered_ts_ms - self.trough_ts_ms) / MINUTE_MS


def depth_episode(
    ts_ms: ArrayLike,
    depth: ArrayLike,
    shock_ts_ms: int,
    pre_window_ms: int = 20 * MINUTE_MS,
    recovery_fraction: float = 0.5,
    recovery_window_ms: int = 5 * MINUTE_MS,
) -> DepthEpisode:
    """Measure a depth collapse around ``shock_ts_ms`` (see :class:`DepthEpisode`). Raises ValueError when there
    is no sample before or after the shock."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d)
    ts, d = ts[ok], d[ok]
    pre = (ts >= shock_ts_ms - pre_window_ms) & (ts < shock_ts_ms)
    post = ts >= shock_ts_ms
    if not pre.any():
        raise ValueError("no depth sample before the shock")
    if not post.any():
        raise ValueError("no depth sample after the shock")
    level = float(np.median(d[pre]))
    post_idx = np.flatnonzero(post)
    k = int(post_idx[np.argmin(d[post])])
    trough, trough_ts = float(d[k]), int(ts[k])
    after = ts >= trough_ts  # the median looks back from the trough onwards only, never into the pre-crash book
    smooth = rolling_median(ts[after], d[after], recovery_window_ms)
    hit = np.flatnonzero((ts[after] > trough_ts) & (smooth >= recovery_fraction * level))
    recovered = int(ts[after][hit[0]]) if hit.size else None
    collapse = 1.0 - trough / level if level > 0 else float("nan")
    return DepthEpisode(level, int(pre.sum()), trough, trough_ts, collapse, recovery_fraction, recovered)


def volume_onset(ts_ms: ArrayLike, volume: ArrayLike, factor: float = 10.0, lookback: int = 20) -> int | None:
    """The first bar whose volume exceeds ``factor`` times the median of the ``lookback`` bars before it: when the
    news hit the tape (1-minute klines). None when no bar does."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(volume, dtype=np.float64)
    for i in range(lookback, v.size):
        if v[i] > factor * float(np.median(v[i - lookback : i])):
            return int(ts[i])
    return None


def share_in(amounts: ArrayLike, inside: ArrayLike) -> float | None:
    """The share of ``sum(amounts)`` that lies where ``inside`` is true (None when the total is not positive):
    where a crash's ADL budget, deficits or notional fell, by group of markets."""
    a = np.asarray(amounts, dtype=np.float64)
    mask = np.asarray(inside, dtype=bool)
    total = float(a.sum())
    if not total > 0:
        return None
    return float(a[mask].sum()) / total


def pnl_taken(winner_pnl: ArrayLike) -> F64:
    """The PnL ADL took from each winner it closed: its PnL on the closed quantity (fill price against entry) where
    positive; a winner closed at a loss gave up no profit (Chitra et al.'s budget counts winners in profit only)."""
    return np.maximum(np.asarray(winner_pnl, dtype=np.float64), 0.0)


def level_before(ts_ms: ArrayLike, values: ArrayLike, before_ts_ms: int | None) -> tuple[float, int]:
    """The last value recorded strictly before ``before_ts_ms`` and its time; the first value when there is none
    (or no time is given)."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if ts.size == 0:
        raise ValueError("no samples")
    i = 0
    if before_ts_ms is not None:
        i = max(int(np.searchsorted(ts, before_ts_ms, side="left")) - 1, 0)
    return float(v[i]), int(ts[i])
