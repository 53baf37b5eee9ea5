"""``perpstress query``: SQL (DuckDB) over every run directory under a folder."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from perpstress.cli.app import app, console
from perpstress.errors import UsageError
from perpstress.outputs.query import Catalog, connect, fetch

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "FLOAT", "DOUBLE", "DECIMAL", "REAL")  # fmt: skip


_MAX_CELL = 80
"""Longest text shown in a cell of the terminal table (a run's summary JSON is thousands of characters)."""


@app.command("query")
def query(
    directory: Annotated[Path, typer.Argument(help="folder searched for run directories (those holding summary.json)")],
    sql: Annotated[
        str | None, typer.Argument(help="SQL over the views runs, liquidations, adl, timeseries, ...")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as a JSON array of objects")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print the rows as CSV with a header line")] = False,
    tables: Annotated[bool, typer.Option("--tables", help="list the views and their columns instead")] = False,
    limit: Annotated[int, typer.Option(help="rows shown in the terminal table (--json and --csv print all)")] = 50,
) -> None:
    """Query many runs at once with DuckDB SQL: [bold]runs[/bold] (one row per run: scenario, seed, config hash,
    headline numbers, summary JSON) and one view per table ([bold]liquidations[/bold], [bold]adl[/bold],
    [bold]timeseries[/bold], ...) holding every run's rows with a [bold]run_id[/bold] column.

    Example: perpstress query runs/ "SELECT venue, sum(notional_usd) FROM adl GROUP BY venue"
    """
    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other; choose one")
    if sql is None and not tables:
        raise UsageError("give a SQL query, or --tables to list the views")
    if limit < 1:
        raise UsageError(f"--limit must be a positive number of rows (got {limit})")
    con, catalog = connect(directory)
    try:
        if tables:
            _print_views(catalog, as_json, as_csv)
            return
        assert sql is not None
        result = fetch(con, sql)
    finally:
        con.close()
    if result is None:
        return
    columns, types, rows = result.columns, result.types, result.rows
    if as_json:
        parse = [t == "JSON" for t in types]  # JSON columns (the runs' summary) nest as objects, not as text
        records = [
            {
                c: json.loads(v) if p and isinstance(v, str) else _plain(v)
                for c, p, v in zip(columns, parse, row, strict=True)
            }
            for row in rows
        ]
        sys.stdout.write(json.dumps(records, indent=2, allow_nan=False) + "\n")
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else _plain(v) for v in row] for row in rows])
    else:
        _print_rows(columns, types, rows, limit, catalog)


def _print_rows(columns: list[str], types: list[str], rows: list[tuple[Any, ...]], limit: int, cat: Catalog) -> None:
    table = Table()
    for name, kind in zip(columns, types, strict=True):
        numeric = kind.upper().startswith(_NUMERIC)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    plain = [_is_identifier(name) for name in columns]
    for row in rows[:limit]:
        table.add_row(*(str(v) if p and isinstance(v, int) else _cell(v) for p, v in zip(plain, row, strict=True)))
    console.print(table)
    runs = f"{len(cat.runs):,} run{'s' if len(cat.runs) != 1 else ''} under {cat.root}"
    more = f", first {limit:,} shown (--limit, or --json / --csv for all)" if len(rows) > limit else ""
    console.print(f"{len(rows):,} row{'s' if len(rows) != 1 else ''} from {runs}{more}", markup=False)


def _print_views(catalog: Catalog, as_json: bool, as_csv: bool) -> None:
    if as_json:
        data = {v.name: {"source": v.source, "columns": dict(v.columns)} for v in catalog.views}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["view", "column", "type", "source"])
        writer.writerows([v.name, c, t, v.source] for v in catalog.views for c, t in v.columns)
        return
    table = Table(title=f"views over {len(catalog.runs):,} runs under {catalog.root}")
    for col in ("view", "from", "columns"):
        table.add_column(col, overflow="fold")
    for v in catalog.views:
        cols = ", ".join(c if v.name == "runs" else f"{c} {t.lower()}" for c, t in v.columns)
        table.add_row(v.name, v.source, cols)
    console.print(table)


IDENTIFIERS = ("seed", "account", "maker", "owner", "transfer", "cell", "ts_ms", "_ms", "_id", "_index")
"""Integer columns that name or time something (a seed, an account, a timestamp): printed without separators."""


def _is_identifier(column: str) -> bool:
    name = column.lower()
    return any(name == key or name.endswith(key) or name.endswith("_" + key) for key in IDENTIFIERS)


def _cell(value: Any) -> str:
    """A value as the terminal table shows it: thousands separators; 2 decimals from 1,000 up; 6 digits below."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | decimal.Decimal):
        x = float(value)
        if not math.isfinite(x):
            return str(x)
        if x.is_integer() and abs(x) < 1e15:
            return f"{x:,.0f}"
        return f"{x:,.2f}" if abs(x) >= 1000 else f"{x:.6g}"
    text = str(_plain(value))
    return text if len(text) <= _MAX_CELL else f"{text[: _MAX_CELL - 1]}… ({len(text):,} characters)"


def _plain(value: Any) -> Any:
    """A DuckDB value as JSON/CSV take it: NaN and infinities as null, decimals as floats, times as ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
