"""``perpstress sweep``: a grid of scenario parameters times N seeds; one row per run, a summary per cell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perpstress.cli.app import app, console, err_console
from perpstress.config.scenario import Scenario
from perpstress.errors import PerpstressError, UsageError
from perpstress.sweep.cells import DIFF_STATS, policy_metrics
from perpstress.sweep.executors import ExecutorName
from perpstress.sweep.grid import Grid, baseline_cell, load_grid
from perpstress.sweep.plan import plan_sweep
from perpstress.sweep.runner import CELLS, RESULTS, SweepResult, run_sweep


class SweepIncompleteError(PerpstressError):
    """Some runs of a sweep did not finish."""


@app.command("sweep")
def sweep(
    scenario: Annotated[str, typer.Argument(help="scenario file or built-in scenario name")],
    out: Annotated[Path, typer.Option(help="sweep directory to write (runs/, results.parquet, cells.parquet)")],
    grid: Annotated[
        Path | None,
        typer.Option(help="grid file: \\[grid] table of dotted paths -> lists of values \\[default: seeds only]"),
    ] = None,
    seeds: Annotated[int, typer.Option(help="seeds per grid cell, from numpy SeedSequence(seed base).spawn")] = 1,
    seed_base: Annotated[
        int | None, typer.Option(help="entropy of the seed sequence \\[default: the scenario's seed]")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="parallel workers \\[default: the machine's cores]")] = None,
    address: Annotated[
        str | None, typer.Option(help="address of an existing Ray cluster (e.g. ray://head:10001 or auto)")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="ray, process or serial \\[default: ray when installed, else process; serial for 1]")
    ] = "auto",
    resume: Annotated[bool, typer.Option(help="continue the sweep in --out, skipping the runs it holds")] = False,
    summaries_only: Annotated[bool, typer.Option(help="keep only each run's summary.json")] = False,
    scale: Annotated[float, typer.Option(help="scale the number of crowd accounts (not their notional)")] = 1.0,
    population: Annotated[
        str,
        typer.Option(
            help="shared: one starting population per crowd setting, drawn once and shared by every seed; "
            "per-seed: each seed draws its own crowd"
        ),
    ] = "shared",
    report: Annotated[bool, typer.Option(help="write sweep.html (needs the report extra: plotly)")] = True,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="cell the others are compared with, seed by seed: a cell number or PATH=VALUE,... "
            "(e.g. adl.rule=ranked_queue) \\[default: cell 0]"
        ),
    ] = None,
) -> None:
    """Run a scenario over a grid of parameters and N seeds, then compare the grid cells (policies).

    Every cell is validated before any run; each run is keyed by a hash of its resolved scenario and seed.

    Runs are written atomically under DIR/runs/KEY; [bold]--resume[/bold] skips the finished ones.

    Every cell runs the same seeds, so each is compared with the baseline cell seed by seed: the paired mean
    difference with its 95 % interval, beside the unpaired interval of the difference of means.
    """
    if executor not in {"auto", "ray", "process", "serial"}:
        raise UsageError(f"--executor {executor}: choose ray, process or serial")
    base = Scenario.load(scenario)
    plan = plan_sweep(base, load_grid(grid) if grid is not None else Grid(), seeds, scale=scale, seed_base=seed_base,
                      population=population)  # type: ignore[arg-type]  # fmt: skip
    base_cell = baseline_cell(plan.grid, baseline)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"{base.name}: {len(plan.cells)} cells x {len(plan.seeds)} seeds", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        exec_name: ExecutorName = executor  # type: ignore[assignment]
        result = run_sweep(plan, out, executor=exec_name, workers=workers, address=address, resume=resume,
                           summaries_only=summaries_only, report=report, progress=progress,
                           baseline=base_cell)  # fmt: skip
    print_cells(result)
    print_paired(result)
    wrote = [RESULTS, CELLS] + ([result.report.name] if result.report else [])
    shared = ""
    if result.executed:
        shared = (f" ({result.populations} starting population{'s' if result.populations != 1 else ''} drawn once and "
                  "shared)" if result.populations else " (each run drew its own population)")  # fmt: skip
    console.print(
        f"{result.executed} runs on {result.executor}, {result.reused} reused{shared}; wrote {', '.join(wrote)} "
        f"in {out}"
    )
    if result.report_problem:
        err_console.print(f"note: sweep.html not written: {result.report_problem}", markup=False)
    if result.missing:
        reasons = sorted({f.reason for f in result.failures}) or ["stopped before they ran"]
        raise SweepIncompleteError(
            f"{result.missing} of {len(plan.unique_runs())} runs did not finish ({'; '.join(reasons)}); the tables "
            f"hold the {result.results.num_rows} rows that did; rerun with --resume to complete the sweep"
        )


def print_cells(result: SweepResult) -> None:
    """The per-cell policy table: mean, 95 % CI and quantiles of each policy metric."""
    metrics = policy_metrics(result.results)
    data = result.cells.to_pydict()
    for c, label in enumerate(data["cell_label"]):
        console.print(f"cell {c}: {label}", markup=False, highlight=False)
    table = Table(title=f"{result.plan.base.name}: per grid cell, over {len(result.plan.seeds)} seeds")
    for name, justify in (("cell", "left"), ("metric", "left"), ("runs", "right"), ("mean", "right"),
                          ("95% CI", "right"), ("p5", "right"), ("p50", "right"), ("p95", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in range(len(data["cell"])):
        for i, (name, metric) in enumerate(metrics):
            s = {k: data[f"{name}_{k}"][c] for k in ("mean", "p5", "p50", "p95", "ci95_low", "ci95_high")}
            ci = "-" if s["ci95_low"] is None else f"{_fmt(s['ci95_low'])} .. {_fmt(s['ci95_high'])}"
            table.add_row(str(c) if i == 0 else "", metric, str(data["runs"][c]) if i == 0 else "",
                          _fmt(s["mean"]), ci, _fmt(s["p5"]), _fmt(s["p50"]), _fmt(s["p95"]),
                          end_section=i == len(metrics) - 1)  # fmt: skip
    console.print(table)


def print_paired(result: SweepResult) -> None:
    """Each cell minus the baseline cell, per policy metric: the mean of the per-seed differences, its paired
    95 % interval and the unpaired interval of the difference of means (what the comparison is worth unpaired)."""
    n_cells = len(result.plan.cells)
    if n_cells < 2:
        return
    metrics = policy_metrics(result.results)
    data = result.cells.to_pydict()
    b = result.baseline
    table = Table(title=f"each cell minus cell {b} (baseline), paired by seed")
    for name, justify in (("cell", "left"), ("metric", "left"), ("pairs", "right"), ("mean diff", "right"),
                          ("paired 95% CI", "right"), ("unpaired 95% CI", "right"),
                          ("width ratio", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    others = [c for c in range(n_cells) if c != b]
    for c in others:
        for i, (name, metric) in enumerate(metrics):
            d = {k: data[f"{name}_{k}"][c] for k in DIFF_STATS}
            paired = _interval(d["diff_ci95_low"], d["diff_ci95_high"])
            unpaired = _interval(d["diff_unpaired_ci95_low"], d["diff_unpaired_ci95_high"])
            ratio = "-"
            if d["diff_ci95_low"] is not None and d["diff_unpaired_ci95_low"] is not None:
                width = d["diff_unpaired_ci95_high"] - d["diff_unpaired_ci95_low"]
                if width > 0:
                    ratio = f"{(d['diff_ci95_high'] - d['diff_ci95_low']) / width:.2f}"
            table.add_row(str(c) if i == 0 else "", metric, "-" if d["diff_pairs"] is None else str(d["diff_pairs"]),
                          _fmt(d["diff_mean"]), paired, unpaired, ratio,
                          end_section=i == len(metrics) - 1)  # fmt: skip
    console.print(table)


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{_fmt(low)} .. {_fmt(high)}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1e9:
        return f"{value / 1e9:,.2f}B"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.4g}"
