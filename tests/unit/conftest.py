"""Small whole runs for the API and query tests: a one-minute, two-venue scenario built here (well under a second
a run once compiled), and a folder of three such runs that differ in seed and Binance's insurance fund."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kit import MAKERS

TINY: dict[str, Any] = {
    "name": "tiny",
    "description": "one minute: Binance (BTC, a thin long-tail market) and Hyperliquid (BTC), a 5 % jump at 5 s",
    "seed": 1,
    "start": "2025-10-10T21:00:00Z",
    "duration_s": 60,
    "venues": {
        "binance": {"preset": "binance", "symbols": ["BTCUSDT", "HIVEUSDT"], "insurance_fund": {"initial_usd": 1e6}},
        "hyperliquid": {"preset": "hyperliquid", "symbols": ["BTC"], "insurance_fund": {"initial_usd": 1e6}},
    },
    "shock": {
        "kind": "jump_regime",
        "at_s": 5,
        "jump": -0.05,
        "stress_vol": 0.003,
        "half_life_s": 30,
        "drift": -0.05,
        "drift_s": 40,
        "assets": {
            "BTC": {"start_price": 116_800.0},
            "HIVE": {"start_price": 0.25, "beta": 3.0, "idio_vol": 0.001},
        },
    },
    "crowd": {
        "leverage_median": 20.0,
        "markets": {
            "binance:BTCUSDT": {"notional_usd": 1e8, "long_share": 0.8, "accounts": 300},
            "binance:HIVEUSDT": {"notional_usd": 2e6, "long_share": 0.85, "accounts": 100},
            "hyperliquid:BTC": {"notional_usd": 8e7, "long_share": 0.8, "accounts": 300},
        },
    },
    "makers": MAKERS,
}

TINY_RUNS = {"fund-1m/seed1": (1e6, 1), "fund-200k/seed2": (2e5, 2), "fund-5m/seed3": (5e6, 3)}
"""The runs of :func:`tiny_runs`: path under the folder -> (Binance insurance fund USD, seed)."""


def tiny_scenario(fund_usd: float = 1e6, **top: Any) -> dict[str, Any]:
    """The tiny scenario as a dict (a fresh copy), Binance's fund set to ``fund_usd``, top-level keys replaced."""
    data = copy.deepcopy(TINY)
    data["venues"]["binance"]["insurance_fund"]["initial_usd"] = fund_usd
    data.update(top)
    return data


@pytest.fixture
def make_tiny() -> Callable[..., dict[str, Any]]:
    """``make_tiny(fund_usd=1e6, **top_level)``: the tiny scenario dict."""
    return tiny_scenario


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the three written runs of :data:`TINY_RUNS`, nested one level (``fund-1m/seed1``)."""
    import perpstress

    root = tmp_path_factory.mktemp("tiny-runs")
    for relative, (fund, seed) in TINY_RUNS.items():
        perpstress.run(tiny_scenario(fund), seed=seed, out=root / relative)
    return root


@pytest.fixture(scope="session")
def tiny_run_specs() -> dict[str, tuple[float, int]]:
    """:data:`TINY_RUNS`: path under the ``tiny_runs`` folder -> (Binance insurance fund USD, seed)."""
    return dict(TINY_RUNS)


@pytest.fixture(scope="session")
def tiny_memory_run() -> Any:
    """The tiny scenario run in memory (nothing written), seed 4."""
    import perpstress

    return perpstress.run(tiny_scenario(), seed=4)
