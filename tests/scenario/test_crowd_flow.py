"""The crowd's flow (``[flow]``) and late margin calls in whole small runs: dip buyers caught by a second leg down,
shorts squeezed on a rebound, a full pool counted, money and open interest exact, runs byte-identical per seed, and
the flow's draws leaving every other stream where it was.

Paths are replayed from CSVs the tests write (BTC, HIVE and DOGE, as quickstart's markets need), so the legs down
are where the test puts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.mechanisms.agents.flow import MOMENTUM
from perpstress.state.clock import Clock

BASE = Scenario.load("quickstart").with_(
    makers__withdraws=False, makers__capital_usd=2e9, makers__inventory_limit_usd=1e10, makers__loss_limit_usd=1e9
)
"""quickstart with makers who stay in the book through the legs (the flow needs a book to trade with)."""
SCALE = 0.25
T0 = 1760130000000  # 2025-10-10T21:00:00Z, quickstart's start
SECOND_LEG_MS = T0 + 360_000


def replay(tmp_path: Path, name: str, btc: list[tuple[int, float]]) -> dict[str, Any]:
    """A replay shock through BTC's ``(second, price)`` points, every second, with a 1 bp zigzag (the replay's
    appetite is calm volatility over realised, so a path must have a calm volatility); HIVE and DOGE move with it (3x
    and 2x in log)."""
    seconds = np.arange(btc[-1][0] + 1)
    price = np.interp(seconds, [s for s, _ in btc], [p for _, p in btc]) * (1 + 1e-4 * (-1.0) ** seconds)
    rows = [f"{T0 + 1000 * s},{p},{0.25 * (p / 116_800) ** 3},{0.26 * (p / 116_800) ** 2}"
            for s, p in zip(seconds.tolist(), price.tolist(), strict=True)]  # fmt: skip
    path = tmp_path / f"{name}.csv"
    path.write_text("ts,BTC,HIVE,DOGE\n" + "\n".join(rows) + "\n")
    return {"kind": "replay", "csv": str(path), "assets": ["BTC", "HIVE", "DOGE"]}


TWO_LEGS = [(0, 116_800.0), (60, 116_800.0), (120, 111_000.0), (360, 111_000.0), (420, 103_000.0), (600, 103_000.0)]
ONE_LEG = [(0, 116_800.0), (60, 116_800.0), (120, 111_000.0), (600, 111_000.0)]
DIP_FLOW = {
    "markets": {"binance:BTCUSDT": {"accounts": 4000}},
    "dip": {"threshold": 0.03, "rate_per_s": 4.0, "max_multiple": 2.0},
    "median_usd": 50_000.0,
    "sigma": 0.5,
    "leverage_median": 25.0,
    "leverage_sigma": 0.0,
}


def simulate(scenario: Scenario) -> tuple[Simulation, dict[str, Any]]:
    sim = Simulation(scenario, scale=SCALE)
    return sim, sim.run().summary


def flow_accounts_opened_before(sim: Simulation, ts_ms: int) -> set[int]:
    """Flow accounts whose first fill (trades record) came before ``ts_ms``."""
    w = sim.world
    first = int(w.flow_pool_start[0])
    trades = w.trades
    return {int(a) for a, t in zip(trades["account"], trades["ts_ms"], strict=True) if a >= first and t < ts_ms}


def test_dip_buyers_are_liquidated_on_the_second_leg_down(tmp_path: Path) -> None:
    """Dip buyers at 25x open after the first 5 % leg; the second leg (another 7 %) liquidates most of those, and
    only in the second leg; with no second leg none of them is liquidated. Money and open interest stay exact, checked
    every step."""
    runs = {}
    for name, path in (("two", TWO_LEGS), ("one", ONE_LEG)):
        sc = BASE.with_(shock=replay(tmp_path, name, path), flow=DIP_FLOW, engine__record_trades=True,
                        engine__check_every_step=True)  # fmt: skip
        runs[name] = simulate(sc)
    sim, s = runs["two"]
    early = flow_accounts_opened_before(sim, SECOND_LEG_MS)
    assert s["flow"]["opened"]["dip"] >= len(early) > 20
    liq = sim.liquidation.record
    when = {}
    for a, t in zip(liq.account, liq.ts_ms, strict=True):
        when.setdefault(int(a), int(t))
    caught = early & set(when)
    assert len(caught) > 0.5 * len(early)
    assert min(when[a] for a in caught) >= SECOND_LEG_MS
    assert s["flow"]["liquidated_accounts"] >= len(caught)
    sim_one, s_one = runs["one"]
    assert s_one["flow"]["opened"]["dip"] > 20
    assert s_one["flow"]["liquidated_accounts"] == 0
    for run, summary in ((sim, s), (sim_one, s_one)):  # money to within rounding of all the run holds (~$25B)
        assert summary["invariants"]["money_conservation_max_abs_error_usd"] <= 1e-13 * run.value_start
        assert summary["invariants"]["open_interest_max_imbalance"] == 0
        assert summary["invariants"]["recounts"] == BASE.steps


def test_the_squeeze_covers_momentum_shorts_on_the_rebound(tmp_path: Path) -> None:
    """Momentum shorts open while BTC falls 6 % in a minute; on the rebound the squeeze buys them back, oldest first,
    and then opens longs; every covered account is flat at the end."""
    path = [(0, 116_800.0), (60, 116_800.0), (120, 109_800.0), (180, 109_800.0), (300, 114_000.0), (600, 114_000.0)]
    flow = {"markets": {"binance:BTCUSDT": {"accounts": 4000}},
            "momentum": {"threshold": 0.004, "window_s": 30.0, "rate_per_s": 3.0},
            "squeeze": {"threshold": 0.01, "after_fall": 0.03, "rate_per_s": 6.0}, "median_usd": 50_000.0}  # fmt: skip
    sim, s = simulate(BASE.with_(shock=replay(tmp_path, "rebound", path), flow=flow))
    f = s["flow"]
    assert f["opened"]["momentum"] > 10
    assert f["covered"] > 0
    assert f["opened"]["squeeze"] > 0  # longs once no flow short was left to cover
    phase = sim.flow
    assert phase is not None
    start = int(sim.world.flow_pool_start[0])
    pool = np.arange(start, start + int(phase.used[0]))
    shorts_left = pool[sim.positions.size_lots[pool] < 0]
    assert shorts_left.size == 0 or shorts_left.min() >= start + int(phase.cover_cursor[0])  # oldest covered first
    assert s["invariants"]["open_interest_max_imbalance"] == 0


def test_a_short_bought_back_past_bankruptcy_has_its_gap_settled_not_hidden(tmp_path: Path) -> None:
    """A momentum short at 20x that the venue's liquidation has not closed (here: the run's phases are not called
    between) is bought back by the squeeze after a 10 % rise: the close leaves the account below zero, so it pays no
    taker fee and its gap goes to Binance's fund (then bad debt), not into a hidden negative wallet; money is
    conserved. (oct-2025 at 5 % with the flow on stopped on the hidden-debt check this way: OKX ADA shorts whose
    liquidations found no asks, covered by the squeeze.)"""
    flat = [(0, 116_800.0), (600, 116_800.0)]
    flow = {"markets": {"binance:BTCUSDT": {"accounts": 40}},
            "momentum": {"threshold": 0.5, "window_s": 30.0, "rate_per_s": 1.0},
            "squeeze": {"threshold": 0.5, "after_fall": 0.5, "rate_per_s": 1.0}, "median_usd": 50_000.0}  # fmt: skip
    sim = Simulation(BASE.with_(shock=replay(tmp_path, "flat", flat), flow=flow), scale=SCALE)
    sim.kernel.steps = 2  # two calm steps: the makers' books are up, the flow's rules far from their thresholds
    sim.kernel.run()
    w, phase = sim.world, sim.flow
    assert phase is not None
    assert phase.orders == 0
    touched: list[int] = []
    phase.open(0, MOMENTUM, -500, 20.0, touched)  # 0.5 BTC short, ~$2.9k of margin
    (a,) = touched
    assert w.positions.size_lots[a] == -500
    w.fundamental = w.fundamental * 1.1  # every price 10 % up: the short is ~$2.9k under water at mark
    w.index_now = w.index_now * 1.1
    w.markets.mark[:] = w.markets.mark * 1.1
    sim.makers(Clock(2, T0 + 2000, 1000))  # the makers quote around the new index
    assert sim.accounting.unit_equity(a, -1) < 0
    value, fees, fund = sim.total_value(), float(w.ledger.fee_pool[0]), float(w.funds.balance[0])
    bad_debt = float(w.ledger.bad_debt[0])
    assert phase.cover(0, touched)
    assert w.positions.size_lots[a] == 0
    assert phase.covered[0] == 1
    assert w.accounts.wallet[a] == 0.0  # its gap paid: nothing negative left behind
    gap = fund - float(w.funds.balance[0]) + float(w.ledger.bad_debt[0]) - bad_debt
    assert gap > 2_000
    maker_fees = float(w.maker_fee[0]) * float(phase.covered_usd[0])
    assert float(w.ledger.fee_pool[0]) - fees == pytest.approx(maker_fees, rel=1e-9)  # no taker fee: no equity left
    sim.invariants.check_no_hidden_bad_debt(2)
    assert sim.total_value() == pytest.approx(value, rel=1e-12)
    assert sim.invariants.oi_imbalance() == 0


def test_no_flow_order_before_start_s_and_the_measures_carry_over(tmp_path: Path) -> None:
    """With ``start_s`` at 300 s, three minutes after the first leg, the dip buyers open nothing before 300 s and
    start within seconds of it (the peak they measure from was kept while they waited); without it they open during
    the leg."""
    shock = replay(tmp_path, "one", ONE_LEG)
    sc = BASE.with_(shock=shock, flow=DIP_FLOW | {"start_s": 300.0}, engine__record_trades=True)
    sim, s = simulate(sc)
    start_ms = T0 + 300_000
    assert not flow_accounts_opened_before(sim, start_ms)
    assert s["flow"]["opened"]["dip"] > 20
    assert flow_accounts_opened_before(sim, start_ms + 10_000)
    sim_now, _ = simulate(BASE.with_(shock=shock, flow=DIP_FLOW, engine__record_trades=True))
    assert len(flow_accounts_opened_before(sim_now, start_ms)) > 20


def test_a_full_pool_is_counted_not_grown(tmp_path: Path) -> None:
    """Eight dormant accounts at scale 1 are two at 0.25: two dip buyers open, every later order is dropped and
    counted, and the arrays keep their size."""
    flow = DIP_FLOW | {"markets": {"binance:BTCUSDT": {"accounts": 8}}}
    sim, s = simulate(BASE.with_(shock=replay(tmp_path, "two", TWO_LEGS), flow=flow))
    f = s["flow"]
    assert f["pool_accounts"] == 2
    assert f["opened"]["dip"] == 2
    assert f["pool_full"] > 0
    assert f["by_market"]["binance:BTCUSDT"]["pool_full"] == f["pool_full"]
    assert f["orders"] == 2 + f["pool_full"] + f["unfilled"]
    assert s["accounts"] == sim.accounts.n == sim.positions.n


def test_flow_runs_are_byte_identical_and_leave_other_streams_alone(tmp_path: Path) -> None:
    """The same seed gives the same bytes with the flow on; and until the flow's first order the run with the flow
    is the run without it, step for step (the flow draws from its own stream, and its pool is dormant)."""
    shock = replay(tmp_path, "two", TWO_LEGS)
    runs = [Simulation(BASE.with_(shock=shock, flow=DIP_FLOW), scale=SCALE).run() for _ in range(2)]
    off = Simulation(BASE.with_(shock=shock), scale=SCALE).run()
    for key in runs[0].timeseries:
        np.testing.assert_array_equal(runs[0].timeseries[key], runs[1].timeseries[key])
    drop = ("wall_seconds", "timing")
    assert {k: v for k, v in runs[0].summary.items() if k not in drop} == {
        k: v for k, v in runs[1].summary.items() if k not in drop
    }
    assert runs[0].summary["flow"]["opened"]["dip"] > 0
    first = int(np.argmax(runs[0].timeseries["open_interest_usd"].sum(axis=1)
                          != off.timeseries["open_interest_usd"].sum(axis=1)))  # fmt: skip
    assert first > 60  # the dip rule starts 3 % into the first leg
    for key in off.timeseries:
        np.testing.assert_array_equal(runs[0].timeseries[key][: first - 1], off.timeseries[key][: first - 1])


def test_late_and_unanswered_margin_calls_cost_top_ups() -> None:
    """With a 60 s median delay and a third that never answer, the crowd tops up less and later: fewer top-ups,
    margin calls counted (some never answered), and more liquidations than with immediate top-ups."""
    base = Scenario.load("quickstart").with_(duration_s=300, crowd__topup_share=1.0)
    now = simulate(base)[1]
    late = simulate(base.with_(crowd__topup_delay_median_s=60.0, crowd__topup_unanswered_share=0.33))[1]
    assert "margin_calls" not in now["topups"]
    assert late["topups"]["margin_calls"] > late["topups"]["margin_calls_never_answered"] > 0
    assert late["topups"]["count"] < now["topups"]["count"]
    assert late["topups"]["usd"] < now["topups"]["usd"]
    assert late["liquidations"]["count"] > now["liquidations"]["count"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flow": {"markets": {"binance:NOPE": {"accounts": 10}}, "dip": {"threshold": 0.02, "rate_per_s": 1.0}}},
         "flow.markets.binance:NOPE"),
        ({"flow": {"markets": {"binance:BTCUSDT": {"accounts": 10}}}}, "no rule"),
        ({"flow": {"markets": {"binance:BTCUSDT": {"accounts": 10}}, "dip": {"threshold": 1.5, "rate_per_s": 1.0}}},
         "threshold"),
        ({"flow": {"markets": {"binance:BTCUSDT": {"accounts": 10}}, "dip": {"threshold": 0.02, "rate_per_s": 1.0},
                   "start_s": -1.0}}, "start_s"),
    ],
)  # fmt: skip
def test_bad_flow_sections_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    from perpstress.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        BASE.with_(**change)
    assert message in str(err.value)


def test_flow_positions_are_closed_after_their_holding_time(tmp_path: Path) -> None:
    """With ``hold_median_s`` = 90 s and no spread, every dip buyer of the one-leg path starts selling its whole
    position 90 s after it bought (what the book does not take within the order's limit is tried again a minute
    later), so none is open at the end where without holding times they all are; money and
    open interest stay exact, checked every step."""
    shock = replay(tmp_path, "one", ONE_LEG)
    held = DIP_FLOW | {"hold_median_s": 90.0, "hold_sigma": 0.0}
    sim, s = simulate(BASE.with_(shock=shock, flow=held, engine__record_trades=True, engine__check_every_step=True))
    f = s["flow"]
    assert f["opened"]["dip"] > 20
    phase = sim.flow
    assert phase is not None
    start = int(sim.world.flow_pool_start[0])
    pool = np.arange(start, start + int(phase.used[0]))
    trades = sim.world.trades
    bought: dict[int, int] = {}
    first_sale: dict[int, int] = {}
    for a, t, lots in zip(trades["account"], trades["ts_ms"], trades["lots"], strict=True):
        if start <= a < start + pool.size:
            (bought if lots > 0 else first_sale).setdefault(int(a), int(t))
    end_ms = T0 + BASE.steps * 1000
    due = [a for a in pool.tolist() if bought[a] + 90_000 < end_ms - 1000]
    assert len(due) > 20
    delays = np.array([first_sale[a] - bought[a] for a in due])
    assert np.all((delays >= 90_000) & ((delays - 90_000) % 60_000 == 0))  # at 90 s, else at a retry a minute on
    assert np.mean(delays == 90_000) > 0.5
    settled = [a for a in due if bought[a] + 90_000 + 3 * 60_000 < end_ms - 1000]  # time for three retries
    assert len(settled) > 20
    assert np.all(sim.positions.size_lots[settled] == 0)
    assert f["closed"] >= len(settled)
    assert f["closed_usd"] > 0
    assert s["invariants"]["money_conservation_max_abs_error_usd"] <= 1e-13 * sim.value_start
    assert s["invariants"]["open_interest_max_imbalance"] == 0
    sim_kept, s_kept = simulate(BASE.with_(shock=shock, flow=DIP_FLOW))
    assert s_kept["flow"]["closed"] == 0
    phase_kept = sim_kept.flow
    assert phase_kept is not None
    kept = np.arange(start, start + int(phase_kept.used[0]))
    assert np.all(sim_kept.positions.size_lots[kept] > 0)


def test_holding_times_take_nothing_from_the_flows_own_stream(tmp_path: Path) -> None:
    """The holding times come from ``flow_hold``, not from the flow's stream: until the first close the run with
    holding times trades exactly as the run without them (the same orders, sizes, prices and accounts), although
    every position opened meanwhile drew its holding time."""
    shock = replay(tmp_path, "one", ONE_LEG)
    held = DIP_FLOW | {"hold_median_s": 120.0, "hold_sigma": 0.0}
    runs = [simulate(BASE.with_(shock=shock, flow=flow, engine__record_trades=True))[0] for flow in (held, DIP_FLOW)]
    start = int(runs[0].world.flow_pool_start[0])
    t = runs[0].world.trades
    first_close = min(ts for a, ts, lots in zip(t["account"], t["ts_ms"], t["lots"], strict=True)
                      if a >= start and lots < 0)  # fmt: skip
    before = [{k: np.asarray(r.world.trades[k])[np.asarray(r.world.trades["ts_ms"]) < first_close]
               for k in ("ts_ms", "market", "account", "lots", "price")} for r in runs]  # fmt: skip
    opened = np.asarray(before[0]["account"]) >= start
    assert np.unique(before[0]["account"][opened]).size > 20  # many holding times drawn before the first close
    for k in before[0]:
        np.testing.assert_array_equal(before[0][k], before[1][k])
