"""Policy comparison per grid cell: mean, quantiles and a 95 % confidence interval of each policy metric.

The interval is the 95 % bootstrap percentile interval of the mean over the cell's seeds (:func:`bootstrap_interval`,
resampled with a fixed seed); it needs two runs or more. Unlike Student's t it stays within the values' range, so
intervals of counts and amounts never go negative; with few seeds it is narrow, as every interval from few runs is
optimistic. Quantiles (5th, 50th, 95th percentile) interpolate linearly
between the cell's runs (numpy's default), so with few seeds they are only a range. The cells share their seeds
(common random numbers), so a difference between two cells' means is less noisy than their intervals suggest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from perpstress.sweep.metrics import POLICY_METRICS, column_values, grid_column
from perpstress.sweep.plan import SweepPlan

STATS = ("mean", "p5", "p50", "p95", "ci95_low", "ci95_high")

BOOTSTRAP_RESAMPLES = 4000
"""Resamples of a cell's seeds behind its interval."""
BOOTSTRAP_SEED = 20251010
"""The resampling's fixed seed: the same values always give the same interval."""


def bootstrap_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % bootstrap percentile interval of the mean of ``values``: the 2.5th and 97.5th percentiles of the
    means of :data:`BOOTSTRAP_RESAMPLES` resamples drawn with replacement (a fixed seed). It lies within the values'
    range, so a count or an amount that cannot be negative never gets a negative bound."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = values.size
    means = np.empty(BOOTSTRAP_RESAMPLES)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        k = min(chunk, BOOTSTRAP_RESAMPLES - start)
        means[start : start + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    p5: float
    p50: float
    p95: float
    ci95_low: float
    ci95_high: float


def describe(values: np.ndarray) -> Stats:
    """Mean, quantiles and the bootstrap interval of the mean of ``values`` (NaN where too few values)."""
    n = int(values.size)
    if n == 0:
        nan = math.nan
        return Stats(0, nan, nan, nan, nan, nan, nan)
    mean = float(values.mean())
    p5, p50, p95 = (float(q) for q in np.percentile(values, [5, 50, 95]))
    if n < 2:
        return Stats(n, mean, p5, p50, p95, math.nan, math.nan)
    low, high = bootstrap_interval(values)
    return Stats(n, mean, p5, p50, p95, low, high)


def policy_metrics(results: pa.Table) -> list[tuple[str, str]]:
    """The :data:`POLICY_METRICS` present in ``results`` with at least one value."""
    out = []
    for name, label in POLICY_METRICS:
        if name in results.column_names and results.column(name).null_count < results.num_rows:
            out.append((name, label))
    return out


def cells_table(plan: SweepPlan, results: pa.Table) -> pa.Table:
    """One row per grid cell: ``cell``, ``cell_label``, the grid values, ``runs`` and, per policy metric,
    ``<metric>_<stat>`` for each of :data:`STATS`."""
    metrics = policy_metrics(results)
    n_cells = len(plan.cells)
    columns: dict[str, Any] = {
        "cell": pa.array(range(n_cells), pa.int64()),
        "cell_label": pa.array([plan.grid.label(v) for v in plan.cell_values], pa.string()),
    }
    for path, values in plan.grid.axes:
        columns[path] = grid_column(values, [cell[path] for cell in plan.cell_values])
    cell_ids = results.column("cell").to_numpy() if results.num_rows else np.zeros(0, dtype=np.int64)
    columns["runs"] = pa.array([int((cell_ids == c).sum()) for c in range(n_cells)], pa.int64())
    for name, _ in metrics:
        stats = [describe(column_values(results, name, c)) for c in range(n_cells)]
        for stat in STATS:
            numbers = [getattr(s, stat) for s in stats]
            columns[f"{name}_{stat}"] = pa.array([None if math.isnan(v) else v for v in numbers], pa.float64())
    return pa.table(columns)
