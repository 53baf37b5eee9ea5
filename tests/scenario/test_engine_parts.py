"""Engine parts inside a real small world: funding settlement, CSV replay, trades table, invariants under
random parameters (Hypothesis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress import Scenario
from perpstress.engine.kernel import Clock
from perpstress.engine.simulation import Simulation
from perpstress.engine.summary import outcome
from perpstress.errors import DataError
from perpstress.outputs.run import run_scenario

BASE = Scenario.load("quickstart").with_(duration_s=120)


def test_funding_settlement_is_zero_sum_and_longs_pay_a_positive_rate() -> None:
    sim = Simulation(BASE, scale=0.05)
    m = sim.market_keys.index("hyperliquid:BTC")
    sim.world.index_now = sim.paths.index[0, sim.asset_of]
    assert sim.funding_rate is sim.funding.rate  # marks and the recorder read the phase's own array
    sim.funding_rate[m] = 0.0005
    pos = sim.positions
    in_m = np.flatnonzero((pos.market == m) & (pos.size_lots != 0))
    cash = lambda: sim.accounts.wallet[in_m] + np.nan_to_num(pos.isolated_margin[in_m])  # noqa: E731
    before = cash().copy()
    value = sim.total_value()
    paid_ids = sim.funding.settle(np.array([m]), sim.index_now)
    paid = before - cash()
    longs = pos.size_lots[in_m] > 0
    assert np.all(paid[longs] > 0)
    assert np.all(paid[~longs] < 0)
    assert paid.sum() == pytest.approx(0.0, abs=1e-6)  # open interest balances, so funding moves money only
    assert sim.total_value() == pytest.approx(value, abs=1e-6)
    np.testing.assert_array_equal(np.sort(paid_ids), in_m)  # exactly the market's open positions


def test_a_run_across_an_hour_settles_hourly_funding() -> None:
    sc = BASE.with_(start="2025-10-10T21:59:00Z", shock__at_s=30)
    out = run_scenario(sc, scale=0.05)
    rate = out.tables.timeseries["funding_rate"]
    assert np.any(rate != 0)
    assert out.summary["invariants"]["open_interest_max_imbalance"] == 0
    assert out.summary["invariants"]["money_conservation_max_abs_error_usd"] < 1e-5


def write_prices(path: Path, rows: list[str]) -> Path:
    path.write_text("ts,BTC,HIVE,DOGE\n" + "\n".join(rows) + "\n")
    return path


def test_replay_interpolates_a_csv_onto_the_step_grid(tmp_path: Path) -> None:
    csv = write_prices(tmp_path / "p.csv", [
        "2025-10-10T21:00:00Z,116800,0.25,0.26", "2025-10-10T21:01:00Z,110800,0.20,0.22",
        "2025-10-10T21:02:00Z,112000,0.21,0.23",
    ])  # fmt: skip
    sc = BASE.with_(shock={"kind": "replay", "csv": str(csv), "assets": ["BTC", "HIVE", "DOGE"]})
    out = run_scenario(sc, scale=0.05)
    index = out.tables.timeseries["index"][:, 0]  # binance:BTCUSDT
    assert index[0] == pytest.approx(116_800)
    assert index[30] == pytest.approx(113_800)  # half way through the first minute
    assert index[60] == pytest.approx(110_800)


def test_replay_refuses_a_file_with_bad_rows_naming_each(tmp_path: Path) -> None:
    csv = write_prices(tmp_path / "p.csv", [
        "2025-10-10T21:00:00Z,116800,0.25,0.26", "2025-10-10T21:01:00Z,abc,0.20,0.22",
        "yesterday,1,1,1", "2025-10-10T21:03:00Z,1,-1,1",
    ])  # fmt: skip
    sc = BASE.with_(shock={"kind": "replay", "csv": str(csv), "assets": ["BTC", "HIVE", "DOGE"]})
    with pytest.raises(DataError) as info:
        run_scenario(sc, scale=0.05)
    problems = info.value.problems
    assert f"{csv}: line 3: BTC: 'abc' is not a number" in problems
    assert f"{csv}: line 4: ts: 'yesterday' is neither Unix ms nor ISO-8601" in problems
    assert f"{csv}: line 5: HIVE: price -1 must be positive" in problems


def test_trades_table_is_written_when_asked(tmp_path: Path) -> None:
    run_scenario(BASE.with_(engine__record_trades=True), tmp_path / "r", scale=0.05)
    trades = pq.read_table(tmp_path / "r" / "events" / "trades.parquet")
    assert trades.num_rows > 0
    assert {"ts_ms", "market", "account", "maker", "lots", "price"} <= set(trades.column_names)
    run_scenario(BASE, tmp_path / "s", scale=0.05)
    assert not (tmp_path / "s" / "events" / "trades.parquet").exists()


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    depth=st.floats(0.1, 2.0),
    fund=st.floats(1e5, 1e9),
    jump=st.floats(-0.1, 0.02),
)
def test_invariants_hold_whatever_the_parameters(seed: int, depth: float, fund: float, jump: float) -> None:
    assert BASE.makers is not None
    sc = BASE.with_(seed=seed, makers__depth_usd=BASE.makers.depth_usd * depth, shock__jump=jump,
                    venues__binance__insurance_fund__initial_usd=fund)  # fmt: skip
    s = run_scenario(sc, scale=0.05).summary  # the engine itself raises on crossed books or hidden bad debt
    notional_bn = sum(o["start_usd"] for o in s["open_interest"].values()) / 1e9
    assert s["invariants"]["money_conservation_max_abs_error_usd"] <= 1e-6 * max(notional_bn, 1.0)
    assert s["invariants"]["open_interest_max_imbalance"] == 0


def test_a_liquidated_maker_has_its_orders_cancelled_first() -> None:
    sim = Simulation(BASE, scale=0.05)
    clock = Clock(step=0, ts_ms=BASE.ts_start_ms, step_ms=BASE.step_ms)
    sim.exogenous(clock)
    sim.makers(clock)
    maker = int(sim.maker_ids[0])
    m = int(sim.positions.market[maker])
    assert any(owner == maker for *_, owner in sim.books.rows(m))
    sim.accounts.wallet[maker] = -1e12  # hopelessly under water: liquidatable
    sim.cascade(clock)
    assert not any(owner == maker for *_, owner in sim.books.rows(m))


def test_the_summary_times_every_kernel_phase_and_the_cascade_within_liquidation() -> None:
    sim = Simulation(BASE, scale=0.05)
    summary = sim.run().summary
    timing = summary["timing"]
    phases = timing["phases"]
    assert list(phases) == [name for name, _ in sim.kernel.phases]  # exactly the kernel's phases, in its order
    assert timing["steps"] == summary["steps"] == BASE.steps
    assert set(timing["sections"]) == {"liquidation"}
    assert set(timing["sections"]["liquidation"]) == {"cascade"}
    rounding = 1e-6 * (len(phases) + 1)  # seconds are rounded to 6 decimals, wall_seconds to 3
    assert all(seconds >= 0 for seconds in phases.values())
    assert 0 <= timing["sections"]["liquidation"]["cascade"] <= phases["liquidation"] + rounding
    assert sum(phases.values()) <= timing["total_seconds"] + rounding
    assert timing["total_seconds"] <= summary["wall_seconds"] + 5e-4 + rounding
    assert set(outcome(summary)) == set(summary) - {"wall_seconds", "timing"}
