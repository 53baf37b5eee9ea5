"""The typer application object and the consoles every command prints to."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="perpstress",
    help=(
        "Stress-test crypto derivatives venues: margin, liquidation cascades, insurance funds and "
        "auto-deleveraging, with each venue's published rules."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
_PIPED_WIDTH = 120
"""Width of tables written to a pipe or file (a terminal's own width is used otherwise)."""

console = Console(highlight=False, width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from perpstress import __version__

        console.print(f"perpstress {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Stress-test crypto derivatives venues: margin, liquidation cascades, insurance funds and auto-deleveraging,
    with each venue's published rules."""
