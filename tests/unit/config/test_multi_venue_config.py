"""Scenario rules of the multi-venue layer: each names the file, the field path and the rule broken."""

from __future__ import annotations

from typing import Any

import pytest

from perpstress.config.scenario import Scenario
from perpstress.errors import ConfigError


def demo(**changes: Any) -> dict[str, Any]:
    import tomllib

    from perpstress.presets import scenario_text

    data = tomllib.loads(scenario_text("two-venue-demo"))
    for path, value in changes.items():
        node = data
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return data


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        Scenario.from_dict(data, "demo.toml")
    return str(err.value)


def test_the_demo_is_valid() -> None:
    sc = Scenario.from_dict(demo(), "demo.toml")
    assert sc.venues["binance"].spot_symbols == ("BTC/USDT", "USDE/USDT")
    assert sc.venues["binance"].collateral["USDE"].method.value == "own_book"


def test_own_book_collateral_needs_its_book_simulated() -> None:
    data = demo(**{"venues.binance.spot_symbols": ["BTC/USDT"]})
    del data["takers"]["markets"]["binance:USDE/USDT"], data["makers"]["markets"]["binance:USDE/USDT"]
    text = problems(data)
    assert "demo.toml: crowd.collateral.binance.USDE" in text
    assert "add it to venues.binance.spot_symbols" in text


def test_collateral_a_venue_does_not_accept() -> None:
    text = problems(demo(**{"crowd.collateral.bybit": {"WBETH": 0.1}}))
    rule = "bybit has no collateral rule for WBETH (accepted: BTC, ETH, USDC, USDE)"
    assert f"crowd.collateral.bybit.WBETH: {rule}" in text


def test_rail_routes_name_venues_of_the_scenario() -> None:
    text = problems(demo(**{"rails.routes": {"binance->okx": {"latency_median_s": 5.0}}}))
    assert 'rails.routes.binance->okx: route must be "from->to" between venues of the scenario' in text


def test_hedge_legs_on_one_venue_and_unknown_markets() -> None:
    hedger = {"long": "binance:BTCUSDT", "short": "binance:BTCUSDT", "notional_usd": 1e6}
    assert "are on the same venue" in problems(demo(hedgers=[hedger]))
    hedger = {"long": "binance:ETHUSDT", "short": "bybit:BTCUSDT", "notional_usd": 1e6}
    assert "hedgers[0].long: no such market binance:ETHUSDT" in problems(demo(hedgers=[hedger]))


def test_spot_symbols_must_exist_and_disruptions_run_forward() -> None:
    assert "PEPE/USDT not among this venue's spot markets" in problems(
        demo(**{"venues.bybit.spot_symbols": ["PEPE/USDT"]})
    )
    rail = {"disruptions": [{"from_s": 100, "to_s": 50}]}
    assert "to_s 50 must be after from_s 100" in problems(demo(**{"rails.default": rail}))
