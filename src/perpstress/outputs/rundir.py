"""Run directories, written atomically: a directory that exists under its final name is complete.

Everything is written into a hidden sibling (``.NAME.partial-<pid>``) and renamed into place at the end. An
interrupted run (an exception, Ctrl-C) removes its partial directory; a killed one leaves only the hidden
``.partial`` directory, which no reader takes for a run. Layout::

    RUN/
      scenario.toml          the resolved scenario, seed included
      summary.json           headline numbers
      timeseries.parquet     per market and step
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


@contextmanager
def run_directory(target: str | Path, overwrite: bool = False) -> Iterator[RunWriter]:
    """Yield a :class:`RunWriter`; on normal exit the directory appears at ``target`` in one rename."""
    final = Path(target)
    if final.exists() and not overwrite:
        raise UsageError(f"{final} already exists; choose another --out or pass --overwrite")
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    try:
        yield RunWriter(partial)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
