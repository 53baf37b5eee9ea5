"""Policy comparison per grid cell: mean, quantiles and a 95 % confidence interval of each policy metric.

The interval is the 95 % bootstrap percentile interval of the mean over the cell's seeds (:func:`bootstrap_interval`,
resampled with a fixed seed); it needs two runs or more. Unlike Student's t it stays within the values' range, so
intervals of counts and amounts never go negative; with few seeds it is narrow, as every interval from few runs is
optimistic. Quantiles (5th, 50th, 95th percentile) interpolate linearly
between the cell's runs (numpy's default), so with few seeds they are only a range.

The cells share their seeds (common random numbers), so each cell is also compared with a baseline cell seed by
seed (:func:`perpstress.stats.paired_difference`): per metric the mean of the cell's run minus the baseline's run on
the same seed, its paired 95 % interval, and beside it the unpaired interval of the difference of means (each cell's
seeds resampled independently), which is what the comparison would be worth without pairing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from perpstress.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    PairedDifference,
    bootstrap_interval,
    paired_difference,
)
from perpstress.sweep.metrics import POLICY_METRICS, column_values, grid_column
from perpstress.sweep.plan import SweepPlan

STATS = ("mean", "p5", "p50", "p95", "ci95_low", "ci95_high")
DIFF_STATS = ("diff_mean", "diff_pairs", "diff_ci95_low", "diff_ci95_high", "diff_unpaired_ci95_low",
              "diff_unpaired_ci95_high")  # fmt: skip
"""Per metric, the cell against the baseline cell: ``<metric>_<stat>`` columns of ``cells.parquet``."""

__all__ = ["BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "DIFF_STATS", "STATS", "bootstrap_interval", "cells_table",
           "describe", "paired_against", "policy_metrics", "seed_values"]  # fmt: skip


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


def seed_values(results: pa.Table, name: str, cell: int) -> dict[int, float]:
    """Metric ``name`` of ``cell``'s runs by seed (NaN where a run has no value)."""
    if not results.num_rows:
        return {}
    cells = results.column("cell").to_numpy()
    seeds = results.column("seed").to_numpy()
    col = np.asarray(results.column(name).to_numpy(zero_copy_only=False), dtype=float)
    mask = cells == cell
    return {int(s): float(v) for s, v in zip(seeds[mask], col[mask], strict=True)}


def paired_against(results: pa.Table, name: str, cell: int, baseline: int) -> PairedDifference:
    """Metric ``name``: ``cell`` minus ``baseline``, seed by seed."""
    return paired_difference(seed_values(results, name, baseline), seed_values(results, name, cell))


def cells_table(plan: SweepPlan, results: pa.Table, baseline: int = 0) -> pa.Table:
    """One row per grid cell: ``cell``, ``cell_label``, the grid values, ``runs``, ``baseline_cell`` and, per
    policy metric, ``<metric>_<stat>`` for each of :data:`STATS` and of :data:`DIFF_STATS` (the cell minus the
    baseline cell, paired by seed; null in the baseline's own row)."""
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
    columns["baseline_cell"] = pa.array([baseline] * n_cells, pa.int64())
    for name, _ in metrics:
        diffs = [None if c == baseline else paired_against(results, name, c, baseline) for c in range(n_cells)]
        columns[f"{name}_diff_pairs"] = pa.array([None if d is None else d.pairs for d in diffs], pa.int64())
        for stat, attr in (("diff_mean", "mean"), ("diff_ci95_low", "paired_low"), ("diff_ci95_high", "paired_high"),
                           ("diff_unpaired_ci95_low", "unpaired_low"),
                           ("diff_unpaired_ci95_high", "unpaired_high")):  # fmt: skip
            numbers = [None if d is None else getattr(d, attr) for d in diffs]
            columns[f"{name}_{stat}"] = pa.array([None if v is None or math.isnan(v) else v for v in numbers],
                                                 pa.float64())  # fmt: skip
    return pa.table(columns)
