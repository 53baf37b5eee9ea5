"""Pairing two variants' per-seed values by seed and the intervals of their difference, on hand-made values.

The reference bootstrap below is a plain loop over resamples, written apart from :mod:`perpstress.stats`: it draws
the same resample indices from the same fixed seed, one resample at a time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpstress.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    bootstrap_interval,
    pair_by_seed,
    paired_difference,
    unpaired_bootstrap_interval,
)


def _loop_means(values: list[float], rng: np.random.Generator) -> list[float]:
    n = len(values)
    out = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        idx = rng.integers(0, n, size=n)
        out.append(sum(values[i] for i in idx) / n)
    return out


def test_seeds_are_matched_and_the_unmatched_named() -> None:
    a = {11: 1.0, 12: 2.0, 13: 3.0, 14: float("nan")}
    b = {13: 30.0, 12: 20.0, 15: 50.0, 14: 40.0, 16: None}
    seeds, va, vb, only_a, only_b = pair_by_seed(a, b)
    assert seeds == (12, 13)  # ascending, whatever order the mappings hold them in
    assert va.tolist() == [2.0, 3.0]
    assert vb.tolist() == [20.0, 30.0]
    assert only_a == (11,)
    assert only_b == (14, 15)  # 14 is NaN in A: no pair; 16 is None in B: no value at all


def test_the_paired_interval_is_the_bootstrap_of_the_differences() -> None:
    a = {s: float(v) for s, v in enumerate([10, 14, 9, 20, 13, 17, 11, 15])}
    b = {s: a[s] + d for s, d in enumerate([1.0, 1.5, 0.5, 1.2, 0.9, 1.1, 0.7, 1.3])}
    d = paired_difference(a, b)
    assert d.pairs == 8
    assert d.seeds == tuple(range(8))
    assert d.only_a == d.only_b == ()
    diffs = [b[s] - a[s] for s in range(8)]
    assert d.mean == pytest.approx(sum(diffs) / 8)
    assert d.mean_b - d.mean_a == pytest.approx(d.mean)
    low, high = np.percentile(_loop_means(diffs, np.random.default_rng(BOOTSTRAP_SEED)), [2.5, 97.5])
    assert (d.paired_low, d.paired_high) == pytest.approx((low, high), abs=1e-12)
    assert min(diffs) <= d.paired_low <= d.mean <= d.paired_high <= max(diffs)


def test_the_unpaired_interval_resamples_each_side_on_its_own() -> None:
    a = [10.0, 14.0, 9.0, 20.0, 13.0]
    b = [12.0, 15.0, 8.0, 22.0, 14.5]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means_a = _loop_means(a, rng)
    means_b = _loop_means(b, rng)
    low, high = np.percentile([mb - ma for ma, mb in zip(means_a, means_b, strict=True)], [2.5, 97.5])
    assert unpaired_bootstrap_interval(np.array(a), np.array(b)) == pytest.approx((low, high), abs=1e-12)


def test_shared_noise_cancels_in_the_paired_interval_only() -> None:
    # B is A plus a steady effect of 1: the seeds' spread (10 to 20) is in both means but not in the differences.
    a = {s: float(v) for s, v in enumerate([10, 14, 9, 20, 13, 17, 11, 15])}
    b = {s: v + 1.0 for s, v in a.items()}
    d = paired_difference(a, b)
    assert (d.paired_low, d.paired_high) == (1.0, 1.0)
    assert d.unpaired_low < 0.0 < 1.0 < d.unpaired_high
    assert d.width_ratio == 0.0


def test_one_seed_gives_a_difference_but_no_interval() -> None:
    d = paired_difference({7: 2.0, 8: 5.0}, {7: 3.5, 9: 1.0})
    assert (d.pairs, d.mean, d.mean_a, d.mean_b) == (1, 1.5, 2.0, 3.5)
    assert d.only_a == (8,)
    assert d.only_b == (9,)
    assert all(math.isnan(v) for v in (d.paired_low, d.paired_high, d.unpaired_low, d.unpaired_high))
    assert math.isnan(d.width_ratio)


def test_no_common_seed_gives_nothing_but_the_unmatched() -> None:
    d = paired_difference({1: 1.0}, {2: 1.0})
    assert d.pairs == 0
    assert math.isnan(d.mean)
    assert (d.only_a, d.only_b) == ((1,), (2,))
    empty = paired_difference({}, {})
    assert empty.pairs == 0
    assert math.isnan(empty.paired_low)


def test_nans_leave_their_seed_out_of_both_intervals() -> None:
    a = {0: 1.0, 1: 2.0, 2: float("nan"), 3: 4.0}
    b = {0: 2.0, 1: 4.0, 2: 100.0, 3: 5.0}
    d = paired_difference(a, b)
    clean = paired_difference({0: 1.0, 1: 2.0, 3: 4.0}, {0: 2.0, 1: 4.0, 3: 5.0})
    assert d.only_b == (2,)
    assert (d.pairs, d.mean, d.paired_low, d.paired_high, d.unpaired_low, d.unpaired_high) == (
        clean.pairs, clean.mean, clean.paired_low, clean.paired_high, clean.unpaired_low, clean.unpaired_high,
    )  # fmt: skip


def test_the_bootstrap_interval_of_a_mean_lies_within_the_values() -> None:
    values = np.array([0.0, 0.0, 1.0, 5.0, 2.0])
    low, high = bootstrap_interval(values)
    assert 0.0 <= low <= values.mean() <= high <= 5.0
    assert bootstrap_interval(values) == (low, high)  # a fixed seed: the same values give the same interval
