"""Derive the real figures of the October 10, 2025 crash from the public data in ``shared/data``.

``python -m perpstress.validation.derive --data ../shared/data`` prints every figure as JSON; the numbers recorded in
``oct2025_targets.toml`` (``real`` of the targets whose source is a ``shared/data`` file) are its output, and a test
recomputes them when the data is present. The measures are those of :mod:`perpstress.validation.metrics`, the same
functions ``perpstress validate`` applies to a run.

Files and their quirks (``shared/data/README.md``):

- ``binance/BTCUSDT-1m-2025-10-10_2030-2300UTC.csv``: Binance USD-M BTCUSDT 1-minute klines (last-trade prices).
- ``binance/BTCUSDT-5m-markOrIndexPrice_2025-10-01_2025-12-30.csv``: 5-minute mark-price klines.
- ``binance/BTCUSDT-bookDepth-2025-10-10.csv``: depth snapshots every ~30 s; ``percentage = 1`` is the ask side
  within +1 % of the reference price. The bid buckets hold a stale level near 121,363 for much of the evening, so
  only the ask side is used. One timestamp carries a leading space (stripped here).
- ``binance/USDEUSDT-1m-binance-spot_2025-10-09_2025-10-12.csv``: USDe/USDT spot 1-minute bars on Binance.
- ``adl-paper/per_shock_metrics_queue.csv``: Chitra et al.'s per-coin ADL shocks on Hyperliquid (MIT).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from perpstress.validation.metrics import MINUTE_MS, depth_episode, low_time, max_drawdown, share_in, volume_onset

BTC_KLINES = "binance/BTCUSDT-1m-2025-10-10_2030-2300UTC.csv"
BTC_MARK = "binance/BTCUSDT-5m-markOrIndexPrice_2025-10-01_2025-12-30.csv"
BTC_DEPTH = "binance/BTCUSDT-bookDepth-2025-10-10.csv"
USDE_SPOT = "binance/USDEUSDT-1m-binance-spot_2025-10-09_2025-10-12.csv"
ADL_SHOCKS = "adl-paper/per_shock_metrics_queue.csv"

WINDOW = ("2025-10-10T20:30:00Z", "2025-10-10T23:00:00Z")
"""The evening window the 1-minute BTC file covers; the mark-price drawdown is measured over the same window."""
DEFAULT_MAJORS = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE")


def iso_ms(text: str) -> int:
    """``2025-10-10T20:30:00Z`` or ``2025-10-10 20:30:00`` (UTC) as Unix milliseconds."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def btc_last_trade(path: Path) -> dict[str, Any]:
    """Drawdown, low and its time, and the shock's onset (volume spike) from 1-minute klines."""
    rows = _rows(path)
    ts = np.array([int(r["open_time"]) for r in rows], dtype=np.int64)
    high = np.array([float(r["high"]) for r in rows])
    low = np.array([float(r["low"]) for r in rows])
    volume = np.array([float(r["quote_volume"]) for r in rows])
    # a bar's high comes before its low only in a falling bar; interleave high then low (peak first, then trough)
    dd = max_drawdown(np.repeat(ts, 2), np.column_stack([high, low]).reshape(-1))
    lowest, low_ts = low_time(ts, low)
    onset = volume_onset(ts, volume)
    return {
        "source": f"shared/data/{BTC_KLINES}",
        "peak": dd.peak,
        "peak_bar_utc": utc(dd.peak_ts_ms),
        "low": lowest,
        "low_bar_utc": utc(low_ts),
        "drawdown": dd.fraction,
        "shock_onset_utc": utc(onset) if onset is not None else None,
    }


def btc_mark(path: Path, window: tuple[str, str] = WINDOW) -> dict[str, Any]:
    """Mark-price drawdown over ``window`` from 5-minute mark klines (margin and liquidation follow the mark)."""
    lo, hi = iso_ms(window[0]), iso_ms(window[1])
    rows = [r for r in _rows(path) if lo <= int(r["open_time"]) < hi]
    ts = np.array([int(r["open_time"]) for r in rows], dtype=np.int64)
    high = np.array([float(r["high"]) for r in rows])
    low = np.array([float(r["low"]) for r in rows])
    dd = max_drawdown(np.repeat(ts, 2), np.column_stack([high, low]).reshape(-1))
    return {
        "source": f"shared/data/{BTC_MARK}",
        "window_utc": list(window),
        "peak": dd.peak,
        "low": dd.low,
        "low_bar_utc": utc(dd.low_ts_ms),
        "drawdown": dd.fraction,
    }


def ask_depth(path: Path, shock_ts_ms: int) -> dict[str, Any]:
    """BTCUSDT ask depth within +1 %: pre-crash level, trough, collapse and recovery to half the pre-crash level."""
    ts_list, depth_list = [], []
    for r in _rows(path):
        if int(r["percentage"]) == 1:
            ts_list.append(iso_ms(r["timestamp"]))  # strips the stray leading space
            depth_list.append(float(r["notional"]))
    ts = np.array(ts_list, dtype=np.int64)
    depth = np.array(depth_list)
    order = np.argsort(ts, kind="stable")
    ep = depth_episode(ts[order], depth[order], shock_ts_ms)
    late = depth[ts >= iso_ms("2025-10-10T23:30:00Z")]
    return {
        "source": f"shared/data/{BTC_DEPTH}",
        "side": "ask, within +1 % (percentage = 1)",
        "shock_utc": utc(shock_ts_ms),
        "pre_window_minutes": 20,
        "pre_level_usd": ep.pre_level,
        "pre_samples": ep.pre_samples,
        "trough_usd": ep.trough,
        "trough_utc": utc(ep.trough_ts_ms),
        "collapse": ep.collapse,
        "recovery_fraction": ep.recovery_fraction,
        "recovered_utc": utc(ep.recovered_ts_ms) if ep.recovered_ts_ms is not None else None,
        "recovery_minutes": ep.recovery_minutes,
        "level_23_30_to_24_fraction": float(np.median(late)) / ep.pre_level if late.size else None,
    }


def usde(path: Path) -> dict[str, Any]:
    """USDe/USDT's low on Binance spot and when."""
    rows = _rows(path)
    ts = np.array([int(r["open_time_ms"]) for r in rows], dtype=np.int64)
    low = np.array([float(r["low"]) for r in rows])
    lowest, at = low_time(ts, low)
    below = ts[low < 0.97]
    return {
        "source": f"shared/data/{USDE_SPOT}",
        "low": lowest,
        "low_bar_utc": utc(at),
        "first_bar_below_0.97_utc": utc(int(below[0])) if below.size else None,
        "last_bar_below_0.97_utc": utc(int(below[-1])) if below.size else None,
    }


def adl_by_coin(path: Path, majors: Sequence[str] = DEFAULT_MAJORS) -> dict[str, Any]:
    """Where Hyperliquid's ADL fell on Oct 10: shares of the queue policy's ADL budget (the PnL haircut it takes
    from the winners it closes, the measure ``validate`` applies to a run's ADL fills) and of the bad-debt deficits
    in coins other than ``majors``."""
    rows = _rows(path)
    small = np.array([r["coin"] not in set(majors) for r in rows])
    budget = np.array([float(r["budget_queue_usd"]) for r in rows])
    deficit = np.array([float(r["deficit_usd"]) for r in rows])
    return {
        "source": f"shared/data/{ADL_SHOCKS}",
        "majors": list(majors),
        "coins": len({r["coin"] for r in rows}),
        "shocks": len(rows),
        "small_shock_share": float(small.mean()),
        "small_budget_share": share_in(budget, small),
        "small_deficit_share": share_in(deficit, small),
        "budget_usd": float(budget.sum()),
    }


def derive_all(data: Path) -> dict[str, Any]:
    """Every figure, from the files under ``data`` (``shared/data``)."""
    btc = btc_last_trade(data / BTC_KLINES)
    onset = btc["shock_onset_utc"]
    if onset is None:
        raise ValueError(f"{data / BTC_KLINES}: no volume spike found")
    return {
        "btc_last_trade": btc,
        "btc_mark": btc_mark(data / BTC_MARK),
        "btc_ask_depth": ask_depth(data / BTC_DEPTH, iso_ms(onset)),
        "usde_binance_spot": usde(data / USDE_SPOT),
        "hyperliquid_adl": adl_by_coin(data / ADL_SHOCKS),
        "minute_ms": MINUTE_MS,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared/data directory")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data}: no such directory (pass --data DIR)", file=sys.stderr)
        return 2
    print(json.dumps(derive_all(args.data), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
