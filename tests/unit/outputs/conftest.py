"""Run directories for the report's tests: a real (small) quickstart run and synthetic ones built here.

The synthetic builder writes every table a run directory can hold (``events/collateral.parquet``,
``events/hedges.parquet``, ``events/transfers.parquet``) with the column names the report reads, and its
``validation.json`` by running the real validation over them, so a change of that format breaks these tests.
``validated_quickstart_run`` is a real engine run with ``perpstress validate``'s file beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perpstress.validation.targets import validate_run

T0_MS = 1_760_130_000_000  # 2025-10-10 21:00:00 UTC

MakeRun = Callable[..., Path]


def _market_keys(n: int) -> list[tuple[str, str]]:
    venues = ["binance", "hyperliquid", "okx", "bybit"]
    symbols = ["BTC", "ETH", "SOL", "DOGE", "HIVE", "XRP", "NEAR", "FIL"]
    out = []
    for i in range(n):
        v = venues[i % len(venues)]
        out.append((v, f"{v}:{symbols[(i // len(venues)) % len(symbols)]}{i // (len(venues) * len(symbols)) or ''}"))
    return out


def build_run(
    root: Path,
    *,
    n_markets: int = 4,
    steps: int = 600,
    seed: int = 1,
    optional: bool = True,
    scenario: str = "synthetic",
    fund_start: float = 2_000_000.0,
) -> Path:
    """Write a synthetic but self-consistent run directory under ``root`` and return it.

    Prices fall ~20 % from minute one; liquidations (mostly longs) and ADL fills cluster in the fall; the
    summary's totals are computed from the event tables, as the engine does.
    """
    rng = np.random.default_rng(seed)
    keys = _market_keys(n_markets)
    ts = T0_MS + np.arange(steps, dtype=np.int64) * 1000
    shock = np.where(np.arange(steps) < 60, 0.0, -0.2 * (1 - np.exp(-(np.arange(steps) - 60) / 120.0)))
    cols: dict[str, list[Any]] = {c: [] for c in ("ts_ms", "venue", "market")}
    numeric: dict[str, list[np.ndarray]] = {
        c: []
        for c in (
            "index",
            "mark",
            "last",
            "best_bid",
            "best_ask",
            "depth_bid_1pct_usd",
            "depth_ask_1pct_usd",
            "open_interest_usd",
            "funding_rate",
            "insurance_fund_usd",
        )
    }
    venues = list(dict.fromkeys(v for v, _ in keys))
    fund = {v: fund_start * (1 - 0.5 * (np.arange(steps) / steps) ** 2) for v in venues}
    per_market: dict[str, dict[str, np.ndarray]] = {}
    for m, (v, key) in enumerate(keys):
        start = 100_000.0 / (10**m)
        index = start * np.exp(shock + np.cumsum(rng.normal(0, 0.0005, steps)))
        mark = index * (1 + rng.normal(0, 0.0003, steps))
        last = mark * (1 + rng.normal(0, 0.0008, steps))
        depth = 5e6 * np.exp(shock * 8) * (1 + 0.1 * rng.random(steps))
        oi = 2e8 / (m + 1) * np.exp(shock * 3)
        per_market[key] = {"mark": mark, "oi": oi}
        block = {
            "index": index,
            "mark": mark,
            "last": last,
            "best_bid": last * 0.9999,
            "best_ask": last * 1.0001,
            "depth_bid_1pct_usd": depth,
            "depth_ask_1pct_usd": depth * 0.6,
            "open_interest_usd": oi,
            "funding_rate": np.full(steps, 1e-4),
            "insurance_fund_usd": fund[v],
        }
        for c, arr in block.items():
            numeric[c].append(arr)
    table_cols: dict[str, Any] = {
        "ts_ms": np.repeat(ts, len(keys)),
        "venue": np.tile(np.array([v for v, _ in keys]), steps),
        "market": np.tile(np.array([k for _, k in keys]), steps),
    }
    for c, blocks in numeric.items():
        table_cols[c] = np.stack(blocks, axis=1).reshape(-1)
    del cols
    run = root
    (run / "events").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table_cols), run / "timeseries.parquet")

    def events(n: int, long_share: float) -> dict[str, Any]:
        step = np.sort(rng.integers(60, steps, n))
        which = rng.integers(0, len(keys), n)
        side = np.where(rng.random(n) < long_share, 1, -1)
        mark = np.array([per_market[keys[w][1]]["mark"][s] for w, s in zip(which, step, strict=True)])
        notional = rng.lognormal(10, 1.0, n)
        return {
            "ts_ms": ts[step],
            "venue": [keys[w][0] for w in which],
            "market": [keys[w][1] for w in which],
            "account": rng.integers(0, 1000, n),
            "side": side,
            "lots": rng.integers(1, 1000, n),
            "notional_usd": notional,
            "price": mark * (1 - 0.001 * side),
            "mark": mark,
        }

    liq = events(300, 0.85)
    liq["kind"] = ["book"] * 300
    liq["fee_usd"] = np.asarray(liq["notional_usd"]) * 0.005
    adl = events(120, 0.1)
    adl["bankrupt_account"] = adl.pop("account")
    adl["account"] = rng.integers(0, 1000, 120)
    adl["loss_vs_mark_usd"] = np.zeros(120)
    pq.write_table(pa.table(liq), run / "events" / "liquidations.parquet")
    pq.write_table(pa.table(adl), run / "events" / "adl.parquet")

    def by(names: list[str], values: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, x in zip(names, values, strict=True):
            out[k] = out.get(k, 0.0) + float(x)
        return dict(sorted(out.items()))

    ln = np.asarray(liq["notional_usd"])
    an = np.asarray(adl["notional_usd"])
    prices = {}
    for _, key in keys:
        path = per_market[key]["mark"]
        peak = np.maximum.accumulate(path)
        prices[key] = {
            "start": float(path[0]),
            "min": float(path.min()),
            "max": float(path.max()),
            "end": float(path[-1]),
            "max_drawdown": float((path / peak - 1).min()),
        }
    summary: dict[str, Any] = {
        "scenario": scenario,
        "seed": seed,
        "config_hash": f"{seed:064x}",
        "steps": steps,
        "simulated_seconds": float(steps),
        "wall_seconds": 1.0,
        "accounts": 1000,
        "positions": 1000,
        "liquidations": {
            "count": len(ln),
            "notional_usd": float(ln.sum()),
            "long_notional_usd": float(ln[np.asarray(liq["side"]) > 0].sum()),
            "short_notional_usd": float(ln[np.asarray(liq["side"]) < 0].sum()),
            "by_venue": by(liq["venue"], ln),
            "by_market": by(liq["market"], ln),
        },
        "adl": {
            "count": len(an),
            "notional_usd": float(an.sum()),
            "by_venue": by(adl["venue"], an),
            "by_market": by(adl["market"], an),
        },
        "insurance_funds": {
            v: {"start_usd": fund_start, "end_usd": float(f[-1]), "min_usd": float(f.min())} for v, f in fund.items()
        },
        "bad_debt_usd": 0.0,
        "open_interest": {
            k: {"start_usd": float(d["oi"][0]), "end_usd": float(d["oi"][-1])} for k, d in per_market.items()
        },
        "prices": prices,
        "invariants": {"money_conservation_max_abs_error_usd": 1e-7, "open_interest_max_imbalance": 0},
    }
    if optional:
        _write_optional(run, rng, ts, summary)
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    if optional:
        validate_run(run)  # validation.json as `perpstress validate` writes it, from this run's tables
    return run


def _write_optional(run: Path, rng: np.random.Generator, ts: np.ndarray, summary: dict[str, Any]) -> None:
    steps = len(ts)
    # USDe valued off binance's own thin book depegs to 0.65; bybit values it at the external index. wBETH's own
    # book on binance falls 88 % below its reference; binance's margin price mixes 20 % of it with the reference.
    bell = np.exp(-(((np.arange(steps) - steps / 2) / (steps / 10)) ** 2))
    dip = 1 - 0.35 * bell
    wbeth_book = 1.07 * (1 - 0.88 * bell)
    coll = {
        "ts_ms": np.concatenate([ts, ts, ts]),
        "venue": ["binance"] * steps + ["bybit"] * steps + ["binance"] * steps,
        "asset": ["USDe"] * (2 * steps) + ["wBETH"] * steps,
        "price": np.concatenate([dip, np.full(steps, 0.999), 0.2 * wbeth_book + 0.8 * 1.07]),
        "reference_price": np.concatenate([np.ones(steps), np.ones(steps), np.full(steps, 1.07)]),
        "book_price": np.concatenate([dip, np.full(steps, np.nan), wbeth_book]),
    }
    pq.write_table(pa.table(coll), run / "events" / "collateral.parquet")
    n = 25
    hedges = {
        "ts_ms": np.sort(rng.choice(ts[60:], n)),
        "owner": rng.integers(0, 50, n),
        "venue": rng.choice(["binance", "hyperliquid"], n).tolist(),
        "cause": rng.choice(["liquidation", "adl"], n).tolist(),
        "unhedged_notional_usd": rng.lognormal(12, 1, n),
        "pnl_usd": rng.normal(-5e4, 3e4, n),
    }
    pq.write_table(pa.table(hedges), run / "events" / "hedges.parquet")
    m = 60
    req = np.sort(rng.choice(ts, m))
    delay = rng.gamma(2.0, 20.0, m)
    landed = req + (delay * 1000).astype(np.int64)
    landed_arr = pa.array([None if i == 0 else int(x) for i, x in enumerate(landed)], type=pa.int64())
    delay_arr = pa.array([None if i == 0 else float(x) for i, x in enumerate(delay)], type=pa.float64())
    transfers = pa.table(
        {
            "requested_ms": req,
            "landed_ms": landed_arr,
            "delay_s": delay_arr,
            "route": rng.choice(["binance->hyperliquid", "hyperliquid->binance"], m).tolist(),
            "amount_usd": rng.lognormal(11, 1, m),
        }
    )
    pq.write_table(transfers, run / "events" / "transfers.parquet")
    summary["hedges"] = {
        "accounts": 50,
        "broken": n,
        "broken_notional_usd": float(hedges["unhedged_notional_usd"].sum()),
    }
    summary["transfers"] = {"count": m, "delayed_count": int((delay > 30).sum()), "max_delay_s": float(delay.max())}
    summary["collateral"] = {
        "USDe@binance": {"min_price": float(dip.min()), "liquidations_caused": 17},
        "USDe@bybit": {"min_price": 0.999, "liquidations_caused": 0},
    }


@pytest.fixture
def make_run(tmp_path: Path) -> MakeRun:
    """``make_run(name, **options)``: a synthetic run directory under the test's tmp dir (see :func:`build_run`)."""

    def make(name: str = "run", **options: Any) -> Path:
        return build_run(tmp_path / name, **options)

    return make


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in quickstart scenario at a tenth of its crowd (a few seconds), written to a run directory."""
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.run import run_scenario

    out = run_scenario(Scenario.load("quickstart"), tmp_path_factory.mktemp("qs") / "quickstart", scale=0.1)
    assert out.path is not None
    return out.path


@pytest.fixture(scope="session")
def validated_quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real quickstart run (a tenth of its crowd) with the validation.json ``perpstress validate`` writes."""
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.run import run_scenario

    out = run_scenario(Scenario.load("quickstart"), tmp_path_factory.mktemp("qsv") / "quickstart", scale=0.1)
    assert out.path is not None
    validate_run(out.path)
    return out.path
