"""The public liquidation feed rule on hand-made event tables, and against a brute-force reading of the rule.

Binance's stream page states the rule this models: "For each symbol, only the latest one liquidation order within
1000ms will be pushed as the snapshot" (developers.binance.com, USDS-M futures, Liquidation Order Streams).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.rules.feed import reported_mask, window_sums

T0 = 1_760_130_000_000  # 2025-10-10 21:00:00 UTC, a whole second


def test_several_in_one_second_and_symbol_on_a_throttled_venue_show_one_the_latest() -> None:
    market = [0, 0, 0, 0]
    ts = [T0, T0, T0 + 400, T0 + 999]
    shown = reported_mask(market, ts, [1000] * 4)
    assert shown.tolist() == [False, False, False, True]


def test_rows_of_one_step_are_ordered_by_processing_the_last_one_is_latest() -> None:
    # one 1-s step: every row has the step's timestamp; the latest is the last processed, wherever it sits
    market = [3, 5, 3, 5, 3]
    shown = reported_mask(market, [T0] * 5, [1000] * 5)
    assert shown.tolist() == [False, False, False, True, True]


def test_each_symbol_and_each_second_has_its_own_latest() -> None:
    market = [0, 1, 0, 0, 1]
    ts = [T0, T0, T0 + 999, T0 + 1000, T0 + 2500]
    shown = reported_mask(market, ts, [1000] * 5)
    assert shown.tolist() == [False, True, True, True, True]


def test_an_unthrottled_venue_shows_every_order() -> None:
    market = [0, 0, 0, 1, 1]
    shown = reported_mask(market, [T0] * 5, [0] * 5)
    assert shown.all()


def test_venues_with_different_rules_in_one_table() -> None:
    # market 0 on a throttled venue, market 1 on one that shows every order, interleaved in one step
    market = [0, 1, 0, 1, 0, 1]
    interval = [1000, 0, 1000, 0, 1000, 0]
    shown = reported_mask(market, [T0] * 6, interval)
    assert shown.tolist() == [False, True, False, True, True, True]


def test_a_longer_interval_merges_seconds() -> None:
    market = [0, 0, 0]
    ts = [T0, T0 + 1000, T0 + 5000]
    assert reported_mask(market, ts, [5000] * 3).tolist() == [False, True, True]
    assert reported_mask(market, ts, [1000] * 3).tolist() == [True, True, True]


def test_no_rows() -> None:
    assert reported_mask([], [], []).size == 0


def test_mismatched_or_negative_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="one length"):
        reported_mask([0, 1], [T0], [1000, 1000])
    with pytest.raises(ValueError, match=">= 0"):
        reported_mask([0], [T0], [-1])


def brute_force(market: list[int], ts: list[int], interval: list[int]) -> list[bool]:
    """A row is shown when its venue shows every order, or when no later row shares its market and window."""
    out = []
    for i in range(len(market)):
        if interval[i] == 0:
            out.append(True)
            continue
        later = any(
            market[j] == market[i] and ts[j] // interval[j] == ts[i] // interval[i] for j in range(i + 1, len(market))
        )
        out.append(not later)
    return out


rows = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5_000)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(rows)
def test_matches_the_brute_force_reading(data: list[tuple[int, int]]) -> None:
    # a market's venue has one interval: even markets are on a throttled venue, odd ones on one that shows all
    market = [m for m, _ in data]
    interval = [1000 if m % 2 == 0 else 0 for m in market]
    ts = sorted(T0 + t for _, t in data)  # event tables are in time order
    shown = reported_mask(market, ts, interval)
    assert shown.tolist() == brute_force(market, ts, interval)
    throttled = np.asarray(interval) > 0
    keys = {(m, t // 1000) for m, t, i in zip(market, ts, interval, strict=True) if i}
    assert int(shown[throttled].sum()) == len(keys)  # exactly one per market and second


def test_window_sums_count_and_add_per_group_and_minute() -> None:
    group = [0, 1, 0, 0]
    ts = [T0 + 5_000, T0 + 59_999, T0 + 60_000, T0 + 180_000]
    starts, counts, sums = window_sums(group, ts, [1.0, 2.0, 4.0, 8.0], 2, T0, T0 + 180_000, 60_000)
    assert starts.tolist() == [T0, T0 + 60_000, T0 + 120_000, T0 + 180_000]
    assert counts.tolist() == [[1, 1], [1, 0], [0, 0], [1, 0]]
    assert sums.tolist() == [[1.0, 2.0], [4.0, 0.0], [0.0, 0.0], [8.0, 0.0]]
    with pytest.raises(ValueError, match="outside"):
        window_sums([0], [T0 + 240_000], [1.0], 1, T0, T0 + 180_000, 60_000)
