"""The crash measures shared by the real-data derivation and the run comparison."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.validation.metrics import (
    depth_episode,
    level_before,
    low_time,
    max_drawdown,
    pnl_taken,
    rolling_median,
    share_in,
    snapshots,
    volume_onset,
)


def test_max_drawdown_is_from_the_running_peak() -> None:
    ts = np.arange(7) * 1000
    price = np.array([100.0, 120.0, 90.0, 130.0, 104.0, np.nan, 110.0])
    dd = max_drawdown(ts, price)
    assert dd.fraction == pytest.approx(0.25)  # 120 -> 90 beats 130 -> 104 (20 %)
    assert (dd.peak, dd.peak_ts_ms, dd.low, dd.low_ts_ms) == (120.0, 1000, 90.0, 2000)
    assert max_drawdown(ts[:2], price[:2]).fraction == 0.0
    with pytest.raises(ValueError, match="no finite prices"):
        max_drawdown(ts[:1], [np.nan])


def test_low_time_skips_missing_prices() -> None:
    assert low_time([0, 1, 2, 3], [np.nan, 5.0, 3.0, 3.0]) == (3.0, 2)


def test_snapshots_take_the_last_value_at_or_before_each_grid_time() -> None:
    ts = np.array([0, 10_000, 29_000, 31_000, 65_000])
    grid, values = snapshots(ts, [1.0, 2.0, 3.0, 4.0, 5.0], every_ms=30_000)
    assert grid.tolist() == [0, 30_000, 60_000]
    assert values.tolist() == [1.0, 3.0, 4.0]


def test_rolling_median_window_is_left_open() -> None:
    ts = np.arange(5) * 60_000
    out = rolling_median(ts, [1.0, 9.0, 2.0, 8.0, 3.0], window_ms=120_000)  # (t - 2 min, t]: two samples
    assert out.tolist() == [1.0, 5.0, 5.5, 5.0, 5.5]


def test_depth_episode() -> None:
    minutes = np.arange(0, 120, 0.5)
    depth = np.where(minutes < 20, 300.0, np.where(minutes < 40, 30.0, 200.0))
    ep = depth_episode(minutes * 60_000, depth, shock_ts_ms=20 * 60_000)
    assert (ep.pre_level, ep.pre_samples, ep.trough, ep.trough_ts_ms) == (300.0, 40, 30.0, 20 * 60_000)
    assert ep.collapse == pytest.approx(0.9)
    # the 5-minute median (10 half-minute samples) is 200 once six samples are: 40 + 2.5 minutes
    assert ep.recovery_minutes == pytest.approx(22.5)
    never = depth_episode(minutes * 60_000, np.where(minutes < 20, 300.0, 30.0), shock_ts_ms=20 * 60_000)
    assert never.recovered_ts_ms is None
    assert never.recovery_minutes is None
    with pytest.raises(ValueError, match="before the shock"):
        depth_episode(minutes * 60_000, depth, shock_ts_ms=0)


def test_volume_onset_finds_the_first_spike() -> None:
    volume = np.array([10.0] * 25 + [11.0, 500.0, 20.0, 900.0])
    assert volume_onset(np.arange(volume.size) * 60_000, volume) == 26 * 60_000
    assert volume_onset(np.arange(25) * 60_000, np.ones(25)) is None


def test_share_in_a_group() -> None:
    assert share_in([30.0, 50.0, 20.0], [False, True, True]) == pytest.approx(0.7)
    assert share_in([1.0, 3.0], [True, True]) == 1.0
    assert share_in([0.0, 0.0], [True, False]) is None  # nothing to share
    assert share_in([], []) is None


def test_pnl_taken_counts_winners_in_profit_only() -> None:
    np.testing.assert_array_equal(pnl_taken([12.5, -4.0, 0.0]), [12.5, 0.0, 0.0])


def test_level_before_a_time() -> None:
    ts, oi = [0, 1000, 2000, 3000], [10.0, 11.0, 12.0, 13.0]
    assert level_before(ts, oi, 2000) == (11.0, 1000)  # strictly before
    assert level_before(ts, oi, 2500) == (12.0, 2000)
    assert level_before(ts, oi, 0) == (10.0, 0)  # nothing before: the first
    assert level_before(ts, oi, None) == (10.0, 0)
    with pytest.raises(ValueError, match="no samples"):
        level_before([], [], 5)
