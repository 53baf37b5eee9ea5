"""Read a run directory for validation: every table and summary key beyond the basic ones is optional.

A run directory (``perpstress.outputs.rundir``) holds ``summary.json`` (required here), ``scenario.toml`` (the
resolved scenario: start time, shock, market bases), ``timeseries.parquet`` and ``events/*.parquet``. Tables are read
once, lazily; a missing or unreadable optional table reads as absent, never as an error.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from perpstress.errors import DataError, UsageError

_QUOTE_SUFFIXES = ("-USDT-SWAP", "-USD-SWAP", "-USDT", "-USDC", "-USD", "-PERP", "USDT", "USDC", "USD")


def base_from_symbol(symbol: str) -> str:
    """A perpetual's base asset guessed from its symbol (``BTCUSDT``, ``BTC-USD``, ``BTC``) when the resolved
    scenario is not there to say."""
    for suffix in _QUOTE_SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)]
    return symbol


class RunData:
    """One run directory, read on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise UsageError(f"{self.path}: no such run directory")
        summary = self.path / "summary.json"
        if not summary.is_file():
            raise UsageError(f"{self.path}: not a run directory (no summary.json)")
        try:
            self.summary: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError([f"{summary}: not valid JSON ({exc})"]) from None

    @cached_property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario as a plain table ({} when absent or unreadable)."""
        path = self.path / "scenario.toml"
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return {}

    @cached_property
    def start_ms(self) -> int | None:
        start = self.scenario.get("start")
        if isinstance(start, datetime):
            return int(start.timestamp() * 1000)
        ts = self.timeseries.get("ts_ms")
        return int(ts.min()) if ts is not None and ts.size else None

    @cached_property
    def end_ms(self) -> int | None:
        """The last recorded step's time."""
        ts = self.timeseries.get("ts_ms")
        if ts is not None and ts.size:
            return int(ts.max())
        start, seconds = self.start_ms, self.summary.get("simulated_seconds")
        return None if start is None or seconds is None else start + int(seconds * 1000)

    @cached_property
    def shock_ms(self) -> int | None:
        """When the scenario's news hits (``jump_regime`` shocks: start + ``at_s``); None otherwise."""
        shock = self.scenario.get("shock") or {}
        if shock.get("kind") == "jump_regime" and "at_s" in shock and self.start_ms is not None:
            return self.start_ms + int(float(shock["at_s"]) * 1000)
        return None

    @cached_property
    def perpetuals(self) -> list[str]:
        """``venue:SYMBOL`` of every perpetual market (spot markets' symbols hold a ``/``)."""
        keys = list(self.summary.get("open_interest") or self.summary.get("prices") or {})
        if not keys and "market" in self.timeseries:
            keys = sorted(set(self.timeseries["market"].tolist()))
        return [k for k in keys if "/" not in k.split(":", 1)[-1]]

    def base(self, key: str) -> str:
        """The base asset of market ``venue:SYMBOL``, from the resolved scenario when it is there."""
        venue, _, symbol = key.partition(":")
        table = (self.scenario.get("venues") or {}).get(venue) or {}
        for section in ("perpetuals", "spot"):
            market = (table.get(section) or {}).get(symbol)
            if isinstance(market, dict) and "base" in market:
                return str(market["base"]).upper()
        return base_from_symbol(symbol.split("/")[0]).upper()

    @cached_property
    def timeseries(self) -> dict[str, np.ndarray]:
        """``timeseries.parquet`` as columns ({} when absent)."""
        return self._read("timeseries.parquet")

    def series(self, market: str, column: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(ts_ms, values)`` of one market's column, in time order; None when absent."""
        ts = self.timeseries
        if not ts or column not in ts or "market" not in ts:
            return None
        idx = self._market_rows.get(market)
        if idx is None or idx.size == 0:
            return None
        return ts["ts_ms"][idx], ts[column][idx].astype(np.float64)

    @cached_property
    def _market_rows(self) -> dict[str, np.ndarray]:
        markets = self.timeseries["market"]
        names, inverse = np.unique(markets, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(names.size + 1))
        rows = {str(n): order[bounds[i] : bounds[i + 1]] for i, n in enumerate(names)}
        ts = self.timeseries["ts_ms"]
        return {k: v[np.argsort(ts[v], kind="stable")] for k, v in rows.items()}

    def events(self, name: str) -> dict[str, np.ndarray] | None:
        """``events/NAME.parquet`` as columns; None when the run has no such table."""
        cols = self._read(f"events/{name}.parquet")
        return cols or None

    def _read(self, relative: str) -> dict[str, np.ndarray]:
        path = self.path / relative
        if not path.is_file():
            return {}
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception:  # a damaged optional table reads as absent, reported by the targets that need it
            return {}
        return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
