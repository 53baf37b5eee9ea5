"""The HTML report of a run (``perpstress report``) and the comparison of two runs (``perpstress compare``).

Each is one self-contained HTML file: plotly.js is embedded once, inline, so the page opens offline and makes no
network request. Sections whose data a run lacks (collateral, hedges, transfers, validation) are left out.

Plotly is the ``report`` extra. Importing this package does not import Plotly; :func:`write_report` and
:func:`write_compare` check for it first and raise a one-line :class:`~perpstress.errors.PerpstressError` naming
the extra when it is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from perpstress.errors import MissingExtraError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.outputs.paired import RunSet
from perpstress.outputs.report.data import RunData, load_run

if TYPE_CHECKING:
    from perpstress.studies.attribution import AttributionResult

__all__ = [
    "RunData",
    "build_compare",
    "build_report",
    "load_run",
    "require_plotly",
    "write_attribution",
    "write_compare",
    "write_paired_compare",
    "write_report",
]

REPORT_NAME = "report.html"


def require_plotly() -> None:
    """Raise a one-line error naming the ``report`` extra when Plotly is not installed."""
    if importlib.util.find_spec("plotly") is None:
        raise MissingExtraError("the HTML report needs Plotly: pip install 'perpstress[report]'")


def build_report(run: RunData) -> str:
    """The report page of one run, as HTML text."""
    require_plotly()
    from perpstress.outputs.report.pages import report_page

    return report_page(run)


def build_compare(run_a: RunData, run_b: RunData) -> str:
    """The comparison page of two runs (A solid, B dashed), as HTML text."""
    require_plotly()
    from perpstress.outputs.report.pages import compare_page

    return compare_page(run_a, run_b)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) atomically and return its path."""
    require_plotly()
    run = load_run(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    write_text_atomic(target, build_report(run))
    return target


def write_compare(run_a: str | Path, run_b: str | Path, out: str | Path = "compare.html") -> Path:
    """Write the comparison page of two run directories to ``out`` atomically and return its path."""
    require_plotly()
    target = Path(out)
    write_text_atomic(target, build_compare(load_run(run_a), load_run(run_b)))
    return target


def write_attribution(result: AttributionResult, out: str | Path) -> Path:
    """Write the attribution page of ``result`` (``perpstress attribute``) to ``out`` atomically."""
    require_plotly()
    from perpstress.outputs.report.attribution import attribution_page

    target = Path(out)
    write_text_atomic(target, attribution_page(result))
    return target


def write_paired_compare(a: RunSet, b: RunSet, out: str | Path = "compare.html") -> Path:
    """Write the comparison page of two sets of runs paired by seed to ``out`` atomically and return its path."""
    require_plotly()
    from perpstress.outputs.report.pages import paired_compare_page

    target = Path(out)
    write_text_atomic(target, paired_compare_page(a, b))
    return target
