"""Layer 7: the ``perpstress`` command line.

Every command turns a :class:`perpstress.errors.PerpstressError` into one line on stderr and exit code 2. An
unexpected exception (a bug) prints one line asking for a report; ``PERPSTRESS_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from perpstress.cli import (
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


def main() -> None:
    """Entry point of the ``perpstress`` script."""
    try:
        app(standalone_mode=True, prog_name="perpstress")
    except (ConfigError, DataError) as exc:  # one line per problem
        for line in exc.problems:
            err_console.print(f"error: {line}", markup=False, highlight=False)
        sys.exit(2)
    except PerpstressError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
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
