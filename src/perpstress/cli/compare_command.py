"""``perpstress compare``: two runs' headline numbers side by side, and an HTML page with their charts overlaid; or
two sets of runs paired by seed, with each headline number's mean difference and its interval."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from perpstress.cli.app import app, console
from perpstress.outputs.headline import compare_headlines, headline_numbers
from perpstress.outputs.paired import RunSet, paired_headlines, resolve_runs, seeds_note

_VERDICT_STYLE = {"good": "green", "bad": "red", "neutral": ""}


def default_page(run_a: Path, run_b: Path) -> Path:
    """``compare-A-vs-B.html`` in the folder that holds both runs (their common parent), not wherever the command
    happens to run."""
    a, b = run_a.resolve(), run_b.resolve()
    common = Path(os.path.commonpath([a.parent, b.parent]))
    return common / f"compare-{a.name}-vs-{b.name}.html"


def paired_page(a: RunSet, b: RunSet) -> Path:
    """``compare-A-vs-B.html`` in the folder that holds every run of both sides (a sweep's own folder for its
    cells), named after the two sides."""
    parents = [p.resolve().parent for side in (a, b) for p in side.runs.values()]
    common = Path(os.path.commonpath(parents))
    if common.name == "runs" and (common.parent / "sweep.json").is_file():
        common = common.parent
    return common / f"compare-{a.name}-vs-{b.name}.html"


@app.command("compare")
def compare(
    side_a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help="run directory A (drawn solid); or several runs: a folder of runs, a quoted glob, SWEEP@CELL",
        ),
    ],
    side_b: Annotated[
        str, typer.Argument(metavar="B", help="run directory B (drawn dashed), or several runs as for A")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="HTML page to write \\[default: compare-A-vs-B.html beside the two runs]"),
    ] = None,
    html: Annotated[bool, typer.Option(help="also write the HTML page (needs the report extra)")] = True,
) -> None:
    """Compare two runs, e.g. two ADL rules or fund sizes: a table here and an HTML page with charts overlaid.

    Runs of different scenarios compare too: markets both have are overlaid, the others are listed.

    With several runs per side (a folder of run directories, a quoted glob such as 'runs/queue-*', or a sweep cell
    as SWEEP_DIR@CELL), runs are paired by the seed in their summary.json: per headline number, the mean of B minus
    A over the seeds both sides have, its paired 95 % interval and the unpaired interval of the difference of means.
    """
    a_set, b_set = resolve_runs(side_a), resolve_runs(side_b)
    if len(a_set.runs) == 1 and len(b_set.runs) == 1:
        _compare_two(next(iter(a_set.runs.values())), next(iter(b_set.runs.values())), out, html)
    else:
        _compare_paired(a_set, b_set, out, html)


def _compare_two(run_a: Path, run_b: Path, out: Path | None, html: bool) -> None:
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


def _compare_paired(a: RunSet, b: RunSet, out: Path | None, html: bool) -> None:
    from perpstress.errors import UsageError

    if not a.runs.keys() & b.runs.keys():
        raise UsageError(
            f"{a.spec} and {b.spec}: no seed in common ({len(a.runs)} and {len(b.runs)} runs), so nothing to pair; "
            "run both sides on the same seeds"
        )
    rows = paired_headlines(a, b)
    table = Table(title=f"A: {a.spec} ({len(a.runs)} runs)  vs  B: {b.spec} ({len(b.runs)} runs), paired by seed")
    for name in ("", "A mean", "B mean", "B - A", "paired 95% CI", "unpaired 95% CI"):
        table.add_column(name, justify="left" if not name else "right", style="bold" if not name else None)
    for r in rows:
        style = _VERDICT_STYLE[r.verdict]
        table.add_row(Text(r.label), Text(r.text_a), Text(r.text_b), Text(r.change, style=style), Text(r.paired),
                      Text(r.unpaired))  # fmt: skip
    console.print(table)
    console.print(seeds_note(a, b), markup=False, highlight=False)
    if html:
        from perpstress.outputs.report import write_paired_compare

        path = write_paired_compare(a, b, out or paired_page(a, b))
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
