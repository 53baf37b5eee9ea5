"""``perpstress positions check``: validate a positions snapshot against a scenario and summarise it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perpstress.cli.app import app, console
from perpstress.config.scenario import Scenario
from perpstress.population.positions_file import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, load_positions

positions_app = typer.Typer(
    name="positions",
    help="Positions snapshots (bring your own positions): check one against a scenario.",
    no_args_is_help=True,
)
app.add_typer(positions_app)


@positions_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="positions snapshot, .csv or .parquet")],
    scenario: Annotated[str, typer.Option(help="scenario file or built-in scenario name the positions are for")],
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
) -> None:
    """Validate a positions snapshot: every bad row is listed by line and field and the file is refused.

    Columns: [bold]venue, account, market, side, size, entry_price, margin_mode, collateral[/bold] and optional
    [bold]collateral_asset[/bold]. See docs/howto/bring-your-own-positions.md.
    """
    sc = Scenario.load(scenario)
    snap = load_positions(file, sc)
    s = snap.summary()
    if as_json:
        console.print_json(json.dumps(s))
        return
    console.print(f"{file}: {s['positions']:,} positions of {s['accounts']:,} accounts, valid for {sc.name}",
                  markup=False, soft_wrap=True)  # fmt: skip
    table = Table()
    for name in ("venue / market", "accounts", "positions", "notional at entry (USD)", "long share"):
        table.add_column(name, justify="left" if name == "venue / market" else "right")
    for venue, v in s["by_venue"].items():
        table.add_row(f"[bold]{venue}[/bold]", f"{v['accounts']:,}", f"{v['positions']:,}", f"{v['notional_usd']:,.0f}",
                      f"{v['long_share']:.1%}")  # fmt: skip
        for key, m in s["by_market"].items():
            if key.split(":", 1)[0] == venue:
                table.add_row(f"  {key}", f"{m['accounts']:,}", f"{m['positions']:,}", f"{m['notional_usd']:,.0f}",
                              f"{m['long_share']:.1%}")  # fmt: skip
    table.add_row("[bold]all[/bold]", f"{s['accounts']:,}", f"{s['positions']:,}", f"{s['notional_usd']:,.0f}",
                  f"{s['long_share']:.1%}", end_section=True)  # fmt: skip
    console.print(table)
    console.print(f"[green]ok[/] {s['isolated_positions']:,} isolated, {s['positions'] - s['isolated_positions']:,} "
                  "cross positions")  # fmt: skip


__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "check", "positions_app"]
