"""``perpstress validate``: compare a run with the real October 10-11, 2025 crash, target by target."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from perpstress.cli.app import app, console
from perpstress.errors import UsageError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.validation.seeds import find_runs, validate_runs
from perpstress.validation.targets import load_targets, validate_run


@app.command("validate")
def validate(
    target: Annotated[
        str,
        typer.Argument(help="a run directory, a folder of runs (a sweep directory), or with --seeds a scenario"),
    ],
    seeds: Annotated[
        int | None, typer.Option(help="run the scenario TARGET on this many seeds first (a sweep), then validate")
    ] = None,
    scale: Annotated[float, typer.Option(help="with --seeds: scale the number of crowd accounts")] = 1.0,
    out: Annotated[
        Path | None, typer.Option(help="with --seeds: the sweep directory \\[default: sweeps/NAME-validate-N]")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="with --seeds: parallel workers")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as one JSON object")] = False,
) -> None:
    """Compare a run, or many seeds' runs, with the October 2025 crash: each target's tolerance, the simulated
    figure, pass or fail, and the source of the real figure. Writes validation.json into each run directory.

    Over several runs (a folder of runs, or --seeds N): per target the pass rate and the 5th-95th percentile of the
    simulated figure; a target holds when it passes on at least 80 % of the runs. Targets and tolerances are fixed in
    perpstress/validation/oct2025_targets.toml (docs/validation.md). A target the run cannot measure (no ETH market,
    a run too short) is n/a with the reason, never a pass.
    """
    if seeds is not None:
        folder = _run_seeds(target, seeds, scale, out, workers)
        runs = find_runs(folder / "runs")
    else:
        folder = Path(target)
        runs = find_runs(folder)
    if len(runs) > 1 or seeds is not None:
        _print_seeds(folder, validate_runs(runs), as_json)
        return
    run_dir = runs[0]
    out_ = validate_run(run_dir)
    if as_json:
        console.print_json(json.dumps(out_))
        return
    event = load_targets().event
    c = out_["counts"]
    table = Table(title=f"{run_dir} against the {event.name}: {c['pass']} pass, {c['fail']} fail, {c['n/a']} n/a")
    for name, justify in (("target", "left"), ("tolerance", "right"), ("simulated", "right"), ("pass", "center"),
                          ("source", "left")):  # fmt: skip
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    mark = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "n/a": "[yellow]n/a[/]"}
    for t in out_["targets"]:
        simulated = t["simulated_text"]
        if t["detail"] and t["status"] != "n/a":
            simulated += f"\n[dim]{t['detail']}[/]"
        table.add_row(f"{t['title']}\n[dim]real: {t['real_text']}[/]", t["tolerance"]["text"], simulated,
                      mark[t["status"]], t["source_label"])  # fmt: skip
    console.print(table)
    _print_collateral(out_["collateral"], lambda e, k: (_share if k == "book_discount" else _price)(e[k]),
                      lambda e: _count(e["liquidations_caused"]))  # fmt: skip
    console.print(f"wrote {run_dir / 'validation.json'}")


def _price(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4g}"


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _spread(entry: dict[str, Any] | None, fmt: Callable[[float | None], str]) -> str:
    return "n/a" if entry is None else f"{fmt(entry['p5'])} to {fmt(entry['p95'])}"


def _print_collateral(
    entries: list[dict[str, Any]],
    figure: Callable[[dict[str, Any], str], str],
    caused: Callable[[dict[str, Any]], str],
) -> None:
    """The collateral lows shown beside the targets (not judged): the run's own-book and margin-price lows, the
    book's deepest discount to the reference, the liquidations the fall caused, and the real book low."""
    if not entries:
        return
    table = Table(title="collateral lows, shown beside the targets (not judged)")
    for name, justify in (("collateral", "left"), ("book low", "right"), ("margin price low", "right"),
                          ("book below reference", "right"), ("liquidations caused", "right"),
                          ("real book low", "left")):  # fmt: skip
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for e in entries:
        table.add_row(e["title"], figure(e, "book_low"), figure(e, "margin_low"), figure(e, "book_discount"),
                      caused(e), f"{e['real_text']}\n[dim]{e['source_label']}[/]")  # fmt: skip
    console.print(table)


def _run_seeds(scenario: str, seeds: int, scale: float, out: Path | None, workers: int | None) -> Path:
    """Run ``scenario`` on ``seeds`` seeds (each drawing its own crowd unless the scenario fixes it) as a sweep."""
    from perpstress.config.scenario import Scenario
    from perpstress.sweep import plan_sweep, run_sweep
    from perpstress.sweep.grid import Grid
    from perpstress.sweep.plan import PopulationMode

    base = Scenario.load(scenario)
    population: PopulationMode = "shared" if base.population_seed is not None else "per-seed"
    plan = plan_sweep(base, Grid(), seeds, scale=scale, population=population)
    folder = out if out is not None else Path("sweeps") / f"{base.name}-validate-{seeds}"
    result = run_sweep(plan, folder, workers=workers, resume=folder.exists(), report=False)
    if result.missing:
        reasons = "; ".join(sorted({f.reason for f in result.failures})) or "stopped before they ran"
        raise UsageError(f"{result.missing} of {seeds} runs did not finish ({reasons}); the others are in {folder}")
    return folder


def _print_seeds(folder: Path, out: dict[str, Any], as_json: bool) -> None:
    write_text_atomic(folder / "validation_seeds.json", json.dumps(out, indent=2, allow_nan=False) + "\n")
    if as_json:
        console.print_json(json.dumps(out))
        return
    n = len(out["runs"])
    table = Table(title=f"{folder}: {n} runs against the {out['event']}: {out['held']} of {len(out['targets'])} "
                  f"targets hold (pass on at least {out['hold_share']:.0%} of runs)")  # fmt: skip
    for name, justify in (("target", "left"), ("tolerance", "right"), ("passes", "right"),
                          ("simulated p5-p95", "right"), ("holds", "center")):  # fmt: skip
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for t in out["targets"]:
        na = f", {t['na']} n/a" if t["na"] else ""
        table.add_row(f"{t['title']}\n[dim]real: {t['real_text']}[/]", t["tolerance_text"],
                      f"{t['passes']} of {t['runs']}{na}", t["p5_p95_text"],
                      "[green]holds[/]" if t["holds"] else "[red]no[/]")  # fmt: skip
    console.print(table)
    _print_collateral(out["collateral"], lambda e, k: _spread(e[k], _share if k == "book_discount" else _price),
                      lambda e: _spread(e["liquidations_caused"], _count))  # fmt: skip
    console.print(f"wrote validation.json in each run and {folder / 'validation_seeds.json'}", markup=False)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
