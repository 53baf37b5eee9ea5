"""A builder of synthetic run directories: the files a run writes, with paths and events chosen by the test."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomli_w

START = datetime(2025, 10, 10, 20, 30, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
MIN = 60_000


def write_run(
    root: Path,
    *,
    markets: dict[str, dict[str, Any]],
    duration_s: int = 3 * 3600,
    shock_at_s: float | None = 20 * 60,
    liquidations: list[tuple[int, str, int, float]] = (),  # type: ignore[assignment]
    adl: list[tuple[int, str, float, float]] = (),  # type: ignore[assignment]
    collateral: dict[str, float | dict[str, Any]] | None = None,
    write_events: bool = True,
    adl_pnl: bool = True,
) -> Path:
    """``markets``: ``venue:SYMBOL`` -> {"base": ..., and per-step arrays or callables of the minute offset for
    "mark", "last", "depth", "oi"} (1 s steps). ``liquidations``: (ts offset ms, market, side, USD); ``adl``:
    (ts offset ms, market, notional USD, the winner's PnL USD); ``collateral``: ``ASSET@venue`` -> lowest margin
    price, or the whole summary entry. ``adl_pnl`` False: the ADL table and summary without the winners' PnL (a run
    written before it was)."""
    steps = duration_s
    ts = START_MS + np.arange(steps, dtype=np.int64) * 1000
    minutes = np.arange(steps) / 60.0
    cols: dict[str, list[Any]] = {
        k: [] for k in ("ts_ms", "venue", "market", "mark", "last", "depth_ask_1pct_usd", "open_interest_usd")
    }
    venues: dict[str, dict[str, Any]] = {}
    summary_prices, summary_oi = {}, {}
    for key, spec in markets.items():
        venue, symbol = key.split(":")
        venues.setdefault(venue, {"perpetuals": {}})["perpetuals"][symbol] = {"base": spec["base"]}

        def series(name: str, default: float, spec: dict[str, Any] = spec) -> np.ndarray:
            v = spec.get(name, default)
            return np.asarray(v(minutes) if callable(v) else np.broadcast_to(v, (steps,)), dtype=float)

        mark, last = series("mark", 100.0), series("last", np.nan)
        depth, oi = series("depth", 1e6), series("oi", 1e6)
        cols["ts_ms"].append(ts)
        cols["venue"].append(np.full(steps, venue))
        cols["market"].append(np.full(steps, key))
        cols["mark"].append(mark)
        cols["last"].append(last)
        cols["depth_ask_1pct_usd"].append(depth)
        cols["open_interest_usd"].append(oi)
        peak = np.maximum.accumulate(mark)
        summary_prices[key] = {
            "start": mark[0],
            "min": mark.min(),
            "max": mark.max(),
            "end": mark[-1],
            "max_drawdown": float((mark / peak - 1).min()),
        }
        summary_oi[key] = {"start_usd": float(oi[0]), "end_usd": float(oi[-1])}
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: np.concatenate(v) for k, v in cols.items()}), root / "timeseries.parquet")
    scenario: dict[str, Any] = {"name": "synthetic", "start": START, "duration_s": duration_s, "venues": venues}
    if shock_at_s is not None:
        scenario["shock"] = {"kind": "jump_regime", "at_s": shock_at_s}
    (root / "scenario.toml").write_text(tomli_w.dumps(scenario), encoding="utf-8")
    liq_usd = [x[3] for x in liquidations]
    summary = {
        "scenario": "synthetic",
        "simulated_seconds": duration_s,
        "liquidations": {
            "count": len(liquidations),
            "notional_usd": float(sum(liq_usd)),
            "long_notional_usd": float(sum(x[3] for x in liquidations if x[2] > 0)),
        },
        "adl": {"by_market": {}},
        "open_interest": summary_oi,
        "prices": summary_prices,
        "collateral": {
            k: v if isinstance(v, dict) else {"method": "own_book", "min_price": v}
            for k, v in (collateral or {}).items()
        },
    }
    taken: dict[str, float] = {}
    for _, key, usd, pnl in adl:
        summary["adl"]["by_market"][key] = summary["adl"]["by_market"].get(key, 0.0) + usd
        taken[key] = taken.get(key, 0.0) + max(pnl, 0.0)
    if adl_pnl:
        summary["adl"]["pnl_taken_by_market"] = taken
    (root / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    if write_events:
        (root / "events").mkdir(exist_ok=True)
        pq.write_table(
            pa.table(
                {
                    "ts_ms": pa.array([START_MS + x[0] for x in liquidations], pa.int64()),
                    "market": pa.array([x[1] for x in liquidations], pa.string()),
                    "side": pa.array([x[2] for x in liquidations], pa.int64()),
                    "notional_usd": pa.array(liq_usd, pa.float64()),
                }
            ),
            root / "events" / "liquidations.parquet",
        )
        adl_columns = {
            "ts_ms": pa.array([START_MS + x[0] for x in adl], pa.int64()),
            "venue": pa.array([x[1].split(":")[0] for x in adl], pa.string()),
            "market": pa.array([x[1] for x in adl], pa.string()),
            "notional_usd": pa.array([x[2] for x in adl], pa.float64()),
        }
        if adl_pnl:
            adl_columns["winner_pnl_usd"] = pa.array([x[3] for x in adl], pa.float64())
        pq.write_table(pa.table(adl_columns), root / "events" / "adl.parquet")
    return root


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(**kwargs: Any) -> Path:
        return write_run(tmp_path / f"run{next(counter)}", **kwargs)

    return make
