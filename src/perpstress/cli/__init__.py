"""Layer 7: the ``perpstress`` command line.

Every command turns a :class:`perpstress.errors.PerpstressError` into one line on stderr and exit code 2. An
unexpected exception (a bug) prints one line asking for a report; ``PERPSTRESS_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from perpstress.cli import (
    attribute_command,
    compare_command,
    config_commands,
    map_command,
    margin_command,
    positions_command,
    query_command,
    report_command,
    run_command,
    sweep_command,
    validate_command,
)
from perpstress.cli.app import app, err_console
from perpstress.errors import ConfigError, DataError, PerpstressError

__all__ = [
    "app",
    "attribute_command",
    "compare_command",
    "config_commands",
    "main",
    "map_command",
    "margin_command",
    "positions_command",
    "query_command",
    "report_command",
    "run_command",
    "sweep_command",
    "validate_command",
]


MAX_PROBLEMS = 20
"""Problems printed for one bad input; the rest are counted."""
MAX_LINE = 500
"""Characters printed of one problem."""


def _capped(line: str) -> str:
    line = " ".join(line.split("\n")) if "\n" in line else line
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def main() -> None:
    """Entry point of the ``perpstress`` script."""
    try:
        app(standalone_mode=True, prog_name="perpstress")
    except (ConfigError, DataError) as exc:  # one line per problem, the first MAX_PROBLEMS of them
        for line in exc.problems[:MAX_PROBLEMS]:
            err_console.print(f"error: {_capped(line)}", markup=False, highlight=False)
        if len(exc.problems) > MAX_PROBLEMS:
            more = len(exc.problems) - MAX_PROBLEMS
            err_console.print(f"error: ... and {more:,} more problems", markup=False, highlight=False)
        sys.exit(2)
    except PerpstressError as exc:
        err_console.print(f"error: {_capped(str(exc))}", markup=False, highlight=False)
        sys.exit(2)
    except typer.Exit:
        raise
    except Exception as exc:  # a bug, not bad input
        if os.environ.get("PERPSTRESS_DEBUG"):
            raise
        err_console.print(
            f"internal error: {type(exc).__name__}: {exc} (a bug in perpstress; rerun with PERPSTRESS_DEBUG=1 "
            "for the traceback and please report it)",
            markup=False,
            highlight=False,
        )
        sys.exit(1)
