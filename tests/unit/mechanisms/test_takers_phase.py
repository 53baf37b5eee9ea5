"""Noise takers on the kit's World: orders hit the makers' ladders, money and open interest stay balanced, and the
orders are the takers stream's draws only."""

from __future__ import annotations

import numpy as np

from kit import BTC, crowded_long_world
from perpstress.mechanisms.agents.takers import TakersPhase


def run_takers(seed: int, steps: int = 20) -> tuple[np.ndarray, float, float, int]:
    kit = crowded_long_world()
    w = kit.world
    kit.quote()
    invariants = kit.invariants()
    phase = TakersPhase(w, kit.execution, np.random.default_rng(seed))
    for step in range(steps):
        phase(kit.clock(step))
    return (
        w.positions.size_lots[w.noise_ids].copy(),
        invariants.value_start,
        invariants.total_value(),
        (invariants.oi_imbalance()),
    )


def test_takers_trade_against_the_books_conserving_money_and_open_interest() -> None:
    noise, value_start, value_end, imbalance = run_takers(seed=3)
    assert noise[BTC] != 0  # the noise account holds what its orders bought and sold
    assert imbalance == 0
    assert abs(value_end - value_start) < 1e-6


def test_the_same_stream_gives_the_same_orders_and_another_seed_others() -> None:
    a, _, _, _ = run_takers(seed=3)
    b, _, _, _ = run_takers(seed=3)
    c, _, _, _ = run_takers(seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_phase_clears_last_trade_first() -> None:
    kit = crowded_long_world()
    w = kit.world
    kit.quote()
    w.last_trade[:] = 1.0
    rng = np.random.default_rng(0)
    phase = TakersPhase(w, kit.execution, rng)
    phase.rates[:] = 0.0  # no orders this step
    phase(kit.clock())
    assert np.isnan(w.last_trade).all()
