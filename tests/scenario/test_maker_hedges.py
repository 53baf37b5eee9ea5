"""Makers hedging their inventory on another venue (``[[makers.hedges]]``) in quickstart's crash: the hedge follows
the makers' inventory, a hedge account short of capital stops growing it and leaves the makers unhedged, a forced
close of the hedge is noted and waits ``rehedge_after_s``; money and open interest stay exact."""

from __future__ import annotations

from typing import Any

import pytest

from perpstress import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.errors import ConfigError

BASE = Scenario.load("quickstart").with_(
    duration_s=300,
    makers__withdraws=False,
    makers__capital_usd=2e9,
    makers__inventory_limit_usd=1e10,
    makers__loss_limit_usd=1e9,
    makers__size_vol_elasticity=0.0,
    makers__spread_vol_elasticity=0.0,
    shock__appetite_floor=0.8,
)
"""quickstart with makers who keep quoting through the crash, so a hedge order finds the other venue's book."""
SCALE = 0.25
HEDGE = {"market": "binance:BTCUSDT", "hedge": "hyperliquid:BTC", "capital_usd": 50_000_000.0, "band_usd": 100_000.0}


def run(**hedge: Any) -> tuple[Simulation, dict[str, Any]]:
    sim = Simulation(BASE.with_(makers__hedges=[HEDGE | hedge]), scale=SCALE)
    return sim, sim.run().summary


def test_the_hedge_follows_the_makers_inventory() -> None:
    """Binance's makers end long what the crowd's liquidations sold them; their hedge on Hyperliquid is short about as
    much (within the band, one clip and what a forced close took), the orders went through Hyperliquid's book."""
    sim, s = run(clip_usd=50_000_000.0, rehedge_after_s=0.0)
    phase = sim.maker_hedges
    assert phase is not None
    inventory = phase.inventory_base(0)
    mark = float(sim.markets.mark[phase.hedge_market[0]])
    hedge = float(sim.positions.size_lots[phase.account[0]]) * float(sim.markets.lot_size[phase.hedge_market[0]])
    assert inventory * mark > 1e6  # the makers took on longs
    assert hedge < 0
    assert abs(inventory + hedge) * mark < 100_000.0 + 0.01 * inventory * mark
    h = s["maker_hedges"]
    assert h["trades"] > 0
    assert h["max_hedge_usd"] >= abs(hedge) * mark * 0.99
    assert s["invariants"]["open_interest_max_imbalance"] == 0


def test_a_hedge_short_of_capital_leaves_the_makers_unhedged() -> None:
    """With $200k of margin at 2x the hedge stops at about $400k: the checks that found no room are counted and the
    makers carry far more unhedged than with ample capital."""
    _, ample = run()
    _, poor = run(capital_usd=200_000.0, max_leverage=2.0)
    assert poor["maker_hedges"]["capital_bound_checks"] > 0
    assert poor["maker_hedges"]["max_hedge_usd"] < 450_000.0
    assert poor["maker_hedges"]["max_unhedged_usd"] > 5 * ample["maker_hedges"]["max_unhedged_usd"]


def test_a_forced_close_is_noted_and_the_hedger_waits() -> None:
    """At 50x on $300k the short hedge is liquidated when Binance's BTC rebounds: the forced closes are counted (the
    liquidation rows are the hedge account's), and a hedger that never rehedges after one ends holding less than its
    largest hedge while the makers are unhedged by much more than with a hedger that rehedges at once."""
    never_sim, never = run(capital_usd=300_000.0, max_leverage=50.0, rehedge_after_s=None)
    _, at_once = run(capital_usd=300_000.0, max_leverage=50.0, rehedge_after_s=0.0)
    h = never["maker_hedges"]
    assert h["forced_closes"] > 0
    assert h["liquidation_rows"] > 0
    phase = never_sim.maker_hedges
    assert phase is not None
    assert phase.resume_ms[0] == float("inf")
    a, m = int(phase.account[0]), phase.hedge_market[0]
    held = abs(int(never_sim.positions.size_lots[a])) * float(never_sim.markets.lot_size[m] * never_sim.markets.mark[m])
    assert held < h["max_hedge_usd"]
    assert at_once["maker_hedges"]["trades"] > h["trades"]
    assert never["invariants"]["open_interest_max_imbalance"] == 0


@pytest.mark.parametrize(
    ("hedge", "message"),
    [
        ({"hedge": "binance:HIVEUSDT"}, "is on binance:BTCUSDT's venue"),
        ({"hedge": "hyperliquid:DOGE"}, "is not BTC"),
        ({"market": "binance:NOPE"}, "no such market binance:NOPE"),
    ],
)
def test_bad_hedges_are_refused_naming_the_field(hedge: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        BASE.with_(makers__hedges=[HEDGE | hedge])
    assert message in str(err.value)
    assert "makers.hedges[0]" in str(err.value)


def test_hedges_that_lead_back_are_refused_naming_the_loop() -> None:
    """Each hedge order fills the hedge market's makers; hedged back, every fill returns as the next hedge."""
    back = HEDGE | {"market": "hyperliquid:BTC", "hedge": "binance:BTCUSDT"}
    with pytest.raises(ConfigError) as err:
        BASE.with_(makers__hedges=[HEDGE, back])
    assert "makers.hedges[0].hedge" in str(err.value)
    assert "binance:BTCUSDT -> hyperliquid:BTC -> binance:BTCUSDT" in str(err.value)
    assert "hedge one way" in str(err.value)
    assert BASE.with_(makers__hedges=[HEDGE]).makers is not None  # one way is fine
