"""fold_triggers: a position's band tightened to its stop and its top-up trigger, compiled and plain, against a
per-position reference written from the rule (the liquidation-price solve with maintenance scaled by 1 / ratio)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.mechanisms.margin_kernels import _liquidation_price_py, fold_triggers, fold_triggers_py

CAPS = np.array([50_000.0, 250_000.0, 1e6, np.inf])
MMR = np.array([0.004, 0.005, 0.01, 0.025])
CUM = np.concatenate([[0.0], np.cumsum(CAPS[:-1] * np.diff(MMR))])
"""Binance-like BTC tiers; the deductions keep maintenance continuous across tiers."""


def reference(lo: float, hi: float, side: int, q: float, entry: float, collateral: float, stop: float,
              reserve: float, ratio: float) -> tuple[float, float]:  # fmt: skip
    edges = [stop]
    if reserve > 0:
        edges.append(_liquidation_price_py(float(side), abs(q), entry, collateral, CAPS, MMR / ratio, CUM / ratio))
    for e in edges:
        if not np.isnan(e):
            if side > 0:
                lo = max(lo, e)
            else:
                hi = min(hi, e)
    return lo, hi


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_fold_triggers_matches_its_twin_and_the_rule(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ratio = data.draw(st.floats(0.3, 0.95))
    size = rng.integers(1, 5_000, n) * rng.choice([-1, 1], n)
    size[rng.random(n) < 0.1] = 0  # closed positions are left alone
    entry = 100_000.0 * np.exp(0.1 * rng.standard_normal(n))
    iso = np.where(rng.random(n) < 0.3, entry * np.abs(size) * 0.001 / 10.0, np.nan)
    wallet = entry * np.abs(size) * 0.001 / rng.uniform(2.0, 100.0, n)
    stop = np.where(rng.random(n) < 0.5, entry * (1 - np.sign(size) * rng.uniform(0.0, 0.1, n)), np.nan)
    reserve = np.where(rng.random(n) < 0.5, rng.uniform(1.0, 1e4, n), 0.0)
    lo0 = np.where(rng.random(n) < 0.5, entry * 0.9, -np.inf)
    hi0 = np.where(rng.random(n) < 0.5, entry * 1.1, np.inf)
    market = np.zeros(n, dtype=np.int32)
    lot = np.array([0.001])
    caps2, mmr2, cum2 = CAPS[None, :], (MMR / ratio)[None, :], (CUM / ratio)[None, :]
    ids = rng.permutation(n).astype(np.int64)[: data.draw(st.integers(1, n))]
    args = (ids, market, size, entry, iso, wallet, np.zeros(n), lot, stop, reserve, caps2, mmr2, cum2)
    outs = [(lo0.copy(), hi0.copy()), (lo0.copy(), hi0.copy())]
    fold_triggers(*args, *outs[0])
    fold_triggers_py(*args, *outs[1])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    lo, hi = outs[0]
    for p in range(n):
        if p not in set(ids.tolist()) or size[p] == 0:
            assert lo[p] == lo0[p]
            assert hi[p] == hi0[p]
            continue
        collateral = iso[p] if not np.isnan(iso[p]) else wallet[p]
        want = reference(lo0[p], hi0[p], int(np.sign(size[p])), size[p] * 0.001, entry[p], collateral, stop[p],
                         reserve[p], ratio)  # fmt: skip
        assert (lo[p], hi[p]) == want
