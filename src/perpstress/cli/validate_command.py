"""``perpstress validate``: compare a run with the real October 10-11, 2025 crash, target by target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perpstress.cli.app import app, console
from perpstress.validation.targets import load_targets, validate_run


@app.command("validate")
def validate(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (perpstress run ... --out RUN_DIR)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as one JSON object")] = False,
) -> None:
    """Compare a run with the October 2025 crash: each target's tolerance, the simulated figure, pass or fail, and
    the source of the real figure. Also writes RUN_DIR/validation.json.

    Targets and tolerances are fixed in perpstress/validation/oct2025_targets.toml (docs/validation.md). A target
    the run cannot measure (no ETH market, no USDe collateral, a run too short) is n/a with the reason, never a pass.
    """
    out = validate_run(run_dir)
    if as_json:
        console.print_json(json.dumps(out))
        return
    event = load_targets().event
    c = out["counts"]
    table = Table(title=f"{run_dir} against the {event.name}: {c['pass']} pass, {c['fail']} fail, {c['n/a']} n/a")
    for name, justify in (("target", "left"), ("tolerance", "right"), ("simulated", "right"), ("pass", "center"),
                          ("source", "left")):  # fmt: skip
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    mark = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "n/a": "[yellow]n/a[/]"}
    for t in out["targets"]:
        simulated = t["simulated_text"]
        if t["detail"] and t["status"] != "n/a":
            simulated += f"\n[dim]{t['detail']}[/]"
        table.add_row(f"{t['title']}\n[dim]real: {t['real_text']}[/]", t["tolerance"]["text"], simulated,
                      mark[t["status"]], t["source_label"])  # fmt: skip
    console.print(table)
    console.print(f"wrote {run_dir / 'validation.json'}")
