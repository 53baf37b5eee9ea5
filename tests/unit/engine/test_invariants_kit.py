"""The invariants on the kit's World: money counted exactly, open interest balanced, hidden bad debt caught."""

from __future__ import annotations

import numpy as np
import pytest

from kit import BTC, crowded_long_world


def test_money_is_conserved_by_trades_and_a_leak_is_measured() -> None:
    kit = crowded_long_world()
    w = kit.world
    kit.quote()
    invariants = kit.invariants()
    noise = int(w.noise_ids[BTC])
    kit.execution.taker_trade(noise, BTC, 500, float(w.markets.mark[BTC]) * 1.02)  # buys through the asks
    assert w.positions.size_lots[noise] == 500
    assert invariants.total_value() == pytest.approx(invariants.value_start, abs=1e-6)
    w.accounts.wallet[noise] += 10.0  # money from nowhere
    invariants.check(0)
    assert invariants.max_value_error == pytest.approx(10.0)


def test_open_interest_imbalance_is_counted_in_lots() -> None:
    kit = crowded_long_world()
    invariants = kit.invariants()
    assert invariants.oi_imbalance() == 0
    kit.world.positions.size_lots[int(kit.longs[0])] += 7
    assert invariants.oi_imbalance() == 7


def test_a_closed_crowd_unit_left_with_negative_equity_stops_the_run() -> None:
    kit = crowded_long_world()
    w = kit.world
    invariants = kit.invariants()
    a = int(next(a for a in kit.longs if np.isnan(w.positions.isolated_margin[a])))
    kit.accounting.close(a, -1, a, -int(w.positions.size_lots[a]), float(w.positions.entry_price[a]))
    w.accounts.wallet[a] = -5.0
    with pytest.raises(AssertionError, match="unrecorded negative equity"):
        invariants.check_no_hidden_bad_debt(3)


def test_the_recount_runs_at_its_cadence_and_at_the_last_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERPSTRESS_CHECK_EVERY_STEP")  # the suite's every-step mode (tests/conftest.py)
    kit = crowded_long_world()
    invariants = kit.invariants()
    steps = kit.world.scenario.steps
    assert invariants.due(0)
    assert invariants.due(steps - 1)
    assert invariants.every > 1
    assert not invariants.due(1)
    kit.world.accounts.wallet[int(kit.longs[0])] += 1.0
    invariants.check(1)  # not due: the leak is not counted yet
    assert invariants.max_value_error == 0.0
    invariants.check(invariants.every)
    assert invariants.max_value_error == pytest.approx(1.0)


def test_every_step_mode_recounts_every_step() -> None:
    invariants = crowded_long_world().invariants()  # the suite runs with PERPSTRESS_CHECK_EVERY_STEP=1
    assert invariants.every == 1
    assert all(invariants.due(t) for t in range(5))
