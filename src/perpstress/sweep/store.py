"""The sweep directory, written only by the driver and always atomically::

    DIR/
      sweep.json          the plan: base scenario hash, grid, seeds, scale, and every run's key, cell and seed
      runs/<key>/         one run directory per key (as ``perpstress run`` writes it), or only summary.json
      results.parquet     one row per run, rebuilt from the completed runs
      cells.parquet       per grid cell: mean, quantiles and confidence intervals of the policy metrics
      sweep.html          the report

A run directory appears under its key complete or not at all (written into a hidden ``.KEY.partial-PID``
sibling and renamed); with ``--summaries-only`` its one file, ``summary.json``, is written by an atomic rename. So
whatever kills the driver or a worker, every ``runs/<key>`` present is a finished run, and ``--resume`` skips
exactly those. Hidden partial directories a killed driver left behind are removed when a sweep starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from perpstress.errors import UsageError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.outputs.rundir import run_directory
from perpstress.sweep.worker import RunOutcome

MANIFEST = "sweep.json"
SUMMARY = "summary.json"
FULL_MARKER = "timeseries.parquet"
"""A run directory holding this file was written in full (not summaries only)."""


def summary_json(summary: dict[str, Any]) -> str:
    """``summary.json`` text, formatted as ``perpstress run`` writes it."""
    return json.dumps(summary, indent=2, sort_keys=False, allow_nan=False) + "\n"


class SweepStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    def prepare(self, manifest: dict[str, Any], resume: bool) -> None:
        """Create (or, with ``resume``, reopen) the directory and write the plan."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"{self.root} is a file; --out needs a directory")
        if not resume and self.root.exists() and any(self.root.iterdir()):
            raise UsageError(
                f"{self.root} is not empty; pass --resume to continue the sweep there, or choose another --out"
            )
        self.runs.mkdir(parents=True, exist_ok=True)
        for stale in self.runs.glob(".*.partial-*"):  # what a killed driver left mid-rename
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        for stale in self.runs.glob("*/.*.part"):
            stale.unlink(missing_ok=True)
        write_text_atomic(self.root / MANIFEST, json.dumps(manifest, indent=1) + "\n")

    def run_dir(self, key: str) -> Path:
        return self.runs / key

    def is_complete(self, key: str, summaries_only: bool) -> bool:
        """The run's output is there: its summary, and its whole directory unless the sweep keeps summaries only."""
        d = self.run_dir(key)
        return (d / SUMMARY).is_file() and (summaries_only or (d / FULL_MARKER).is_file())

    def write(self, outcome: RunOutcome, summaries_only: bool) -> None:
        """Store one finished run atomically (replacing a summaries-only directory by a full one if need be)."""
        target = self.run_dir(outcome.key)
        if summaries_only:
            write_text_atomic(target / SUMMARY, summary_json(outcome.summary))
            return
        with run_directory(target, overwrite=True) as w:
            for relative, data in outcome.files.items():
                path = w.root / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            if SUMMARY not in outcome.files:
                (w.root / SUMMARY).write_text(summary_json(outcome.summary), encoding="utf-8")

    def read_summary(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.run_dir(key) / SUMMARY).read_text(encoding="utf-8"))
        return data
