"""Run a planned sweep into its directory and rebuild its tables: the orchestration behind ``perpstress sweep``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from perpstress.errors import MissingExtraError, UsageError
from perpstress.outputs.atomic import write_bytes_atomic
from perpstress.outputs.rundir import PARQUET_OPTIONS
from perpstress.population.initial import InitialDraw, draw_initial
from perpstress.sweep.cells import cells_table
from perpstress.sweep.executors import (
    ExecutorName,
    RunFailure,
    check_cluster,
    choose_executor,
    default_workers,
    execute_runs,
)
from perpstress.sweep.metrics import results_table
from perpstress.sweep.plan import PlannedRun, SweepPlan
from perpstress.sweep.store import SweepStore
from perpstress.sweep.worker import RunOutcome, RunTask, SweepShared

RESULTS = "results.parquet"
CELLS = "cells.parquet"
REPORT = "sweep.html"

Progress = Callable[[int, int], None]
"""Called with (runs finished, runs in the sweep): once before the first run (finished = runs reused), then after
each run."""


@dataclass
class SweepResult:
    root: Path
    plan: SweepPlan
    executor: str
    results: pa.Table
    cells: pa.Table
    executed: int
    reused: int
    failures: list[RunFailure] = field(default_factory=list)
    report: Path | None = None
    report_problem: str | None = None
    populations: int = 0
    """Populations drawn by the driver and shared with the runs (0: every run drew its own)."""
    baseline: int = 0
    """The cell the others are compared with, seed by seed."""

    @property
    def missing(self) -> int:
        """Planned runs without a result (failed, or not run because the sweep stopped)."""
        return len({r.key for r in self.plan.runs}) - self.executed - self.reused


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    *,
    executor: ExecutorName = "auto",
    workers: int | None = None,
    address: str | None = None,
    resume: bool = False,
    summaries_only: bool = False,
    report: bool = True,
    progress: Progress | None = None,
    baseline: int = 0,
) -> SweepResult:
    """Execute the runs of ``plan`` that ``out`` does not hold yet and write ``results.parquet``,
    ``cells.parquet`` and (with plotly installed) ``sweep.html``. Failed runs are listed in the result, not
    raised: the tables hold every run that finished. ``baseline`` is the cell every other cell is compared with,
    seed by seed (:func:`~perpstress.sweep.grid.baseline_cell` reads it from ``--baseline``)."""
    if not 0 <= baseline < len(plan.cells):
        raise UsageError(f"baseline cell {baseline}: the grid has cells 0 to {len(plan.cells) - 1}")
    n_workers = default_workers() if workers is None else workers
    chosen = choose_executor(executor, n_workers, address)
    if chosen == "ray" and address is not None:
        check_cluster(address)  # before the sweep directory exists
    store = SweepStore(out)
    store.prepare(plan.manifest(), resume)
    unique = plan.unique_runs()
    todo = [r for r in unique if not store.is_complete(r.key, summaries_only)]
    reused = len(unique) - len(todo)
    done = reused
    if progress is not None:
        progress(done, len(unique))

    def on_done(outcome: RunOutcome) -> None:
        nonlocal done
        store.write(outcome, summaries_only)
        done += 1
        if progress is not None:
            progress(done, len(unique))

    tasks = [RunTask(r.key, plan.cell_values[r.cell], r.seed, plan.scale, summaries_only, r.population) for r in todo]
    shared = SweepShared(plan.base, draw_populations(plan, todo))
    try:
        failures = execute_runs(chosen, shared, tasks, on_done, workers=n_workers, address=address)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: the tables keep the finished runs; --resume the rest
        rebuild_tables(plan, store, summaries_only, write_report=False, baseline=baseline)
        raise
    result = rebuild_tables(plan, store, summaries_only, write_report=report, baseline=baseline)
    result.executor = chosen
    result.executed = done - reused
    result.reused = reused
    result.failures = failures
    result.populations = len(shared.populations)
    return result


def draw_populations(plan: SweepPlan, runs: list[PlannedRun]) -> dict[str, InitialDraw]:
    """Each distinct shared population the ``runs`` start from, drawn once (from the first run that needs it)."""
    out: dict[str, InitialDraw] = {}
    for run in runs:
        if run.population is not None and run.population not in out:
            drawn = draw_initial(plan.scenario(run), plan.scale)
            if drawn.key != run.population:  # the plan and the draw hash the same inputs; a bug if they differ
                raise RuntimeError(f"population of run {run.key}: planned {run.population}, drawn {drawn.key}")
            out[run.population] = drawn
    return out


def rebuild_tables(
    plan: SweepPlan, store: SweepStore, summaries_only: bool, *, write_report: bool = True, baseline: int = 0
) -> SweepResult:
    """``results.parquet`` and ``cells.parquet`` from the completed runs in the directory (deterministic: the same
    bytes whatever order the runs finished in), and the HTML report; cells are compared with cell ``baseline``."""
    summaries: dict[str, dict[str, Any]] = {}
    for run in plan.runs:
        if run.key not in summaries and store.is_complete(run.key, summaries_only):
            summaries[run.key] = store.read_summary(run.key)
    results = results_table(plan, summaries)
    cells = cells_table(plan, results, baseline)
    write_parquet_atomic(store.root / RESULTS, results)
    write_parquet_atomic(store.root / CELLS, cells)
    result = SweepResult(store.root, plan, "", results, cells, 0, 0, baseline=baseline)
    if write_report:
        from perpstress.sweep.report import write_report_html

        try:
            result.report = write_report_html(store.root / REPORT, plan, results, cells, baseline)
        except MissingExtraError as exc:
            result.report_problem = str(exc)
    return result


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    write_bytes_atomic(path, sink.getvalue().to_pybytes())
