"""The within-step cascade on the kit's crowded long book: a fall liquidates exactly the under-margined longs,
rounds stop once nothing fires, money and open interest stay balanced."""

from __future__ import annotations

import numpy as np
import pytest

from kit import BTC, crowded_long_world
from perpstress.mechanisms.agents.crowd import MarginMonitor


def test_a_calm_step_liquidates_nothing() -> None:
    kit = crowded_long_world()
    kit.quote()
    cascade, liquidation, adl, stops = kit.cascade()
    cascade(kit.clock(1))
    assert liquidation.record.lots == []
    assert adl.record.lots == []
    assert stops.stops["count"] == 0


def test_a_fall_liquidates_the_levered_longs_and_leaves_nobody_liquidatable() -> None:
    kit = crowded_long_world()
    w = kit.world
    kit.quote()
    invariants = kit.invariants()
    cascade, liquidation, _, stops = kit.cascade()
    lev = np.linspace(5.0, 50.0, len(kit.longs))
    has_stop = np.isfinite(w.stop_price[kit.longs])
    n_stops = int(np.isfinite(w.stop_price).sum())  # BTC's and HIVE's (HIVE falls 5 % too)
    kit.move(-0.05)  # -5 %: every long above ~19x is past its maintenance margin, every stop (-2 %) past its price
    cascade(kit.clock(1))
    liquidated = set(liquidation.record.account)
    assert {int(a) for a in kit.longs[(lev >= 25) & ~has_stop]} <= liquidated
    assert stops.stops["count"] == n_stops  # a stop closes its position before the margin check sees it
    assert (w.positions.size_lots[kit.longs[(lev >= 25) | has_stop]] == 0).all()
    assert not {int(a) for a in kit.longs[lev <= 10]} & liquidated
    assert all(side > 0 for side in liquidation.record.side)  # longs only: the crowd is long
    still_open = kit.longs[w.positions.size_lots[kit.longs] != 0].astype(np.int64)
    assert MarginMonitor(w).liquidatable(still_open) == []  # the cascade ran until nothing was left to liquidate
    assert invariants.oi_imbalance() == 0
    assert invariants.total_value() == pytest.approx(invariants.value_start, abs=1e-6)
    invariants.check_no_hidden_bad_debt(1)


def test_a_liquidated_maker_has_its_orders_cancelled_first() -> None:
    kit = crowded_long_world()
    w = kit.world
    kit.quote()
    cascade, liquidation, _, _ = kit.cascade()
    maker = int(kit.makers[0])
    assert any(owner == maker for *_, owner in w.books.rows(BTC))
    w.accounts.wallet[maker] = -1e9  # hopelessly under water
    cascade(kit.clock(1))
    assert maker in liquidation.record.account
    assert not any(owner == maker for *_, owner in w.books.rows(BTC))
