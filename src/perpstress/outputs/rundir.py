"""Run directories, written atomically: a directory that exists under its final name is complete.

Everything is written into a hidden sibling (``.NAME.partial-<pid>``) and renamed into place at the end. An
interrupted run (an exception, Ctrl-C) removes its partial directory; a killed one leaves only the hidden
``.partial`` directory, which no reader takes for a run. ``--overwrite`` renames the old run aside (``.NAME.old-<pid>``)
before the new one is renamed in, and replaces only run directories. Layout::

    RUN/
      scenario.toml          the resolved scenario, seed included
      summary.json           headline numbers
      timeseries.parquet     per market and step
      liquidations_reported.parquet  per venue and minute: true vs publicly reported liquidations
      events/liquidations.parquet, events/adl.parquet, events/trades.parquet, ...
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from perpstress.errors import UsageError

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}
"""Parquet settings: zstd, no timestamps in metadata, so equal tables give equal bytes."""


class RunWriter:
    """Writes the files of one run into its partial directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def text(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def json(self, relative: str, data: Mapping[str, Any]) -> None:
        self.text(relative, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")

    def table(self, relative: str, table: pa.Table) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, **PARQUET_OPTIONS)


RUN_MARKERS = ("summary.json", "scenario.toml")
"""Files that make a directory a run directory (``--overwrite`` replaces only those, or an empty directory)."""


def check_target(target: str | Path, overwrite: bool = False, markers: tuple[str, ...] = RUN_MARKERS) -> Path:
    """``target`` if a run may be written there (checked before a run starts, so a refusal costs nothing): it must
    not exist, or, with ``overwrite``, be a run directory (holding one of ``markers``) or empty; never a file."""
    final = Path(target)
    if final.is_file() or (final.exists() and not final.is_dir()):
        raise UsageError(f"{final} is a file, not a run directory; choose another --out")
    if final.exists():
        if not overwrite:
            raise UsageError(f"{final} already exists; choose another --out or pass --overwrite")
        if any(final.iterdir()) and not any((final / m).is_file() for m in markers):
            raise UsageError(
                f"{final} is not a run directory (no {' or '.join(markers)}); --overwrite replaces only runs"
            )
    return final


@contextmanager
def run_directory(target: str | Path, overwrite: bool = False,
                  markers: tuple[str, ...] = RUN_MARKERS) -> Iterator[RunWriter]:  # fmt: skip
    """Yield a :class:`RunWriter`; on normal exit the directory appears at ``target`` in one rename. An old run
    being replaced is renamed aside first and removed after, so a kill at any moment leaves either run whole.
    ``markers``: the files that make an existing directory one ``overwrite`` may replace."""
    final = check_target(target, overwrite, markers)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    try:
        yield RunWriter(partial)
        check_target(final, overwrite, markers)  # nothing appeared there meanwhile that must not be replaced
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        try:
            os.replace(partial, final)
        except BaseException:
            if old.exists() and not final.exists():
                os.replace(old, final)  # put the old run back
            raise
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
