"""Counterfactual twins (perpstress.studies.attribution): the run without forced flow and the run whose makers never
withdraw share every random stream with the base, so they are the base, step for step, until the mechanism they
lack first acts; and they conserve money and balance open interest like every run."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.state.world import ABSORBER
from perpstress.sweep.grid import apply_cell

BASE = Scenario.load("quickstart")
SCALE = 0.2
NO_CASCADE = {"engine.forced_flow": "absorbed_at_mark"}
STEADY = {"makers.withdraws": False}


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[Simulation, object]]:
    out = {}
    for name, cell in (("base", {}), ("no-cascade", NO_CASCADE), ("steady", STEADY)):
        sim = Simulation(apply_cell(BASE, cell), scale=SCALE)
        out[name] = (sim, sim.run())
    return out


def first_step(ts_ms: list[int], sim: Simulation) -> int:
    return (min(ts_ms) - sim.scenario.ts_start_ms) // sim.scenario.step_ms


def diverges_at(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> int:
    """The first step at which any time series of the two runs differs (NaN equal to NaN)."""
    steps = next(iter(a.values())).shape[0]
    for t in range(steps):
        for name in a:
            if not np.array_equal(a[name][t], b[name][t], equal_nan=True):
                return t
    return steps


def test_the_twin_without_forced_flow_is_the_base_until_the_first_liquidation(runs) -> None:  # type: ignore[no-untyped-def]
    (base, b), (twin, t) = runs["base"], runs["no-cascade"]
    first = first_step(b.liquidations["ts_ms"], base)
    assert first == first_step(t.liquidations["ts_ms"], twin)  # the same accounts fail first
    at = diverges_at(b.timeseries, t.timeseries)
    assert at >= first  # identical until the first liquidation's step ...
    assert at < b.timeseries["mark"].shape[0]  # ... and not after: the forced flow matters
    kinds = set(b.liquidations["kind"])
    assert "book" in kinds  # the base's liquidations trade on the books
    assert twin.forced.absorbed_usd.sum() > 0  # the twin's are absorbed


def test_the_absorbers_hold_what_the_books_would_have_taken_and_nothing_reaches_the_books(runs) -> None:  # type: ignore[no-untyped-def]
    twin, _ = runs["no-cascade"]
    w = twin.world
    assert w.absorber_ids.size == w.markets.n
    assert (w.kind[w.absorber_ids] == ABSORBER).all()
    held = w.positions.size_lots[w.absorber_ids]
    assert (held != 0).any()
    base, _ = runs["base"]
    assert base.world.absorber_ids.size == 0  # the base has none: its arrays are as they always were


def test_makers_that_never_withdraw_are_the_base_until_a_maker_would_have_withdrawn(runs) -> None:  # type: ignore[no-untyped-def]
    (_, b), (steady, s) = runs["base"], runs["steady"]
    at = diverges_at(b.timeseries, s.timeseries)
    assert 0 < at < b.timeseries["mark"].shape[0]
    assert all(m.active for m in steady.makers.state)  # none ever withdrew


@pytest.mark.parametrize("name", ["no-cascade", "steady"])
def test_twins_conserve_money_and_balance_open_interest(runs, name: str) -> None:  # type: ignore[no-untyped-def]
    sim, tables = runs[name]
    inv = tables.summary["invariants"]
    oi = float(np.nansum(tables.timeseries["open_interest_usd"][0]))
    assert inv["money_conservation_max_abs_error_usd"] <= 1e-6 * max(oi / 1e9, 1.0)
    assert inv["open_interest_max_imbalance"] == 0
    assert inv["recounts"] == sim.scenario.steps  # the suite recounts every step


def test_an_absorbed_order_fills_whole_at_mark_within_its_limit_else_not_at_all() -> None:
    sim = Simulation(apply_cell(BASE, NO_CASCADE).with_(duration_s=5), scale=0.05)
    w, forced = sim.world, sim.forced
    m = 0
    mark = float(w.markets.mark[m])
    absorber = int(w.absorber_ids[m])
    books_before = w.books.best_bid_ask()
    fill = forced.execute(m, -7, mark * 0.99, False, -1)  # a sell limited below the mark: fills at the mark
    assert (fill.lots, fill.average_price) == (-7, mark)
    assert w.positions.size_lots[absorber] == 7  # the absorber bought it
    assert forced.execute(m, -3, mark * 1.01, False, -1).lots == 0  # limited above the mark: no fill
    assert forced.execute(m, 5, mark * 0.99, True, -1).lots == 0  # a buy limited below the mark: none
    for a, b in zip(books_before, w.books.best_bid_ask(), strict=True):
        np.testing.assert_array_equal(a, b, strict=True)  # the books never saw any of it
