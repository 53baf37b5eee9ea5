"""Results rows from summaries (optional sections included), and per-cell statistics against a reference."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.sweep import parse_grid, plan_sweep
from perpstress.sweep.cells import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, cells_table, describe, policy_metrics
from perpstress.sweep.metrics import results_table, summary_row

SUMMARY: dict[str, Any] = {
    "liquidations": {"count": 3, "notional_usd": 900.0, "long_notional_usd": 600.0, "short_notional_usd": 300.0,
                     "by_venue": {"a": 900.0}},
    "adl": {"count": 2, "notional_usd": 50.0, "by_venue": {"b": 50.0}},
    "insurance_funds": {"a": {"start_usd": 100.0, "end_usd": 90.0, "min_usd": 80.0},
                        "b": {"start_usd": 10.0, "end_usd": -5.0, "min_usd": -7.0}},
    "bad_debt_usd": 4.0,
    "prices": {"a:X": {"max_drawdown": -0.1}, "b:Y": {"max_drawdown": -0.3}},
    "invariants": {"money_conservation_max_abs_error_usd": 1e-7, "open_interest_max_imbalance": 0},
}  # fmt: skip


def test_summary_row_flattens_the_headline_numbers() -> None:
    row = summary_row(SUMMARY)
    assert row["liquidated_usd"] == 900.0
    assert row["liquidated_long_usd"] == 600.0
    assert row["adl_usd"] == 50.0
    assert row["adl_count"] == 2
    assert row["fund_drawdown_usd"] == pytest.approx(20.0 + 17.0)
    assert row["fund_drawdown_usd_b"] == pytest.approx(17.0)
    assert row["liquidated_usd_b"] == 0.0
    assert row["adl_usd_b"] == 50.0
    assert row["worst_price_drawdown"] == -0.3
    assert "hedges_broken" not in row


def test_newer_summary_sections_are_optional_columns() -> None:
    newer = copy.deepcopy(SUMMARY)
    newer["hedges"] = {"count": 12, "broken": {"count": 5, "notional_usd": 1e6}, "label": "text is skipped"}
    newer["transfers"] = {"delayed": 3}
    row = summary_row(newer)
    assert row["hedges_broken"] == 5  # hedges.broken given as a table: its count
    assert row["hedges_broken_notional_usd"] == 1e6
    assert row["transfers_delayed"] == 3
    assert "hedges_label" not in row
    newer["hedges"] = {"broken": 7}
    assert summary_row(newer)["hedges_broken"] == 7


def test_wall_clock_keys_never_become_columns() -> None:
    timed = copy.deepcopy(SUMMARY)
    timed["wall_seconds"] = 12.3
    timed["timing"] = {"steps": 5, "total_seconds": 12.0, "phases": {"makers": 7.0}, "sections": {}}
    assert summary_row(timed) == summary_row(SUMMARY)  # results.parquet stays the same bytes run after run


def test_results_table_is_sorted_and_holds_the_union_of_columns() -> None:
    grid = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 2e6]}}, "g")
    plan = plan_sweep(Scenario.load("quickstart"), grid, 2)
    with_hedges = copy.deepcopy(SUMMARY)
    with_hedges["hedges"] = {"broken": 1}
    summaries = {r.key: (with_hedges if r.cell == 1 and r.seed_index == 0 else SUMMARY) for r in plan.runs}
    del summaries[plan.runs[1].key]  # one run missing: no row for it
    table = results_table(plan, summaries)
    assert table.num_rows == 3
    assert table.column("cell").to_pylist() == [0, 1, 1]
    assert table.column("seed_index").to_pylist() == [0, 0, 1]
    assert table.column("venues.binance.insurance_fund.initial_usd").to_pylist() == [1e6, 2e6, 2e6]
    assert table.column("hedges_broken").to_pylist() == [None, 1, None]
    assert ("hedges_broken", "broken hedges") in policy_metrics(table)
    cells = cells_table(plan, table)
    assert cells.column("runs").to_pylist() == [1, 2]
    assert cells.column("hedges_broken_mean").to_pylist() == [None, 1.0]
    assert cells.column("liquidated_usd_ci95_low").to_pylist()[0] is None  # one run: no interval


def test_describe_matches_a_reference_computation() -> None:
    values = np.array([3.0, 9.0, 4.0, 10.0, 7.5])
    s = describe(values)
    assert s.n == 5
    assert s.mean == pytest.approx(6.7)
    assert s.p50 == 7.5
    assert s.p5 == pytest.approx(3.0 + 0.2 * 1.0)
    rng = np.random.default_rng(BOOTSTRAP_SEED)  # the interval by its definition, resample by resample
    means = [values[rng.integers(0, 5, size=(BOOTSTRAP_RESAMPLES, 5))].mean(axis=1)]
    assert (s.ci95_low, s.ci95_high) == pytest.approx(tuple(np.percentile(means[0], [2.5, 97.5])))
    assert describe(values) == s  # a fixed seed: the same values, the same interval


def test_intervals_of_counts_are_never_negative() -> None:
    counts = np.array([0.0, 0.0, 0.0, 0.0, 12.0])  # Student's t: 2.4 +- 6.7
    s = describe(counts)
    assert 0.0 <= s.ci95_low <= s.mean <= s.ci95_high <= 12.0


def test_with_many_seeds_the_interval_is_close_to_students() -> None:
    values = np.random.default_rng(1).normal(100.0, 10.0, 400)
    s = describe(values)
    half = 1.966 * values.std(ddof=1) / math.sqrt(values.size)
    assert s.ci95_low == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert s.ci95_high == pytest.approx(values.mean() + half, abs=0.15 * half)


def _summary(liquidated: float, adl: float) -> dict[str, Any]:
    s = copy.deepcopy(SUMMARY)
    s["liquidations"]["notional_usd"] = liquidated
    s["adl"]["notional_usd"] = adl
    return s


def test_cells_are_compared_with_the_baseline_seed_by_seed() -> None:
    grid = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 2e6, 4e6]}}, "g")
    plan = plan_sweep(Scenario.load("quickstart"), grid, 4)
    world = [100.0, 400.0, 250.0, 900.0]  # each seed's own level, shared by the cells
    effect = {0: 0.0, 1: -10.0, 2: -30.0}
    summaries = {r.key: _summary(world[r.seed_index] + effect[r.cell] + r.seed_index, 5.0) for r in plan.runs}
    del summaries[next(r.key for r in plan.runs if r.cell == 2 and r.seed_index == 3)]  # cell 2 lacks seed 3
    table = results_table(plan, summaries)
    cells = cells_table(plan, table, baseline=1).to_pydict()
    assert cells["baseline_cell"] == [1, 1, 1]
    assert cells["liquidated_usd_diff_mean"] == [10.0, None, -20.0]  # cell 2 paired on seeds 0-2 only
    assert cells["liquidated_usd_diff_pairs"] == [4, None, 3]
    assert cells["liquidated_usd_diff_ci95_low"] == [10.0, None, -20.0]  # the same difference on every seed
    assert cells["liquidated_usd_diff_ci95_high"] == [10.0, None, -20.0]
    low, high = cells["liquidated_usd_diff_unpaired_ci95_low"][0], cells["liquidated_usd_diff_unpaired_ci95_high"][0]
    assert low < -200.0  # unpaired, the seeds' spread of 100..900 swamps the difference of 10
    assert high > 200.0
    assert cells["adl_usd_diff_mean"] == [0.0, None, 0.0]
