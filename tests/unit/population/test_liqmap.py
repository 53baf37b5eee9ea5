"""The liquidation map: levels hold the hand-solved liquidation prices, totals equal the population's notional,
longs sit below the start and shorts above, and the population is the one a run starts with."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from perpstress.calculator import load_venue
from perpstress.config.scenario import Scenario
from perpstress.mechanisms.margin_kernels import _liquidation_price_py
from perpstress.population.crowd import CrowdPositions
from perpstress.population.liqmap import (
    InitialPopulation,
    initial_population,
    liquidation_map,
    position_liquidation_prices,
)

BTC = load_venue("binance").perpetuals["BTCUSDT"]  # tier 1: notional <= 300,000, MMR 0.4 %
MMR = BTC.margin_tiers[0].maintenance_margin_rate
START = 100_000.0


def hand_population() -> InitialPopulation:
    """Four BTC positions on one market, all in the first tier, lot 0.001."""
    crowd = CrowdPositions(
        market=np.zeros(4, np.int32),
        size_lots=np.array([1000, 500, -2000, 1000], np.int64),  # 1 BTC long, 0.5 long, 2 short, 1 long
        entry_price=np.array([100_000.0, 102_000.0, 100_000.0, 100_000.0]),
        margin=np.array([10_000.0, 20_000.0, 10_000.0, 150_000.0]),
        isolated=np.array([True, False, True, True]),
        stop_price=np.full(4, np.nan),
        topup_reserve=np.zeros(4),
    )
    return InitialPopulation(("binance:BTCUSDT",), np.array([START]), np.array([0.001]), (BTC.tier_table(),), crowd)


def test_levels_hold_the_hand_solved_liquidation_prices() -> None:
    # long: C + Q (P - EP) = Q P MMR  ->  P = (Q EP - C) / (Q (1 - MMR)); short: P = (C + Q EP) / (Q (1 + MMR))
    expected = [
        (1.0 * 100_000 - 10_000) / (1.0 * (1 - MMR)),  # 90,361.4: 9.64 % below -> level 10 of 1 % levels
        (0.5 * 102_000 - 20_000) / (0.5 * (1 - MMR)),  # 62,248.9: 37.8 % below -> beyond a 30 % range
        (10_000 + 2.0 * 100_000) / (2.0 * (1 + MMR)),  # 104,581.7: 4.58 % above -> level 5
        0.0,  # collateral above notional: no price liquidates it
    ]
    prices = position_liquidation_prices(hand_population())
    assert prices.tolist() == pytest.approx(expected, rel=1e-12)
    mm = liquidation_map(hand_population(), "hand", bins=30, range_fraction=0.3).markets[0]
    pct = np.round(mm.pct_from_start, 6)
    assert mm.long_usd[pct == -0.10].tolist() == [100_000.0]  # 1 BTC at the start price
    assert mm.short_usd[pct == 0.05].tolist() == [200_000.0]
    assert mm.long_usd.sum() == 100_000.0
    assert mm.short_usd.sum() == 200_000.0
    assert mm.long_beyond_usd == 50_000.0
    assert mm.long_never_usd == 100_000.0
    assert mm.long_cum_usd[pct == -0.09].tolist() == [0.0]
    assert mm.long_cum_usd[pct == -0.30].tolist() == [100_000.0]
    assert mm.short_cum_usd[pct == 0.04].tolist() == [0.0]
    assert mm.short_cum_usd[pct == 0.30].tolist() == [200_000.0]
    # longs only below the start, shorts only above
    assert (mm.long_usd[mm.pct_from_start > 0] == 0).all()
    assert (mm.short_usd[mm.pct_from_start < 0] == 0).all()
    assert (mm.level_price[mm.pct_from_start < 0] < START).all()
    assert (mm.level_price[mm.pct_from_start > 0] > START).all()


def test_a_position_liquidatable_at_the_start_counts_in_the_first_level() -> None:
    pop = hand_population()
    crowd = pop.crowd
    crowd.entry_price[0] = 120_000.0  # bought far above the start: liquidatable at once
    mm = liquidation_map(pop, "hand", bins=10, range_fraction=0.3).markets[0]
    assert mm.long_at_start_usd == 100_000.0
    first = np.flatnonzero(mm.pct_from_start < 0)[0]
    assert mm.long_usd[first] == 100_000.0


@pytest.fixture(scope="module")
def quickstart_pop() -> InitialPopulation:
    return initial_population(Scenario.load("quickstart"), scale=0.2)


def test_totals_equal_the_population_notional(quickstart_pop: InitialPopulation) -> None:
    pop = quickstart_pop
    lmap = liquidation_map(pop, "quickstart", bins=12, range_fraction=0.3)
    assert [m.key for m in lmap.markets] == list(pop.market_keys)
    for mm in lmap.markets:
        m = pop.market_keys.index(mm.key)
        lots = pop.crowd.size_lots[pop.crowd.market == m]
        notional = np.abs(lots) * pop.lot_size[m] * pop.start_price[m]
        long_total, short_total = math.fsum(notional[lots > 0]), math.fsum(notional[lots < 0])
        assert mm.long_total_usd == long_total
        assert mm.long_usd.sum() + mm.long_beyond_usd + mm.long_never_usd == pytest.approx(long_total, rel=1e-12)
        assert mm.short_usd.sum() + mm.short_beyond_usd == pytest.approx(short_total, rel=1e-12)
        assert mm.long_cum_usd[-1] == pytest.approx(mm.long_usd.sum(), rel=1e-12)
        assert mm.long_positions.sum() + mm.short_positions.sum() <= lots.size


# the second adds spot books and USDe wallets; the third draws the population from its own seed
@pytest.mark.parametrize(("name", "population_seed"), [("quickstart", None), ("two-venue-demo", None),
                                                       ("two-venue-demo", 7)])  # fmt: skip
def test_the_population_is_the_one_a_run_starts_with(name: str, population_seed: int | None) -> None:
    from perpstress.engine.simulation import CROWD, Simulation

    scenario = Scenario.load(name).model_copy(update={"population_seed": population_seed})
    sim = Simulation(scenario, scale=0.2)
    pop = initial_population(scenario, scale=0.2)
    crowd = np.flatnonzero(sim.kind == CROWD)
    pos = sim.positions
    assert np.array_equal(pos.market[crowd], pop.crowd.market)
    assert np.array_equal(pos.size_lots[crowd], pop.crowd.size_lots)
    assert np.array_equal(pos.entry_price[crowd], pop.crowd.entry_price)
    margin = np.where(pop.crowd.isolated, pos.isolated_margin[crowd], sim.accounts.wallet[crowd])
    assert margin == pytest.approx(pop.crowd.margin, rel=1e-12)  # USDe wallets are revalued: equal to rounding
    assert np.array_equal(sim.markets.mark[: len(pop.market_keys)], pop.start_price)
    # and each liquidation price is the engine's own kernel's answer
    prices = position_liquidation_prices(pop)
    mk = sim.markets
    for p in range(0, crowd.size, 97):
        m = pos.market[p]
        q = pos.size_lots[p] * mk.lot_size[m]
        ref = _liquidation_price_py(
            np.sign(q), abs(q), pos.entry_price[p], pop.crowd.margin[p], mk.tier_cap[m], mk.tier_mmr[m], mk.tier_cum[m]
        )
        assert prices[p] == pytest.approx(ref, rel=1e-9)


def test_map_command_json_and_files(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "perpstress",
            "map",
            "quickstart",
            "--scale",
            "0.05",
            "--bins",
            "5",
            "--json",
            "--market",
            "binance:BTCUSDT",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    btc = data["markets"]["binance:BTCUSDT"]
    assert list(data["markets"]) == ["binance:BTCUSDT"]
    assert len(btc["levels"]) == 10
    longs = sum(lv["long_usd"] for lv in btc["levels"]) + btc["long_beyond_usd"] + btc["long_never_usd"]
    assert longs == pytest.approx(btc["long_total_usd"], rel=1e-12)
    table = pq.read_table(tmp_path / "liqmap.parquet")
    assert table.num_rows == 10
    assert sorted(table.column("level").to_pylist()) == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]
    assert set(table.column("market").to_pylist()) == {"binance:BTCUSDT"}
    html = (tmp_path / "liqmap.html").read_text(encoding="utf-8")
    assert "binance:BTCUSDT" in html
    assert "plotly" in html.lower()


def test_map_command_rejects_bad_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "perpstress", "map", "quickstart", "--range", "1.5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --range must be between 0 and 1, a fraction of the start price (got 1.5)"
    ]
