"""SQL over many runs: DuckDB views over every run directory found under a folder.

:func:`connect` finds the run directories at or under ``DIR`` (a run directory holds ``summary.json``; hidden
folders, such as the ``.NAME.partial-PID`` an interrupted run leaves, are skipped) and creates, in an in-memory
DuckDB database:

- ``runs``: one row per run: ``run_id`` (the run's path relative to ``DIR``; the folder's name when ``DIR`` is
  itself a run), ``run_name`` (the folder's name: a sweep's ``run_key``), ``scenario``, ``seed``,
  ``config_hash``, ``steps``, ``simulated_seconds``, the headline numbers of
  :func:`perpstress.outputs.headline_row.headline` as columns, ``path`` (absolute) and ``summary`` (the whole
  ``summary.json`` as DuckDB ``JSON``: ``summary->>'$.stops.count'``).
- one view per Parquet table found in any run, named by the file's stem (``liquidations``, ``adl``,
  ``timeseries``, ``trades``, ``transfers`` ...; the whole path with ``_`` for ``/`` when two stems clash): the
  rows of every run that has the table, with the run's ``run_id`` first. Columns are unioned by name, so runs of
  different perpstress versions mix (a column a run lacks is NULL there). Each view is one ``read_parquet`` over
  the list of files, read when a query runs; nothing is copied.
- one view per Parquet file at the top of ``DIR`` when ``DIR`` is not itself a run (a sweep's ``results.parquet``
  becomes ``results``, its ``cells.parquet`` ``cells``).

DuckDB comes with the ``query`` extra; :func:`query` returns a pandas frame (the ``frames`` extra).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perpstress.errors import DataError, UsageError
from perpstress.extras import require
from perpstress.outputs.headline_row import headline
from perpstress.outputs.runs import find_runs, is_hidden, parquet_tables, read_summary

RUNS_VIEW = "runs"
_FILE_COLUMN = "_perpstress_file"
"""Name of read_parquet's file-name column while a view computes ``run_id`` from it (never shown)."""


@dataclass(frozen=True)
class View:
    """One view of the database: its name, where its rows come from and its columns (name, DuckDB type)."""

    name: str
    source: str
    columns: tuple[tuple[str, str], ...] = ()


@dataclass
class Catalog:
    """What :func:`connect` found under ``root``: the runs and the views made over them."""

    root: Path
    runs: list[str] = field(default_factory=list)
    views: list[View] = field(default_factory=list)


def connect(root: str | Path, con: Any = None) -> tuple[Any, Catalog]:
    """A DuckDB connection (``con`` or a new in-memory one) with the views over the runs under ``root``."""
    duckdb = require("duckdb")
    base = Path(root)
    if not base.exists():
        raise UsageError(f"{base}: no such directory")
    if not base.is_dir():
        raise UsageError(f"{base}: not a directory; give the folder that holds the run directories")
    base = base.resolve()
    runs = find_runs(base)
    if not runs:
        raise UsageError(f"{Path(root)}: no run directories under it (a run directory holds summary.json)")
    is_run = runs == [base]
    parent = base.parent if is_run else base
    run_ids = [run.relative_to(parent).as_posix() for run in runs]
    con = con if con is not None else duckdb.connect()
    catalog = Catalog(Path(root), run_ids)  # the folder as the caller named it, for messages
    views: list[tuple[str, str]] = [(RUNS_VIEW, f"summary.json of {len(runs)} runs")]
    _create_runs(con, runs, run_ids)

    per_table: dict[str, list[tuple[str, Path]]] = {}
    for run, run_id in zip(runs, run_ids, strict=True):
        for name, path in parquet_tables(run).items():
            per_table.setdefault(name, []).append((run_id, path))
    names = _view_names(list(per_table), taken={RUNS_VIEW})
    for table, view in names.items():
        files = per_table[table]
        _create_table_view(con, view, table, files, parent)
        views.append((view, f"{table}.parquet in {len(files)} of {len(runs)} runs"))
    if not is_run:
        taken = {v for v, _ in views}
        for path in sorted(p for p in base.glob("*.parquet") if not is_hidden(p)):
            view = _identifier(path.stem)
            while view in taken:
                view += "_file"
            taken.add(view)
            _create_view(con, f"CREATE VIEW {_quote(view)} AS SELECT * FROM read_parquet({_literal(path.as_posix())})")
            views.append((view, path.name))
    for view, source in views:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [view],
        ).fetchall()
        catalog.views.append(View(view, source, tuple((str(c), str(t)) for c, t in columns)))
    return con, catalog


@dataclass(frozen=True)
class Result:
    """The rows of a query, with its column names and DuckDB types."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def fetch(con: Any, sql: str) -> Result | None:
    """Run ``sql`` on ``con`` and fetch every row (None for a statement that returns none); a DuckDB error, at
    planning or while reading, becomes a one-line :class:`UsageError` carrying DuckDB's message."""
    with duckdb_errors():
        relation = _relation(con, sql)
        if relation is None:
            return None
        return Result(list(relation.columns), [str(t) for t in relation.types], relation.fetchall())


def query(root: str | Path, sql: str) -> Any:
    """Run ``sql`` over the runs under ``root`` (views as in this module's docstring); a pandas frame (None for a
    statement that returns no rows)."""
    require("pandas")
    con, _ = connect(root)
    try:
        with duckdb_errors():
            relation = _relation(con, sql)
            return relation.df() if relation is not None else None
    finally:
        con.close()


def _relation(con: Any, sql: str) -> Any:
    if not sql.strip():
        raise UsageError("the SQL query is empty")
    return con.sql(sql)


@contextmanager
def duckdb_errors() -> Iterator[None]:
    """Turn a DuckDB error into a one-line :class:`UsageError` (``query failed: Binder Error: ...``)."""
    duckdb = require("duckdb")
    try:
        yield
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {one_line(str(exc))}") from None


def one_line(message: str) -> str:
    """DuckDB's message on one line: its lines joined, the ``LINE n:`` excerpt and caret marker left out."""
    lines = [ln.strip() for ln in message.splitlines()]
    kept = [ln for ln in lines if ln and not ln.startswith("LINE ") and set(ln) != {"^"}]
    return " ".join(kept)


# --- views ---------------------------------------------------------------------------------------------------


def _create_runs(con: Any, runs: Sequence[Path], run_ids: Sequence[str]) -> None:
    """The ``runs`` table, loaded by DuckDB from newline-delimited JSON with the column types set here."""
    rows: list[dict[str, Any]] = []
    for run, run_id in zip(runs, run_ids, strict=True):
        summary = read_summary(run / "summary.json")
        row: dict[str, Any] = {
            "run_id": run_id,
            "run_name": run.name,
            "scenario": summary.get("scenario"),
            "seed": summary.get("seed"),
            "scale": summary.get("scale"),
            "config_hash": summary.get("config_hash"),
            "steps": summary.get("steps"),
            "simulated_seconds": summary.get("simulated_seconds"),
        }
        row.update(headline(summary))
        row["path"] = run.as_posix()
        row["summary"] = summary
        rows.append(_finite(row))
    names = list(dict.fromkeys(name for row in rows for name in row))
    names = [n for n in names if n not in ("path", "summary")] + ["path", "summary"]
    types = {name: _sql_type([row.get(name) for row in rows]) for name in names}
    types["summary"] = "JSON"
    spec = "{" + ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in types.items()) + "}"
    with tempfile.TemporaryDirectory(prefix="perpstress-query-") as tmp:
        path = Path(tmp) / "runs.ndjson"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        con.execute(
            f"CREATE TABLE {RUNS_VIEW} AS SELECT * FROM read_json({_literal(path.as_posix())}, "
            f"format = 'newline_delimited', columns = {spec})"
        )


def _sql_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "BIGINT"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "DOUBLE"
    if present and all(isinstance(v, bool) for v in present):
        return "BOOLEAN"
    return "VARCHAR"


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no spelling for them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _create_table_view(con: Any, view: str, table: str, files: Sequence[tuple[str, Path]], parent: Path) -> None:
    """``SELECT run_id, * FROM read_parquet([...])``, ``run_id`` cut out of each row's file name."""
    head = parent.as_posix().rstrip("/") + "/"
    prefix = len(head)
    suffix = len(table) + len(".parquet") + 1  # "/TABLE.parquet"
    paths = ", ".join(_literal(f"{head}{run_id}/{table}.parquet") for run_id, _ in files)
    file = _quote(_FILE_COLUMN)
    _create_view(
        con,
        f"CREATE VIEW {_quote(view)} AS SELECT "
        f"substr({file}, {prefix + 1}, length({file}) - {prefix} - {suffix}) AS run_id, * EXCLUDE ({file}) "
        f"FROM read_parquet([{paths}], union_by_name = true, filename = {_literal(_FILE_COLUMN)})",
    )


def _create_view(con: Any, sql: str) -> None:
    """Create a view; a file DuckDB cannot read (it reads every file's schema here) is a :class:`DataError`."""
    duckdb = require("duckdb")
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise DataError([one_line(str(exc))]) from None


def _view_names(tables: Sequence[str], taken: set[str]) -> dict[str, str]:
    """View name per table: the file's stem, or the whole path joined with ``_`` when stems clash."""
    stems: dict[str, list[str]] = {}
    for table in tables:
        stems.setdefault(_identifier(table.rsplit("/", 1)[-1]), []).append(table)
    out: dict[str, str] = {}
    for table in sorted(tables):
        stem = _identifier(table.rsplit("/", 1)[-1])
        name = stem if len(stems[stem]) == 1 and stem not in taken else _identifier(table.replace("/", "_"))
        while name in taken or name in out.values():
            name += "_table"
        out[table] = name
    return out


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if name and not name[0].isdigit() else f"t_{name}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
