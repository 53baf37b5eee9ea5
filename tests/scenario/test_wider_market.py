"""The wider market's answer to the venues' net taker flow (``[wider_market]``): each asset's log impact is
``impact_per_open_interest * permanent / OI`` times the net taker flow (base units, buys positive) into its books,
read here off the recorded fills, independently of the mechanism's own reading of the book owners' positions; the
fundamental value is the path times ``exp`` of it; forced flow an absorber fills at mark is not counted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perpstress.config.scenario import Scenario
from perpstress.engine.simulation import Simulation

KAPPA, PERMANENT = 1.0, 0.6


def run(**engine: Any) -> Simulation:
    base = Scenario.load("two-venue-demo").with_(duration_s=300)
    scenario = base.with_(
        wider_market={"impact_per_open_interest": KAPPA, "permanent": PERMANENT},
        engine={**base.engine.model_dump(), "record_trades": True, **engine},
    )
    sim = Simulation(scenario, scale=0.25)
    sim.run()
    return sim


def open_interest_base(sim: Simulation) -> np.ndarray:
    """Per asset (path column): long open interest over the perpetuals at the start, base units."""
    w = sim.world
    first = Simulation(sim.scenario, scale=0.25).world  # the same build, before any step
    pos = first.positions
    out = np.zeros(int(w.asset_of.max()) + 1)
    long = ~first.is_spot[pos.market] & (pos.size_lots > 0)
    np.add.at(out, first.asset_of[pos.market[long]], pos.size_lots[long] * first.markets.lot_size[pos.market[long]])
    return out


def flow_from_fills(sim: Simulation) -> np.ndarray:
    """Per asset: net taker flow over the run's recorded fills, base units (buys positive)."""
    w = sim.world
    market = np.asarray(w.trades["market"], dtype=np.int64)
    lots = np.asarray(w.trades["lots"], dtype=np.float64)
    out = np.zeros(int(w.asset_of.max()) + 1)
    np.add.at(out, w.asset_of[market], lots * w.markets.lot_size[market])
    return out


@pytest.fixture(scope="module")
def book_run() -> tuple[Simulation, np.ndarray]:
    """The run, and the log impact its last step's fundamental value was set with (before the last fills)."""
    sim = run()
    wider = sim.exogenous.wider
    assert wider is not None
    at_last_step = wider.log_impact.copy()
    wider.update()  # the last step's fills, read as the next step would
    return sim, at_last_step


def test_the_log_impact_is_the_fills_net_flow_over_open_interest(book_run: tuple[Simulation, np.ndarray]) -> None:
    sim = book_run[0]
    wider = sim.exogenous.wider
    assert wider is not None
    oi = open_interest_base(sim)
    flow = flow_from_fills(sim)
    expected = np.where(oi > 0, KAPPA * PERMANENT * flow / np.where(oi > 0, oi, 1.0), 0.0)
    assert np.abs(flow[oi > 0]).max() > 0  # the crash traded
    np.testing.assert_allclose(wider.log_impact, expected, rtol=1e-9, atol=1e-15)
    btc = sim.world.paths.asset("BTC")
    assert wider.log_impact[btc] < 0  # the crash's net flow sold BTC: the wider market stands lower


def test_the_fundamental_value_is_the_path_times_the_impact(book_run: tuple[Simulation, np.ndarray]) -> None:
    sim, at_last_step = book_run
    w = sim.world
    path = w.paths.index[w.step, w.asset_of]
    assert np.any(at_last_step[w.asset_of] != 0)
    np.testing.assert_allclose(w.fundamental, path * np.exp(at_last_step[w.asset_of]), rtol=1e-12)


def test_flow_an_absorber_fills_never_moves_the_wider_market() -> None:
    sim = run(forced_flow="absorbed_at_mark")
    wider = sim.exogenous.wider
    assert wider is not None
    wider.update()
    absorbed = sim.forced.absorbed_usd  # type: ignore[union-attr]
    assert absorbed.sum() > 0  # forced orders were sent, and absorbed
    oi = open_interest_base(sim)
    expected = np.where(oi > 0, KAPPA * PERMANENT * flow_from_fills(sim) / np.where(oi > 0, oi, 1.0), 0.0)
    np.testing.assert_allclose(wider.log_impact, expected, rtol=1e-9, atol=1e-15)


def test_no_section_leaves_the_fundamental_on_its_path() -> None:
    base = Scenario.load("two-venue-demo").with_(duration_s=60)
    sim = Simulation(base, scale=0.25)
    sim.run()
    assert sim.exogenous.wider is None
    w = sim.world
    np.testing.assert_array_equal(w.fundamental, w.paths.index[w.step, w.asset_of])
