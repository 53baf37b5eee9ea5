"""A run's headline numbers as one flat row, and the sweep's ``results.parquet`` built from those rows.

Columns of ``results.parquet``, in order: ``run_key``, ``cell``, ``cell_label``, one column per grid path (named by
the dotted path), ``seed_index``, ``seed``, then the metrics of :func:`summary_row`. Rows are sorted by cell and
seed index, and every value comes from the runs' ``summary.json`` files, so the table (and its Parquet bytes) is
the same however the runs were scheduled. Wall-clock times are left out for that reason.

Summary keys newer than the engine of November 2025 (``hedges``, ``transfers``, ``collateral``) are optional:
present, their numeric entries become ``<section>_<key>`` columns; absent, nothing is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from perpstress.outputs.headline_row import headline
from perpstress.sweep.grid import value_text
from perpstress.sweep.plan import SweepPlan

OPTIONAL_SECTIONS = ("hedges", "transfers", "collateral")

POLICY_METRICS: tuple[tuple[str, str], ...] = (
    ("liquidated_usd", "liquidated USD"),
    ("adl_usd", "ADL notional USD"),
    ("adl_count", "ADL fills"),
    ("fund_drawdown_usd", "insurance-fund drawdown USD"),
    ("bad_debt_usd", "bad debt USD"),
    ("hedges_broken", "broken hedges"),
)
"""The metrics compared across cells (column, label); those a sweep's runs lack are skipped."""


def summary_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The flat metrics of one ``summary.json``: its headline row (:func:`~perpstress.outputs.headline_row.headline`,
    the same columns as ``Run.headline()`` and ``perpstress query``'s ``runs``), then stops, top-ups and every
    number of the optional sections."""
    row: dict[str, Any] = dict(headline(summary))
    for name, key in (("stops", "count"), ("topups", "usd")):
        if isinstance(summary.get(name), dict) and key in summary[name]:
            row[f"{name}_{key}"] = summary[name][key]
    for section in OPTIONAL_SECTIONS:
        if isinstance(summary.get(section), dict):
            row.update(_numbers(summary[section], section, depth=2))
    return row


def _numbers(table: dict[str, Any], prefix: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}_{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            out[name] = value
        elif isinstance(value, dict) and depth > 1:
            out.update(_numbers(value, name, depth - 1))
    return out


def results_table(plan: SweepPlan, summaries: dict[str, dict[str, Any]]) -> pa.Table:
    """One row per planned run whose summary is in ``summaries`` (by key), sorted by cell and seed index."""
    runs = sorted((r for r in plan.runs if r.key in summaries), key=lambda r: (r.cell, r.seed_index))
    metric_rows = [summary_row(summaries[r.key]) for r in runs]
    names: list[str] = []
    for row in metric_rows:  # union of metric names, first-seen order (deterministic: runs are sorted)
        names.extend(n for n in row if n not in names)
    columns: dict[str, pa.Array] = {
        "run_key": pa.array([r.key for r in runs], pa.string()),
        "cell": pa.array([r.cell for r in runs], pa.int64()),
        "cell_label": pa.array([plan.grid.label(plan.cell_values[r.cell]) for r in runs], pa.string()),
    }
    for path, values in plan.grid.axes:
        columns[path] = grid_column(values, [plan.cell_values[r.cell][path] for r in runs])
    columns["seed_index"] = pa.array([r.seed_index for r in runs], pa.int64())
    columns["seed"] = pa.array([r.seed for r in runs], pa.int64())
    for name in names:
        if name in columns:
            continue
        columns[name] = _metric_column([row.get(name) for row in metric_rows])
    return pa.table(columns)


def grid_column(axis_values: Sequence[Any], values: Sequence[Any]) -> pa.Array:
    """A grid path's column: numbers, strings or booleans as such; tables, lists or mixed kinds as text."""
    kinds = {_kind(v) for v in axis_values}
    if kinds == {"int"}:
        return pa.array(values, pa.int64())
    if kinds <= {"int", "float"}:
        return pa.array([float(v) for v in values], pa.float64())
    if kinds == {"bool"}:
        return pa.array(values, pa.bool_())
    return pa.array([value_text(v) for v in values], pa.string())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str" if isinstance(value, str) else "other"


def _metric_column(values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, str) for v in present):  # e.g. worst_drawdown_market
        return pa.array(values, pa.string())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    return pa.array([None if v is None else float(v) for v in values], pa.float64())


def column_values(table: pa.Table, name: str, cell: int) -> np.ndarray:
    """Non-null values of metric ``name`` in the rows of ``cell``, as floats."""
    cells = table.column("cell").to_numpy()
    col = table.column(name).to_numpy(zero_copy_only=False)
    values = np.asarray(col[cells == cell], dtype=float)
    return np.asarray(values[~np.isnan(values)], dtype=float)
