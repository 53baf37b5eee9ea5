"""What a venue's public liquidation feed shows: every liquidation order, or the latest per symbol and interval.

Binance's ``<symbol>@forceOrder`` stream pushes, for each symbol, only the latest liquidation order within each
1000 ms; OKX's ``liquidation-orders`` channel shows at most one order per contract per second. Public tallies of
a crash are sums over such feeds, so on those venues they are floors. Bybit's ``allLiquidation`` topic and the
on-chain venues publish every liquidation.

The rule is applied to recorded liquidations, rows in the order the engine processed them. "Latest" is the last
row of its market and interval in that order: the simulation's clock moves in whole steps, so every liquidation
of one step shares one timestamp and the engine's processing order is the only order they have. Intervals are
aligned to the epoch (``floor(ts_ms / interval_ms)``); which window edges a venue uses is not published.

Not modelled: a feed's own delays and batching (Bybit pushes every 500 ms, which changes when an order is seen,
not whether), and that a venue may publish one order's fills as one message or several: each recorded row is one
published order.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


def reported_mask(market: ArrayLike, ts_ms: ArrayLike, interval_ms: ArrayLike) -> BoolArray:
    """Which rows a public feed shows. ``market``: each row's market index; ``ts_ms``: its time, ms since the
    epoch; ``interval_ms``: its venue's feed interval, ms (0: the feed shows every order). Rows are in processing
    order; a row with a positive interval is shown iff no later row has its market and interval window."""
    m = np.asarray(market, dtype=np.int64)
    t = np.asarray(ts_ms, dtype=np.int64)
    step = np.asarray(interval_ms, dtype=np.int64)
    if not m.shape == t.shape == step.shape or m.ndim != 1:
        raise ValueError(f"market, ts_ms and interval_ms must be 1-d of one length: {m.shape}, {t.shape}, {step.shape}")
    if (step < 0).any():
        raise ValueError("interval_ms must be >= 0 (0: every order shown)")
    shown = np.ones(m.size, dtype=np.bool_)
    throttled = np.flatnonzero(step > 0)
    if throttled.size == 0:
        return shown
    window = t[throttled] // step[throttled]
    order = throttled[np.lexsort((throttled, window, m[throttled]))]
    w = t[order] // step[order]
    last = np.ones(order.size, dtype=np.bool_)
    last[:-1] = (m[order][1:] != m[order][:-1]) | (w[1:] != w[:-1])
    shown[order] = last
    return shown


def window_sums(
    group: ArrayLike, ts_ms: ArrayLike, values: ArrayLike, n_groups: int, start_ms: int, end_ms: int, window_ms: int
) -> tuple[IntArray, NDArray[np.int64], NDArray[np.float64]]:
    """Per window of ``window_ms`` (aligned to the epoch) covering ``[start_ms, end_ms]`` and per group
    ``0..n_groups-1``: the windows' start times, the count of rows and the sum of ``values`` (shape
    ``(windows, n_groups)``). Rows outside the span are a ``ValueError``."""
    g = np.asarray(group, dtype=np.int64)
    t = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    first = start_ms // window_ms
    n_windows = int(end_ms // window_ms - first + 1)
    w = t // window_ms - first
    if w.size and (w.min() < 0 or w.max() >= n_windows):
        raise ValueError(f"rows outside [{start_ms}, {end_ms}]")
    flat = w * n_groups + g
    counts = np.bincount(flat, minlength=n_windows * n_groups).reshape(n_windows, n_groups)
    sums = np.bincount(flat, weights=v, minlength=n_windows * n_groups).astype(np.float64).reshape(n_windows, n_groups)
    starts = (first + np.arange(n_windows, dtype=np.int64)) * window_ms
    return starts, counts.astype(np.int64), sums
