"""``perpstress report``: the self-contained HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perpstress.cli.app import app, console


@app.command("report")
def report(
    run_dir: Annotated[Path, typer.Argument(help="run directory written by perpstress run")],
    out: Annotated[Path | None, typer.Option(help="write the page here \\[default: RUN_DIR/report.html]")] = None,
) -> None:
    """Write RUN_DIR/report.html: headline numbers, price paths, liquidations, ADL, funds, open interest, depth.

    One self-contained file (Plotly embedded) that opens offline in any browser. Needs the [bold]report[/bold]
    extra: pip install 'perpstress\\[report]'.
    """
    from perpstress.outputs.report import write_report

    path = write_report(run_dir, out)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
