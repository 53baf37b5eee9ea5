"""``perpstress attribute``: the base run and its counterfactual twins, per seed; how much of each market's fall the
forced flow and the makers' withdrawal made (:mod:`perpstress.studies.attribution`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perpstress.cli.app import app, console, err_console
from perpstress.config.scenario import Scenario
from perpstress.errors import PerpstressError, UsageError
from perpstress.outputs.headline import usd
from perpstress.studies.attribution import FALLS, AttributionResult, parse_set, plan_attribution, run_attribution


class AttributionIncompleteError(PerpstressError):
    """Some runs of an attribution did not finish."""


@app.command("attribute")
def attribute(
    scenario: Annotated[str, typer.Argument(help="scenario file or built-in scenario name")],
    seeds: Annotated[int, typer.Option(help="seeds; more than one are spawned from --seed as sweeps do")] = 1,
    seed: Annotated[int | None, typer.Option(help="the (first) seed \\[default: the scenario's]")] = None,
    scale: Annotated[float, typer.Option(help="scale the number of crowd accounts (not their notional)")] = 1.0,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="PATH=VALUE: a twin of your own with this change (repeatable; one twin)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="folder to write \\[default: runs/NAME-attribution]")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing attribution folder")] = False,
    workers: Annotated[int | None, typer.Option(help="parallel workers \\[default: the machine's cores]")] = None,
    executor: Annotated[
        str, typer.Option(help="ray, process or serial \\[default: ray when installed, else process; serial for 1]")
    ] = "auto",
    address: Annotated[str | None, typer.Option(help="address of an existing Ray cluster")] = None,
    report: Annotated[bool, typer.Option(help="write attribution.html (needs the report extra: plotly)")] = True,
) -> None:
    """How much of the crash did the machine make? Runs the scenario and its twins, which share every random stream:
    [bold]no-cascade[/bold] (forced flow absorbed at mark), [bold]steady-makers[/bold] (makers never withdraw)
    and, with --set, yours. Prints per market group the drawdowns and each twin's share of the fall."""
    if executor not in {"auto", "ray", "process", "serial"}:
        raise UsageError(f"--executor {executor}: choose ray, process or serial")
    if not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--scale {scale:g}: must be above 0")
    base = Scenario.load(scenario)
    plan = plan_attribution(base, seeds, scale=scale, seed=seed, override=parse_set(set_ or []))
    target = out if out is not None else Path("runs") / f"{base.name}-attribution"
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"{base.name}: {len(plan.variants)} variants x {len(plan.seeds)} seeds", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_attribution(plan, target, workers=workers, executor=executor, address=address,
                                 overwrite=overwrite, report=report, progress=progress)  # fmt: skip
    print_attribution(result)
    wrote = ["attribution_runs.parquet", "attribution.parquet", "attribution.json"]
    wrote += ["attribution.html"] if (target / "attribution.html").is_file() else []
    console.print(f"wrote {', '.join(wrote)} and runs/ in {target}", markup=False, highlight=False)
    if result.failures:
        raise AttributionIncompleteError(
            f"{len(result.failures)} runs failed ({'; '.join(result.failures[:3])}); the tables hold the others"
        )


def _pct(row: dict[str, Any], key: str) -> str:
    x = row.get(key)
    if x is None or not math.isfinite(x):
        return "n/a"
    lo, hi = row.get(key + "_lo"), row.get(key + "_hi")
    text = f"{100 * x:.1f}%"
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        text += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return text


def print_attribution(result: AttributionResult) -> None:
    """Per group and venue: the base drawdown and each twin's drawdown and share of the fall; then liquidations and
    ADL in each variant."""
    variants = [v.name for v in result.plan.variants]
    twins = variants[1:]
    n = len(result.plan.seeds)
    for level in ("group", "venue"):
        by: dict[str, dict[str, dict[str, Any]]] = {}
        for r in result.rows(level):
            by.setdefault(r["name"], {})[r["variant"]] = r
        tables = {}
        for measure, what in (("drawdown", "the mark"), ("trade_drawdown", "trade prices")):
            t_ = Table(title=f"{result.plan.base.name} at scale {result.plan.scale:g}, by {level}, {n} seed(s): "
                       f"the fall of {what}; each twin's share of the base's fall, mean [95% interval]")  # fmt: skip
            t_.add_column(level)
            t_.add_column("base", justify="right")
            for t in twins:
                t_.add_column(t, justify="right")
                t_.add_column("share", justify="right")
            tables[measure] = t_
        flows = Table(title=f"by {level}: liquidated and auto-deleveraged notional, mean over seeds")
        flows.add_column(level)
        for what in ("liquidated", "ADL"):
            for v in variants:
                flows.add_column(f"{what}: {v}", justify="right")
        for name, rows in by.items():
            for measure, share_key in FALLS.items():
                cells = [name, _pct(rows.get("base", {}), measure)]
                for t in twins:
                    cells += [_pct(rows.get(t, {}), measure), _pct(rows.get(t, {}), share_key)]
                tables[measure].add_row(*cells)
            flows.add_row(name, *[usd(rows.get(v, {}).get(k)) for k in ("liquidated_usd", "adl_usd") for v in variants])
        for t_ in tables.values():
            console.print(t_)
        console.print(flows)
