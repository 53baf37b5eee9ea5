"""``perpstress compare``: two runs' headline numbers side by side, and an HTML page with their charts overlaid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from perpstress.cli.app import app, console
from perpstress.outputs.headline import compare_headlines, headline_numbers

_VERDICT_STYLE = {"good": "green", "bad": "red", "neutral": ""}


def default_page(run_a: Path, run_b: Path) -> Path:
    """``compare-A-vs-B.html`` in the folder that holds both runs (their common parent), not wherever the command
    happens to run."""
    a, b = run_a.resolve(), run_b.resolve()
    common = Path(os.path.commonpath([a.parent, b.parent]))
    return common / f"compare-{a.name}-vs-{b.name}.html"


@app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="run directory A (drawn solid)")],
    run_b: Annotated[Path, typer.Argument(help="run directory B (drawn dashed)")],
    out: Annotated[
        Path | None,
        typer.Option(help="HTML page to write \\[default: compare-A-vs-B.html beside the two runs]"),
    ] = None,
    html: Annotated[bool, typer.Option(help="also write the HTML page (needs the report extra)")] = True,
) -> None:
    """Compare two runs, e.g. two ADL rules or fund sizes: a table here and an HTML page with charts overlaid.

    Runs of different scenarios compare too: markets both have are overlaid, the others are listed.
    """
    from perpstress.outputs.report.data import load_run

    a, b = load_run(run_a), load_run(run_b)
    diffs = compare_headlines(headline_numbers(a.summary, a.validation), headline_numbers(b.summary, b.validation))
    table = Table(title=f"A: {a.title} ({run_a})  vs  B: {b.title} ({run_b})")
    table.add_column("", style="bold")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B - A", justify="right")
    for d in diffs:
        style = _VERDICT_STYLE[d.verdict]
        table.add_row(Text(d.label), Text(d.text_a), Text(d.text_b), Text(d.change, style=style))
    console.print(table)
    if html:
        from perpstress.outputs.report import write_compare

        path = write_compare(run_a, run_b, out or default_page(run_a, run_b))
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
