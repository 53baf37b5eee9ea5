"""``perpstress run``: simulate a scenario and write its run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perpstress.cli.app import app, console, err_console
from perpstress.config.scenario import Scenario
from perpstress.errors import ConfigError
from perpstress.outputs.run import run_scenario
from perpstress.outputs.rundir import check_target


@app.command("run")
def run(
    scenario: Annotated[str, typer.Argument(help="scenario file or built-in scenario name (perpstress scenarios)")],
    seed: Annotated[
        int | None, typer.Option(help="seed of the run's random generator \\[default: the scenario's]")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run directory to write \\[default: runs/NAME-seedN]")] = None,
    scale: Annotated[float, typer.Option(help="scale the number of crowd accounts (not their notional)")] = 1.0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    positions: Annotated[
        Path | None, typer.Option(help="positions file (CSV or Parquet) whose rows replace the scenario's crowd")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="also write RUN_DIR/report.html (needs the report extra)")
    ] = False,
    profile: Annotated[
        bool, typer.Option("--profile", help="after the run, print the wall-clock time of each phase of a step")
    ] = False,
    check_every_step: Annotated[
        bool,
        typer.Option(
            "--check-every-step",
            help="recount money, open interest and collateral units every step, not every "
            "engine.invariant_interval_s (slow: O(accounts) a step)",
        ),
    ] = False,
) -> None:
    """Simulate a scenario: prices, market makers, liquidations, insurance funds and ADL, step by step."""
    if report:
        from perpstress.outputs.report import require_plotly

        require_plotly()  # before the run, not after it
    sc = Scenario.load(scenario)
    if seed is not None:
        sc = sc.with_(seed=seed)
    if check_every_step:
        sc = sc.with_(engine__check_every_step=True)
    problems = sc.run_problems(scale)
    if problems:
        raise ConfigError([f"{scenario}: {p}" for p in problems])
    target = check_target(out or Path("runs") / f"{sc.name}-seed{sc.seed}", overwrite)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"{sc.name} (seed {sc.seed})", total=sc.steps)
        result = run_scenario(sc, target, scale=scale, overwrite=overwrite, positions=positions,
                              progress=lambda _: bar.advance(task))  # fmt: skip
    s = result.summary
    table = Table(
        title=f"{sc.name}, seed {sc.seed}: {s['steps']:,} steps in {s['wall_seconds']:.1f} s", show_header=False
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    liq = s["liquidations"]
    table.add_row("liquidated", f"${liq['notional_usd']:,.0f} in {liq['count']:,} liquidations")
    if liq["notional_usd"] > 0:
        table.add_row("  of which longs", f"{liq['long_notional_usd'] / liq['notional_usd']:.0%}")
    table.add_row("ADL", f"${s['adl']['notional_usd']:,.0f} in {s['adl']['count']:,} fills")
    for venue, f in s["insurance_funds"].items():
        funds = f"{dollars(f['start_usd'])} -> {dollars(f['end_usd'])} (min {dollars(f['min_usd'])})"
        table.add_row(f"fund {venue}", funds)
    table.add_row("bad debt", f"${s['bad_debt_usd']:,.0f}")
    worst = min(s["prices"].items(), key=lambda kv: kv[1]["max_drawdown"])
    table.add_row("worst drawdown", f"{worst[0]} {worst[1]['max_drawdown']:.1%}")
    for key, c in s.get("collateral", {}).items():
        table.add_row(f"collateral {key}", f"min {c['min_price']:.4g} ({c['method']}), {c['liquidations_caused']:,} "
                      "liquidations caused")  # fmt: skip
    hedges = s.get("hedges", {})
    if hedges.get("accounts"):
        table.add_row("hedged owners broken", f"{hedges['broken']:,} of {hedges['accounts']:,} "
                      f"(${hedges['broken_notional_usd']:,.0f} unhedged)")  # fmt: skip
    transfers = s.get("transfers", {})
    if transfers.get("count"):
        table.add_row("transfers", f"{transfers['count']:,}, {transfers['delayed_count']:,} delayed, "
                      f"longest {transfers['max_delay_s']:,.0f} s")  # fmt: skip
    flow = s.get("flow")
    if flow is not None:
        opened = sum(flow["opened"].values())
        closed = f"{flow['closed']:,} closed after their holding time, " if flow["closed"] else ""
        row = (f"{opened:,} opened (${sum(flow['opened_usd'].values()):,.0f}), {flow['covered']:,} covered, "
               f"{closed}{flow['liquidated_accounts']:,} liquidated")  # fmt: skip
        table.add_row("crowd flow", row)
        if flow["pool_full"]:
            table.add_row(
                "  pool used up", f"[red]{flow['pool_full']:,} orders dropped[/red] (raise flow.markets.*.accounts)"
            )
    mh = s.get("maker_hedges")
    if mh is not None:
        table.add_row("maker hedges", f"largest ${mh['max_hedge_usd']:,.0f}, {mh['forced_closes']:,} forced closes, "
                      f"unhedged up to ${mh['max_unhedged_usd']:,.0f}")  # fmt: skip
    calls = s["topups"].get("margin_calls")
    if calls is not None:
        table.add_row("margin calls", f"{calls:,}, {s['topups']['margin_calls_never_answered']:,} never answered")
    inv = s["invariants"]
    table.add_row("money conservation error", f"${inv['money_conservation_max_abs_error_usd']:.2e}")
    table.add_row("open interest imbalance", f"{inv['open_interest_max_imbalance']} lots")
    console.print(table)
    if profile:
        console.print(timing_table(s["timing"]))
    console.print(f"wrote {result.path}")
    if report and result.path is not None:
        from perpstress.outputs.report import write_report

        page = write_report(result.path)
        console.print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB)")


def dollars(value: float) -> str:
    """``$1,234``, ``-$7,970,788``: whole US dollars, the sign before the dollar."""
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def timing_table(timing: dict[str, Any]) -> Table:
    """``summary.json``'s ``timing`` as a table: per phase, in step order, its seconds, its share of the step loop's
    total and milliseconds per step; a phase's sections (the cascade within liquidation) indented under it."""
    total, steps = float(timing["total_seconds"]), max(int(timing["steps"]), 1)
    table = Table(title=f"wall-clock time per phase, {timing['steps']:,} steps")
    table.add_column("phase")
    for name in ("seconds", "share", "ms per step"):
        table.add_column(name, justify="right")

    def row(label: str, seconds: float) -> None:
        share = f"{seconds / total:.1%}" if total > 0 else "-"
        table.add_row(label, f"{seconds:,.3f}", share, f"{1000 * seconds / steps:,.3f}")

    for phase, seconds in timing["phases"].items():
        row(phase, seconds)
        for section, within in timing["sections"].get(phase, {}).items():
            row(f"  {section}", within)
    other = total - sum(timing["phases"].values())
    row("outside phases", max(other, 0.0))  # the loop itself and the progress bar
    table.add_section()
    row("step total", total)
    return table
