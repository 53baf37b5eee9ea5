"""``bench/breadth.py``'s generated scenario: every synthetic market is wired in, and a short run balances."""

from __future__ import annotations

from types import ModuleType

import pytest

from kit import load_bench_script
from perpstress import Scenario
from perpstress.engine.simulation import Simulation


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench_script("breadth")


BASE_PERPS = sum(len(v.markets()) for v in Scenario.load("oct-2025").venues.values())


@pytest.fixture(scope="module")
def breadth(bench: ModuleType) -> Scenario:
    scenario: Scenario = bench.make_breadth_scenario(BASE_PERPS + 10)
    return scenario


def test_the_scenario_has_the_markets_each_wired_to_a_crowd_an_asset_and_makers(
    bench: ModuleType, breadth: Scenario
) -> None:
    base = Scenario.load("oct-2025")
    perps, markets = bench.market_counts(breadth)
    assert perps >= BASE_PERPS + 10
    assert markets == perps + sum(len(v.spot_markets()) for v in base.venues.values())  # oct-2025's spot books
    assert set(breadth.venues) == set(base.venues)
    synthetic = bench.synthetic_keys(breadth)
    assert len(synthetic) == perps - BASE_PERPS
    assert breadth.population is not None
    assert breadth.shock is not None
    assert breadth.shock.kind == "jump_regime"
    assert breadth.makers is not None
    assert base.population is not None
    assert base.shock is not None
    assert base.shock.kind == "jump_regime"
    assert base.makers is not None
    for key in synthetic:
        venue, symbol = key.split(":")
        market = breadth.venues[venue].markets()[symbol]
        tail = base.venues[venue].markets()[bench.tail_market(base, venue)]
        assert market.margin_tiers == tail.margin_tiers
        assert breadth.population.markets[key] == base.population.markets[f"{venue}:{tail.symbol}"]
        assert breadth.shock.assets[market.base] == base.shock.assets[tail.base]
        assert breadth.makers.markets[key] == base.makers.markets[f"{venue}:{tail.symbol}"]
    again = Scenario.from_toml(breadth.to_toml())
    assert again.stable_hash() == breadth.stable_hash()


def test_a_short_run_completes_with_open_interest_balanced(breadth: Scenario) -> None:
    summary = Simulation(breadth.with_(duration_s=20), scale=0.01).run().summary
    assert summary["steps"] == 20
    assert summary["invariants"]["open_interest_max_imbalance"] == 0
    assert set(summary["open_interest"]) >= set(
        f"{v}:{s}" for v, venue in breadth.venues.items() for s in venue.markets()
    )
