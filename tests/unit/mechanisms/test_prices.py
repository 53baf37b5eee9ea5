"""Mark engine: each venue's method, its moving averages and update cadence."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.calculator import load_venue
from perpstress.mechanisms.prices import MarkEngine

VENUES = [load_venue(v) for v in ("binance", "okx", "dydx", "hyperliquid")]


def run(engine: MarkEngine, steps: int, index: float, bid: float, ask: float, last: float, rate: float = 0.0):
    n = 4
    arr = lambda x: np.full(n, x, dtype=float)  # noqa: E731
    for t in range(steps):
        out = engine.step(t, arr(index), arr(bid), arr(ask), arr(last), arr(rate), arr(3600.0), arr(np.nan))
    return out


def test_oracle_venues_mark_at_the_index() -> None:
    engine = MarkEngine(VENUES, [0, 1, 2, 3], 1.0)
    marks = run(engine, 5, 100.0, 101.0, 101.2, 101.1)
    assert marks[2] == 100.0  # dYdX marks at the oracle


def test_binance_median_of_three_with_a_30_second_basis_average() -> None:
    engine = MarkEngine(VENUES, [0, 1, 2, 3], 1.0)
    # A book 1 % above the index: after 30 s the MA basis is fully +1; P1 = index (rate 0); last = 101.1.
    marks = run(engine, 40, 100.0, 100.9, 101.1, 101.1)
    assert marks[0] == pytest.approx(101.0)  # median(100, 101, 101.1)


def test_okx_follows_the_basis_moving_average_gradually() -> None:
    engine = MarkEngine(VENUES, [0, 1, 2, 3], 1.0)
    run(engine, 60, 100.0, 99.9, 100.1, 100.0)  # a minute at zero basis
    marks = run(engine, 30, 100.0, 100.9, 101.1, 101.0)  # then half a minute at +1
    assert marks[1] == pytest.approx(100.5, abs=0.02)  # the 60-s average is half way


def test_hyperliquid_updates_every_three_seconds_and_keeps_the_previous_mark() -> None:
    engine = MarkEngine(VENUES, [0, 1, 2, 3], 1.0)
    run(engine, 3, 100.0, 99.9, 100.1, 100.0)
    first = engine.mark[3]
    n = 4
    engine.step(3, np.full(n, 90.0), np.full(n, 89.9), np.full(n, 90.1), np.full(n, 90.0), np.zeros(n),
                np.full(n, 3600.0), np.full(n, np.nan))  # fmt: skip
    assert engine.mark[3] < first  # step 3 is an update step
    assert engine.previous[3] == pytest.approx(first)
    before = engine.mark[3]
    engine.step(4, np.full(n, 80.0), np.full(n, 79.9), np.full(n, 80.1), np.full(n, 80.0), np.zeros(n),
                np.full(n, 3600.0), np.full(n, np.nan))  # fmt: skip
    assert engine.mark[3] == before  # not an update step: the mark holds
