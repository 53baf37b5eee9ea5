"""Resting orders beyond the makers' ladders (``[resting]``): the ladder's shape, its place in the books, and a
run with it that keeps every invariant."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.config.agents import RestingOrdersConfig
from perpstress.config.scenario import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.mechanisms.agents.resting import resting_ladder
from perpstress.state.orderbook import ASK, BID
from perpstress.state.world import RESTING

RESTING_CFG = {"levels": 10, "inner": 0.01, "outer": 0.5, "depth_multiple": 1.0}


def test_the_ladder_is_geometric_with_equal_notional_and_the_whole_depth() -> None:
    cfg = RestingOrdersConfig(levels=5, inner=0.01, outer=0.16, depth_multiple=1.0)
    bids, asks, sizes = resting_ladder(cfg, 100.0, 1_000.0)
    assert 1 - bids / 100 == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16])
    assert asks / 100 - 1 == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16])
    assert bids * sizes[0] == pytest.approx(np.full(5, 200.0))
    assert (asks * sizes[1]).sum() == pytest.approx(1_000.0)


def test_inner_must_be_nearer_than_outer() -> None:
    with pytest.raises(ValueError, match=r"outer 0\.01 must be beyond inner 0\.02"):
        RestingOrdersConfig(inner=0.02, outer=0.01)


def quickstart(**resting: float) -> Scenario:
    return Scenario.load("quickstart").with_(resting={**RESTING_CFG, **resting}, duration_s=120)


def test_each_market_starts_with_its_resting_orders_beyond_the_makers() -> None:
    sim = Simulation(quickstart(), scale=0.05)
    w = sim.world
    books = w.books
    assert w.resting_ids.size == len(w.market_keys)
    assert np.all(w.kind[w.resting_ids] == RESTING)
    for m in range(len(w.market_keys)):
        mine = books.owner[m, BID, : books.count[m, BID]] == w.resting_ids[m]
        assert mine.sum() == 10
        prices = books.price[m, BID, : books.count[m, BID]][mine] * books.tick_size[m]
        start = w.markets.mark[m]
        assert prices.max() <= start * 0.99 + books.tick_size[m]
        assert prices.min() == pytest.approx(start * 0.5, rel=1e-3)
        asks = books.owner[m, ASK, : books.count[m, ASK]] == w.resting_ids[m]
        assert asks.sum() == 10


def test_a_run_with_resting_orders_keeps_money_and_open_interest_exact() -> None:
    scenario = quickstart().with_(engine__check_every_step=True)
    summary = Simulation(scenario, scale=0.05).run().summary
    inv = summary["invariants"]
    assert inv["recounts"] > 100  # every step recounted, and each recount raises on a break
    assert inv["money_conservation_max_abs_error_usd"] < 1e-6
    assert inv["open_interest_max_imbalance"] == 0


def test_a_sell_past_the_makers_ladders_fills_the_resting_bids_down_to_its_limit() -> None:
    sim = Simulation(quickstart(), scale=0.05)
    w = sim.world
    m = 0
    start = float(w.markets.mark[m])
    owners, ticks, _ = w.books.match(m, -(10**12), start * 0.7, False)  # far more than the book holds
    prices = ticks * w.books.tick_size[m]
    resting = owners == w.resting_ids[m]
    assert resting.any()
    assert resting.all()  # before the first step only the resting orders are in the book
    assert resting.sum() == 8  # the levels within 30 %: 1 %, 1.5 %, ... 21 % (the next is 32 %)
    assert prices.min() >= start * 0.7
    assert prices.min() < start * 0.8


def test_resting_orders_off_leave_no_resting_accounts() -> None:
    sim = Simulation(Scenario.load("quickstart").with_(duration_s=60), scale=0.05)
    assert sim.world.resting_ids.size == 0
