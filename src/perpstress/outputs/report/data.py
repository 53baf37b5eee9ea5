"""Reading a run directory for the report, and the array helpers its charts share (NumPy and pyarrow only).

Tables the cascade engine always writes (``summary.json``, ``timeseries.parquet``) are required; every other
table (``events/liquidations.parquet``, ``events/adl.parquet``, ``events/collateral.parquet``,
``events/hedges.parquet``, ``events/transfers.parquet``, ``liquidations_reported.parquet``) and ``validation.json``
is optional: present, it is used; absent, its section is left out. A run directory written before a column
existed still loads.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from perpstress.errors import DataError, UsageError

OPTIONAL_EVENTS = ("liquidations", "adl", "collateral", "hedges", "transfers")
"""Event tables (``events/NAME.parquet``) the report draws when a run has them."""
REPORTED_TABLE = "liquidations_reported.parquet"


@dataclass(frozen=True)
class RunData:
    """What the report reads from one run directory: the summary, the time series and any event tables."""

    summary: dict[str, Any]
    timeseries: pa.Table
    events: dict[str, pa.Table] = field(default_factory=dict)
    validation: list[dict[str, Any]] | None = None
    path: Path | None = None
    reported: pa.Table | None = None
    """``liquidations_reported.parquet``: true and publicly reported liquidations per venue and minute."""
    collateral_lows: list[dict[str, Any]] = field(default_factory=list)
    """``validation.json``'s collateral lows (shown beside the targets, not judged), as ``validate`` writes them."""

    @property
    def title(self) -> str:
        """``quickstart, seed 7``."""
        return f"{self.summary.get('scenario', 'run')}, seed {self.summary.get('seed', '?')}"

    def event(self, name: str) -> pa.Table | None:
        """The event table ``name`` when the run has it and it has rows, else None."""
        table = self.events.get(name)
        return table if table is not None and table.num_rows > 0 else None


def load_run(path: str | Path) -> RunData:
    """Read a run directory; a missing directory or ``summary.json`` is a :class:`UsageError` naming the path."""
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{root}: no such run directory")
    summary_path = root / "summary.json"
    ts_path = root / "timeseries.parquet"
    for p in (summary_path, ts_path):
        if not p.is_file():
            raise UsageError(f"{root}: not a run directory (no {p.name}); run `perpstress run SCENARIO --out DIR`")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError([f"{summary_path}: not valid JSON ({exc})"]) from exc
    events = {}
    for name in OPTIONAL_EVENTS:
        p = root / "events" / f"{name}.parquet"
        if p.is_file():
            events[name] = pq.read_table(p)
    reported_path = root / REPORTED_TABLE
    reported = pq.read_table(reported_path) if reported_path.is_file() else None
    validation = _load_validation(root / "validation.json")
    lows = _load_collateral_lows(root / "validation.json") if validation is not None else []
    return RunData(summary, pq.read_table(ts_path), events, validation, root, reported, lows)


VALIDATION_STATUSES = ("pass", "fail", "n/a")


def _load_validation(path: Path) -> list[dict[str, Any]] | None:
    """The target rows of ``validation.json`` as ``perpstress validate`` writes it (``{"counts": ..., "targets":
    [...]}``), each with ``title``, ``status`` (pass, fail or n/a), ``simulated_text``, ``real_text``,
    ``tolerance_text``, ``detail``, ``source`` and ``source_label``. Anything else is refused."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError([f"{path}: not valid JSON ({exc})"]) from exc
    rows = data.get("targets") if isinstance(data, Mapping) else None
    wanted = "a validation.json written by perpstress validate (targets, each with a status)"
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) and "status" in r for r in rows):
        raise DataError([f"{path}: expected {wanted}"])
    out = []
    for i, row in enumerate(rows):
        if row["status"] not in VALIDATION_STATUSES:
            raise DataError([f"{path}: targets[{i}].status: {row['status']!r} is not one of pass, fail, n/a"])
        tolerance = row.get("tolerance")
        out.append(
            {
                "id": str(row.get("id", "")),
                "title": str(row.get("title", row.get("id", ""))),
                "status": str(row["status"]),
                "simulated_text": str(row.get("simulated_text", "")),
                "real_text": str(row.get("real_text", "")),
                "tolerance_text": str(tolerance.get("text", "")) if isinstance(tolerance, Mapping) else "",
                "detail": str(row.get("detail", "")),
                "source": str(row.get("source", "")),
                "source_label": str(row.get("source_label", "") or row.get("source", "")),
            }
        )
    return out


def _load_collateral_lows(path: Path) -> list[dict[str, Any]]:
    """The ``collateral`` rows of a ``validation.json`` already read by :func:`_load_validation` (none in a file
    written before they existed); a row that is not a table of figures is refused."""
    rows = json.loads(path.read_text(encoding="utf-8")).get("collateral") or []
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) and "title" in r for r in rows):
        raise DataError([f"{path}: collateral: expected rows with a title, as perpstress validate writes them"])
    return [dict(r) for r in rows]


def validation_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many targets passed, failed and could not be measured (n/a)."""
    return {s: sum(1 for r in rows if r.get("status") == s) for s in VALIDATION_STATUSES}


def unique_in_order(values: pa.ChunkedArray | pa.Array | Sequence[Any]) -> list[Any]:
    """Distinct values in order of first appearance."""
    seq = values.to_pylist() if isinstance(values, pa.ChunkedArray | pa.Array) else list(values)
    return list(dict.fromkeys(seq))


def object_array(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (tuples stay elements, unlike ``np.asarray``)."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def has_column(table: pa.Table, name: str) -> bool:
    return name in table.column_names


def column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 (nulls as NaN)."""
    return np.asarray(pc.cast(table[name], pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def markets(timeseries: pa.Table) -> list[str]:
    """Market keys (``venue:SYMBOL``) in the order the time series lists them."""
    return [str(m) for m in unique_in_order(timeseries["market"])]


def venue_of(timeseries: pa.Table) -> dict[str, str]:
    """Market key -> venue name."""
    return dict(zip(timeseries["market"].to_pylist(), timeseries["venue"].to_pylist(), strict=True))


def venues(timeseries: pa.Table) -> list[str]:
    return [str(v) for v in unique_in_order(timeseries["venue"])]


def is_spot(market: str) -> bool:
    """Spot markets are keyed ``venue:BASE/QUOTE`` (e.g. ``binance:BTC/USDT``); perpetuals have no slash."""
    return "/" in market.split(":", 1)[-1]


def rows_where(table: pa.Table, name: str, value: Any) -> pa.Table:
    return table.filter(pc.equal(table[name], pa.scalar(value, type=table.schema.field(name).type)))


def series(timeseries: pa.Table, market: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One market's column over time: (time in ms since the epoch as float64, values as float64)."""
    rows = rows_where(timeseries, "market", market)
    return column(rows, "ts_ms"), column(rows, name)


def fund_series(timeseries: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Insurance fund balance (USD) over time per venue, from the venue's first market (every market repeats it)."""
    out = {}
    first: dict[str, str] = {}
    for m, v in venue_of(timeseries).items():
        first.setdefault(v, m)
    for v, m in first.items():
        out[v] = series(timeseries, m, "insurance_fund_usd")
    return out


def downsample_index(y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points that keep every bucket's minimum and maximum, in time order.

    The series is cut into ``max_points // 2`` equal-count buckets; each contributes its lowest and highest point
    (so wicks survive). A bucket that is all NaN contributes its first point (a gap stays a gap).
    """
    n = len(y)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        if np.all(np.isnan(seg)):
            keep.append(int(lo))
            continue
        i_min = int(lo + np.nanargmin(seg))
        i_max = int(lo + np.nanargmax(seg))
        keep.extend(sorted({i_min, i_max}))
    return np.asarray(keep, dtype=np.int64)


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` thinned to at most ``max_points`` points by :func:`downsample_index`."""
    idx = downsample_index(y, max_points)
    return x[idx], y[idx]


@dataclass(frozen=True)
class Buckets:
    """Sums of an event table's notional per time bucket and key: ``start_ms[i]``, ``notional[key][i]``."""

    start_ms: np.ndarray
    notional: dict[Any, np.ndarray]
    count: dict[Any, np.ndarray]


def bucket_sums(
    ts_ms: np.ndarray, keys: Sequence[Any], values: np.ndarray, bucket_ms: int, origin_ms: int | None = None
) -> Buckets:
    """Sum ``values`` and count rows per ``bucket_ms`` window and key; windows start at ``origin_ms`` (default the
    first event's window on a whole multiple of ``bucket_ms``) and run to the last event, empty ones included."""
    if len(ts_ms) == 0:
        return Buckets(np.zeros(0), {}, {})
    t = np.asarray(ts_ms, dtype=np.int64)
    origin = int(t.min() // bucket_ms * bucket_ms) if origin_ms is None else int(origin_ms)
    idx = (t - origin) // bucket_ms
    n = int(idx.max()) + 1
    order = unique_in_order(keys)
    code_of = {k: i for i, k in enumerate(order)}
    codes = np.fromiter((code_of[k] for k in keys), dtype=np.int64, count=len(keys))
    notional: dict[Any, np.ndarray] = {}
    count: dict[Any, np.ndarray] = {}
    for code, key in enumerate(order):
        mask = codes == code
        notional[key] = np.bincount(idx[mask], weights=values[mask], minlength=n)
        count[key] = np.bincount(idx[mask], minlength=n).astype(np.float64)
    return Buckets(origin + np.arange(n, dtype=np.float64) * bucket_ms, notional, count)


def bucket_width_ms(span_ms: float, target_buckets: int = 120, choices: Sequence[int] | None = None) -> int:
    """A readable bucket width (1 s ... 1 h) giving about ``target_buckets`` buckets over ``span_ms``."""
    options = choices or (1_000, 5_000, 10_000, 15_000, 30_000, 60_000, 300_000, 900_000, 3_600_000)
    for width in options:
        if span_ms / width <= target_buckets:
            return int(width)
    return int(options[-1])
