"""ADL allocation: each rule closes whom its definition says, never more than a position, never raising exposure.

Small hand-made books: three winners on the side opposite a bankrupt long of 10 units.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.rules.adl import (
    allocate_capped_pro_rata,
    allocate_queue,
    allocate_random_scan,
    allocate_risk_aware_pro_rata,
    allocate_wealth_pro_rata,
    queue_order,
    socialised_loss_per_unit,
    water_fill,
)

SIZES = np.array([8.0, 4.0, 20.0])
PROFITS = np.array([1000.0, 3000.0, 1000.0])
LEVERAGE = np.array([2.0, 10.0, 5.0])


def test_queue_closes_the_top_ranked_first() -> None:
    scores = np.array([0.5, 2.0, 1.0])
    take, left = allocate_queue(10.0, SIZES, queue_order(scores, np.ones(3, bool)))
    # Rank: account 1 (4 units, all), then account 2 (6 of its 20); account 0 untouched.
    np.testing.assert_allclose(take, [0.0, 4.0, 6.0])
    assert left == 0.0


def test_queue_reports_what_it_cannot_cover() -> None:
    take, left = allocate_queue(40.0, SIZES, [0, 1, 2])
    np.testing.assert_allclose(take, SIZES)
    assert left == pytest.approx(8.0)


def test_random_scan_wraps_from_its_start_and_stops_at_the_account_limit() -> None:
    take, left = allocate_random_scan(10.0, SIZES, start=2, max_accounts=3)
    np.testing.assert_allclose(take, [0.0, 0.0, 10.0])  # account 2 alone covers it
    take, left = allocate_random_scan(30.0, SIZES, start=1, max_accounts=2)
    np.testing.assert_allclose(take, [0.0, 4.0, 20.0])  # 1 then 2; the limit stops before wrapping to 0
    assert left == pytest.approx(6.0)


def test_wealth_pro_rata_is_proportional_to_profit() -> None:
    take, left = allocate_wealth_pro_rata(10.0, SIZES, PROFITS)
    # Profits 1:3:1 -> 2, 6, 2 but account 1 holds only 4: its excess 2 is spread 1:1 over the others.
    np.testing.assert_allclose(take, [3.0, 4.0, 3.0])
    assert left == 0.0


def test_capped_pro_rata_never_takes_more_than_the_cap() -> None:
    take, left = allocate_capped_pro_rata(10.0, SIZES, PROFITS, max_haircut=0.25)
    caps = 0.25 * SIZES  # 2, 1, 5
    assert np.all(take <= caps + 1e-12)
    np.testing.assert_allclose(take, [2.0, 1.0, 5.0])
    assert left == pytest.approx(2.0)  # the caps cannot absorb 10


def test_risk_aware_pro_rata_takes_more_from_higher_leverage() -> None:
    take, _ = allocate_risk_aware_pro_rata(6.0, SIZES, np.array([1000.0, 1000.0, 1000.0]), LEVERAGE, 1.0)
    # Equal profits: weights follow leverage squared (4, 100, 25): account 1 hits its size, the rest 4:25.
    assert take[1] == pytest.approx(4.0)
    assert take[2] / take[0] == pytest.approx(25 / 4)
    assert take.sum() == pytest.approx(6.0)


def test_socialised_loss_is_per_unit_of_all_open_size() -> None:
    # Drift: $1,000 over 60 long and 40 short base units: every unit pays $10.
    assert socialised_loss_per_unit(1000.0, 60.0, -40.0) == pytest.approx(10.0)
    assert socialised_loss_per_unit(1000.0, 0.0, 0.0) == 0.0


def test_weights_near_the_smallest_float_still_fill_the_capped_account_first() -> None:
    """Equal weights of 5e-324 (the smallest float): the account capped at 3 reaches its cap first, the other takes
    the rest (dividing the weights by the caps underflowed both to zero, and 0.5 of the 7 was lost)."""
    take, left = allocate_wealth_pro_rata(7.0, np.array([1000.0, 3.0]), np.array([5e-324, 5e-324]))
    assert take.tolist() == [4.0, 3.0]
    assert left == 0.0


@settings(max_examples=300, deadline=None)
@given(
    quantity=st.floats(0, 1e4),
    data=st.lists(st.tuples(st.floats(0.0, 1e3), st.floats(0.0, 1e3), st.floats(1.0, 100.0)), min_size=1, max_size=30),
    cap=st.floats(0.01, 1.0),
)
def test_every_rule_stays_within_positions_and_covers_what_it_can(quantity, data, cap) -> None:
    sizes = np.array([d[0] for d in data])
    profits = np.array([d[1] for d in data])
    lev = np.array([d[2] for d in data])
    results = {
        "queue": allocate_queue(quantity, sizes, np.argsort(-profits, kind="stable")),
        "scan": allocate_random_scan(quantity, sizes, start=len(data) // 2, max_accounts=len(data)),
        "wealth": allocate_wealth_pro_rata(quantity, sizes, profits),
        "capped": allocate_capped_pro_rata(quantity, sizes, profits, cap),
        "risk": allocate_risk_aware_pro_rata(quantity, sizes, profits, lev, cap),
    }
    for name, (take, left) in results.items():
        assert np.all(take >= 0), name
        assert np.all(take <= sizes * (1 + 1e-12) + 1e-12), name  # never more than the position: exposure only falls
        assert take.sum() + left == pytest.approx(quantity, rel=1e-9, abs=1e-6), name
    for name in ("wealth", "capped", "risk"):  # pro-rata rules touch only winners
        take, _ = results[name]
        assert np.all(take[profits <= 0] == 0), name


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.floats(0.1, 100.0),
    weights=st.lists(st.floats(0.1, 10.0), min_size=2, max_size=12),
)
def test_water_fill_is_proportional_below_the_caps(quantity, weights) -> None:
    w = np.array(weights)
    caps = np.full(w.size, np.inf)
    take, left = water_fill(quantity, w, caps)
    assert left == 0.0
    np.testing.assert_allclose(take / w, quantity / w.sum(), rtol=1e-9)


def test_infinite_weights_give_up_first_and_equally() -> None:
    # a winner at infinite leverage (no equity cushion) under the risk-aware rule: NaN shares before the fix
    take, left = water_fill(3.0, np.array([np.inf, 1.0, np.inf, 2.0]), np.array([1.0, 5.0, 4.0, 5.0]))
    assert left == 0.0
    np.testing.assert_allclose(take, [1.0, 0.0, 2.0, 0.0])
    take, left = water_fill(9.0, np.array([np.inf, 1.0, np.inf, 2.0]), np.array([1.0, 5.0, 4.0, 5.0]))
    np.testing.assert_allclose(take, [1.0, 4.0 / 3.0, 4.0, 8.0 / 3.0])
    assert left == 0.0
    assert np.isfinite(take).all()
