"""Reading run directories: find them under a folder, read their summaries, list their Parquet tables.

A run directory is a folder holding ``summary.json`` (``perpstress run`` writes it with ``scenario.toml``,
``timeseries.parquet`` and ``events/*.parquet``; a sweep run kept as summaries only holds ``summary.json`` alone).
Hidden folders are skipped: an interrupted run leaves only a hidden ``.NAME.partial-PID`` folder, which is never
taken for a run. A table's name is its path in the run without ``.parquet`` (``timeseries``, ``events/adl``);
tables beyond today's (``events/transfers``, ``events/collateral`` ...) are found the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from perpstress.errors import DataError

SUMMARY = "summary.json"
SCENARIO = "scenario.toml"
REQUIRED_FILES = (SUMMARY, SCENARIO, "timeseries.parquet", "events/liquidations.parquet", "events/adl.parquet")
"""What every complete run directory holds (``perpstress run`` writes them all)."""
REQUIRED_SUMMARY_KEYS = ("liquidations", "adl", "insurance_funds", "bad_debt_usd")
"""Sections of ``summary.json`` every engine version writes; readers may rely on them."""


def is_hidden(path: Path) -> bool:
    """A hidden file or folder (``.NAME.partial-PID``, ``.NAME.part``): never part of a finished run."""
    return path.name.startswith(".")


def find_runs(root: Path) -> list[Path]:
    """Every run directory at or under ``root``, sorted by path; hidden folders and run subfolders are not searched."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        if SUMMARY in files:
            found.append(Path(folder))
            dirs.clear()  # a run holds no runs
            continue
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(found)


def read_summary(path: Path) -> dict[str, Any]:
    """``summary.json`` as a dict; a file that is not JSON, not an object or lacks a required section raises
    :class:`DataError` naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError([f"{path}: cannot be read: {exc}"]) from None
    except json.JSONDecodeError as exc:
        raise DataError([f"{path}: not valid JSON: {exc}"]) from None
    if not isinstance(data, dict):
        raise DataError([f"{path}: not a run summary (a JSON object is expected, got {type(data).__name__})"])
    missing = [key for key in REQUIRED_SUMMARY_KEYS if key not in data]
    if missing:
        raise DataError([f"{path}: not a run summary: no {', '.join(missing)}"])
    return data


def parquet_tables(run: Path) -> dict[str, Path]:
    """The run's Parquet tables, ``{"events/adl": PATH, "timeseries": PATH, ...}``, sorted by name."""
    tables: dict[str, Path] = {}
    for path in sorted(run.rglob("*.parquet")):
        relative = path.relative_to(run)
        if any(part.startswith(".") for part in relative.parts):
            continue
        tables[relative.as_posix().removesuffix(".parquet")] = path
    return tables


def missing_files(run: Path) -> list[str]:
    """Which of :data:`REQUIRED_FILES` the run directory lacks."""
    return [name for name in REQUIRED_FILES if not (run / name).is_file()]
