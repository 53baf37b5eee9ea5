"""The population from aggregates: exact open interest, balanced sides, scale changes accounts not notional."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.engine.simulation import CROWD, Simulation
from perpstress.population.liqmap import initial_population, liquidation_map

AGGREGATES = {
    "accounts": 4000,
    "markets": {
        "binance:BTCUSDT": {"open_interest_usd": 400e6, "crowd_short_share": 0.8, "long_short_account_ratio": 2.0},
        "binance:HIVEUSDT": {"open_interest_usd": 5e6, "crowd_short_share": 0.6, "long_short_account_ratio": 3.0},
        "hyperliquid:BTC": {"open_interest_usd": 250e6},
    },
    "leverage_size_elasticity": 0.3,
    "crowded_long_share": 0.3,
    "crowded_leverage_median": 40.0,
    "entry_path": [0.98, 1.02, 1.05],
}


def scenario() -> Scenario:
    base = Scenario.load("quickstart")
    data = base.model_dump(mode="json")
    data["crowd"]["markets"] = {}
    data["population"] = AGGREGATES
    data["duration_s"] = 5
    return Scenario.from_dict(data)


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_open_interest_is_exact_and_both_sides_balance(scale: float) -> None:
    sim = Simulation(scenario(), scale=scale)
    pos, mk = sim.positions, sim.markets
    for key, agg in AGGREGATES["markets"].items():
        m = sim.market_keys.index(key)
        in_m = pos.market == m
        long_lots = pos.size_lots[in_m & (pos.size_lots > 0)].sum()
        short_lots = -pos.size_lots[in_m & (pos.size_lots < 0)].sum()
        assert long_lots == short_lots  # makers take the crowd's net
        expected = round(agg["open_interest_usd"] / mk.mark[m] / mk.lot_size[m])
        assert long_lots == expected  # exact to the lot, whatever the scale
        crowd_short = -pos.size_lots[in_m & (pos.size_lots < 0) & (sim.kind == CROWD)].sum()
        assert crowd_short == pytest.approx(agg.get("crowd_short_share", 0.6) * expected, abs=1)


def test_scale_changes_accounts_not_notional() -> None:
    full, tenth = Simulation(scenario(), scale=1.0), Simulation(scenario(), scale=0.1)
    n_full, n_tenth = (int((s.kind == CROWD).sum()) for s in (full, tenth))
    assert n_tenth == pytest.approx(n_full / 10, rel=0.05)
    assert full.accounting.long_lots.sum() == tenth.accounting.long_lots.sum()


def test_crowded_longs_and_small_accounts_lever_more() -> None:
    sim = Simulation(scenario())
    crowd = np.flatnonzero(sim.kind == CROWD)
    pos, mk = sim.positions, sim.markets
    notional = np.abs(pos.size_lots[crowd]) * mk.lot_size[pos.market[crowd]] * pos.entry_price[crowd]
    margin = np.where(np.isnan(pos.isolated_margin[crowd]), sim.accounts.wallet[crowd], pos.isolated_margin[crowd])
    leverage = notional / margin
    long = pos.size_lots[crowd] > 0
    assert np.median(leverage[long]) > np.median(leverage[~long])  # the crowded high-leverage longs
    big = notional > np.quantile(notional, 0.9)
    assert np.median(leverage[big]) < np.median(leverage[~big])  # large accounts lever less
    entries = pos.entry_price[crowd] / mk.mark[pos.market[crowd]]
    assert 0.95 < np.median(entries) < 1.08  # entries along the given path


def test_survivors_at_their_chosen_leverage_stand_further_from_liquidation_than_a_cushion() -> None:
    """The path (entries 2-5 % above the start for two thirds of the crowd) leaves many longs within reach of
    liquidation. With a cushion of 0.3-3 % they crowd the first percents below the start; opened again at their
    chosen leverage they stand as far as fresh positions. The same accounts, sizes and entries either way."""
    pops = {}
    for rule in ("cushion", "chosen_leverage"):
        sc = scenario()
        pops[rule] = initial_population(sc.with_(population__survivors=rule), scale=0.5)
    a, b = pops["cushion"].crowd, pops["chosen_leverage"].crowd
    np.testing.assert_array_equal(a.size_lots, b.size_lots)
    np.testing.assert_array_equal(a.entry_price, b.entry_price)
    first = {rule: liquidation_map(p, "gen", bins=10, range_fraction=0.1).markets[0] for rule, p in pops.items()}
    assert first["cushion"].key == "binance:BTCUSDT"
    within = {rule: mm.long_cum_usd[11] / mm.long_total_usd for rule, mm in first.items()}  # the first 2 % below
    assert within["cushion"] > 0.05
    assert within["chosen_leverage"] < within["cushion"] / 2
    moved = a.margin != b.margin
    assert moved.any()
    assert np.all(b.margin[moved] > a.margin[moved])  # only the survivors change, and only to hold more margin
