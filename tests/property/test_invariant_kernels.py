"""The invariants' one-pass recount (:func:`recount_positions`) against its plain twin, bit for bit, and both against
the NumPy expressions the invariants were first written in (PnL at mark by ``np.where``, ``np.nan_to_num`` of the
isolated margins, ``np.bincount`` of the lots, boolean masks for hidden bad debt)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.engine.invariants import HIDDEN_DEBT_TOLERANCE, _recount_positions_py, recount_positions

SETTINGS = settings(max_examples=200, deadline=None)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Positions over a few markets (some spot), long, short and closed, cross and isolated (an infinite margin
    now and then), crowd or not, wallets around zero."""
    n = draw(st.integers(0, 60))
    n_m = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    market = rng.integers(0, n_m, n).astype(np.int32)
    size = rng.integers(-(10**6), 10**6, n) * (rng.random(n) < 0.7)
    entry = rng.lognormal(3.0, 3.0, n)
    iso = np.where(rng.random(n) < 0.5, np.nan, rng.normal(0.0, 100.0, n))
    iso[rng.random(n) < 0.05] = np.inf
    iso[rng.random(n) < 0.05] = -np.inf
    crowd = rng.random(n) < 0.8
    wallet = rng.normal(0.0, 10.0, n) * np.where(rng.random(n) < 0.5, 1e-7, 1.0)
    lot = np.array([draw(st.sampled_from((1e-4, 1e-3, 0.01, 1.0, 10.0))) for _ in range(n_m)])
    mark = rng.lognormal(3.0, 3.0, n_m)
    is_spot = rng.random(n_m) < 0.3
    return market, size.astype(np.int64), entry, iso, crowd, wallet, lot, mark, is_spot


def outputs(world: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Fresh output arrays (filled with a value no kernel writes) for ``world``."""
    n, n_m = world[0].size, world[6].size
    return np.full(n, -7.0), np.full(n, -7.0), np.zeros(n_m, dtype=np.int64), np.zeros(n_m, dtype=np.int64)


@SETTINGS
@given(worlds())
def test_recount_positions(world: tuple[np.ndarray, ...]) -> None:
    compiled, plain = outputs(world), outputs(world)
    hidden = recount_positions(*world, *compiled)
    assert _recount_positions_py(*world, *plain) == hidden
    for a, b in zip(compiled, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    market, size, entry, iso_margin, crowd, wallet, lot, mark, is_spot = world
    upnl, iso, net, longs = compiled
    spot = is_spot[market]
    base = size * lot[market]
    np.testing.assert_array_equal(upnl, np.where(spot, -base * entry, base * (mark[market] - entry)))
    np.testing.assert_array_equal(iso, np.nan_to_num(iso_margin))
    weights = size.astype(np.float64)
    np.testing.assert_array_equal(net, np.bincount(market, weights=weights, minlength=lot.size).astype(np.int64))
    np.testing.assert_array_equal(
        longs, np.bincount(market, weights=np.maximum(weights, 0), minlength=lot.size).astype(np.int64)
    )
    closed = size == 0
    isolated = ~np.isnan(iso_margin)
    bad_iso = crowd & closed & isolated & (iso_margin < -HIDDEN_DEBT_TOLERANCE)
    bad_cross = crowd & closed & ~isolated & (wallet < -HIDDEN_DEBT_TOLERANCE)
    assert hidden == int(bad_iso.sum() + bad_cross.sum())
