"""Policy comparison per grid cell: mean, quantiles and a 95 % confidence interval of each policy metric.

The interval is Student's t on the mean over the cell's seeds, ``mean +- t(0.975, n-1) * sd / sqrt(n)`` (sample
standard deviation); it needs two runs or more. Quantiles (5th, 50th, 95th percentile) interpolate linearly
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

_T975 = (
    12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934, 2.5705818356363146,
    2.4469118511449692, 2.3646242515927844, 2.306004135204166, 2.2621571628540993, 2.2281388519649385,
    2.2009851600916384, 2.1788128296634177, 2.1603686564627917, 2.1447866879178035, 2.131449545559323,
    2.1199052992210112, 2.1098155778331806, 2.10092204024096, 2.0930240544083096, 2.0859634472658364,
    2.0796138447276626, 2.0738730679040147, 2.068657610419041, 2.0638985616280205, 2.059538552753294,
    2.055529438642871, 2.0518305164802833, 2.048407141795244, 2.0452296421327034, 2.0422724563012373,
)  # fmt: skip
"""Student's t 97.5 % quantiles for 1..30 degrees of freedom."""
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """Student's t 97.5 % quantile: exact table to 30 degrees of freedom, then the Cornish-Fisher expansion
    (Abramowitz & Stegun 26.7.5; error below 1e-6 past 30)."""
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


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
    """Mean, quantiles and the t interval of ``values`` (NaN where too few values)."""
    n = int(values.size)
    if n == 0:
        nan = math.nan
        return Stats(0, nan, nan, nan, nan, nan, nan)
    mean = float(values.mean())
    p5, p50, p95 = (float(q) for q in np.percentile(values, [5, 50, 95]))
    if n < 2:
        return Stats(n, mean, p5, p50, p95, math.nan, math.nan)
    half = t975(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return Stats(n, mean, p5, p50, p95, mean - half, mean + half)


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
