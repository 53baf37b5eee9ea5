"""Makers that lay their inventory off outside the venues (``makers.lay_off``): the share per step, the market's
outside account taking it, money and open interest exact, and the switch refused with a skew that fades."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.errors import ConfigError
from perpstress.mechanisms.agents.makers import MakersPhase

LAY_OFF = {"makers__lay_off": True, "makers__inventory_skew_permanent": 1.0, "makers__inventory_skew_half_life_s": 60.0}


def makers_phase(sim: Simulation) -> MakersPhase:
    phase = dict(sim.kernel.phases)["makers"]
    assert isinstance(phase, MakersPhase)
    return phase


def test_a_maker_lays_off_its_share_to_the_markets_outside_account_and_value_is_kept() -> None:
    """quickstart's BTC maker starts short. Handed long inventory that leaves it still short, it lays off its share
    ``trunc(inventory x (1 - 0.5 ** (1 / 60)))`` by unwinding its hedge outside (its start position moves; nothing
    trades on the venue). Handed enough to be long, it lays off the share at its fair value on the venue: its
    position shrinks by that, the market's absorber holds it, the record counts it, and the run's value and
    open-interest balance are unchanged."""
    sim = Simulation(Scenario.load("quickstart").with_(**LAY_OFF), scale=0.1)
    w, acc = sim.world, sim.accounting
    phase = makers_phase(sim)
    m = w.market_keys.index("binance:BTCUSDT")
    maker = int(next(a for a in w.maker_ids if w.positions.market[a] == m))
    i = int(np.flatnonzero(phase.maker_ids == maker)[0])
    start = int(phase.start_lots[i])
    assert start < -10_000
    noise = int(w.noise_ids[m])
    mark = float(w.markets.mark[m])
    fair = np.where(w.is_spot, w.fundamental, w.index_now).astype(np.float64)
    fair[m] = mark * 1.001  # laid off at the fair value, not the mark: the absorber's position carries the gap
    absorber = int(w.absorber_ids[m])

    def hand(lots: int) -> None:
        acc.trade(maker, -1, maker, lots, mark)
        acc.trade(noise, -1, noise, -lots, mark)

    rate = 1 - 0.5 ** (1 / 60)
    hand(10_000)  # still short: the share is laid off by unwinding the hedge outside, not on the venue
    phase.lay_off_inventory(fair)
    assert int(w.positions.size_lots[maker]) == start + 10_000
    assert int(w.positions.size_lots[absorber]) == 0
    assert int(phase.start_lots[i]) == start + int(np.trunc(10_000 * rate))
    start = int(phase.start_lots[i])
    hand(-2 * start)  # now long by about its start size
    value = sim.total_value()
    size = int(w.positions.size_lots[maker])
    held = size - start
    assert size > 0
    phase.lay_off_inventory(fair)
    share = int(np.trunc(held * rate))
    moved = min(share, size)
    assert moved > 0
    assert int(w.positions.size_lots[maker]) == size - moved
    assert int(w.positions.size_lots[absorber]) == moved
    assert int(w.positions.size_lots[maker] - phase.start_lots[i]) == held - share
    assert w.positions.entry_price[absorber] == pytest.approx(mark * 1.001, rel=1e-12)
    assert int(w.laid_off_lots[maker]) == -moved
    assert sim.total_value() == pytest.approx(value, rel=1e-12)
    assert sim.invariants.oi_imbalance() == 0


def test_a_run_with_makers_laying_off_keeps_money_and_oi_exact_and_absorbers_hold_what_was_laid_off() -> None:
    """quickstart's crash with the lay-off on, checked every step: money to within rounding, open interest exact;
    each market's absorber holds exactly what its makers laid off; the makers end holding less inventory than
    without it; and without the switch the run has no absorber."""
    base = Scenario.load("quickstart").with_(engine__check_every_step=True)
    on = Simulation(base.with_(**LAY_OFF), scale=0.1)
    s = on.run().summary
    assert s["invariants"]["money_conservation_max_abs_error_usd"] <= 1e-13 * on.value_start
    assert s["invariants"]["open_interest_max_imbalance"] == 0
    w = on.world
    laid = np.bincount(w.positions.market[w.maker_ids], weights=-w.laid_off_lots[w.maker_ids], minlength=w.markets.n)
    np.testing.assert_array_equal(w.positions.size_lots[w.absorber_ids], laid.astype(np.int64))
    assert np.abs(laid).sum() > 0
    off = Simulation(base, scale=0.1)
    off.run()
    assert off.world.absorber_ids.size == 0
    held_on = np.abs(w.positions.size_lots[w.maker_ids] - makers_phase(on).start_lots).sum()
    held_off = np.abs(off.world.positions.size_lots[off.world.maker_ids] - makers_phase(off).start_lots).sum()
    assert held_on < held_off


def test_lay_off_with_a_skew_that_fades_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        Scenario.load("quickstart").with_(makers__lay_off=True, makers__inventory_skew_permanent=0.5)
    assert "inventory_skew_permanent" in str(err.value)
