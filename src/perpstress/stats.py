"""Intervals over seeds: the bootstrap interval of a mean, and the paired difference of two variants run on the
same seeds.

Two variants of a scenario run on one seed share every random stream (:mod:`perpstress.streams`): the same shock
paths, crowd, taker orders and rail delays. Their difference on that seed is the policy's effect on that world, so
the seed-to-seed noise both variants share cancels in it. :func:`paired_difference` pairs two variants' per-seed
values by seed and gives the mean difference (B minus A) with two 95 % intervals:

- **paired**: the bootstrap percentile interval of the mean of the per-seed differences (resampling seeds, each
  resample keeping a seed's two runs together);
- **unpaired**: the bootstrap percentile interval of the difference of the two means when each side's seeds are
  resampled independently, as if the variants had been run on unrelated seeds. It is shown beside the paired one
  so a reader sees what pairing buys.

Both are computed on the same seeds (those with a value on both sides), so their centres agree (the mean of the
differences is the difference of the means) and only their widths differ. A seed with a value on one side only, or
a NaN on either, is left out and named (:attr:`PairedDifference.only_a`, :attr:`PairedDifference.only_b`).
Intervals need two pairs or more (NaN otherwise). Resampling uses :data:`BOOTSTRAP_RESAMPLES` resamples and the
fixed seed :data:`BOOTSTRAP_SEED`, so the same values always give the same interval. Percentile intervals from few
seeds are narrower than they should be (with n seeds, by about a factor sqrt((n-1)/n) and the gap between the
normal and Student's t quantiles): with 8 seeds read them as optimistic, for both intervals alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 4000
"""Resamples of the seeds behind an interval."""
BOOTSTRAP_SEED = 20251010
"""The resampling's fixed seed: the same values always give the same interval."""
_RESAMPLE_CELLS = 2_000_000
"""Indices drawn per chunk of resamples (bounds the memory of one chunk)."""


def _resampled_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Means of :data:`BOOTSTRAP_RESAMPLES` resamples of ``values`` drawn with replacement from ``rng``."""
    n = values.size
    means = np.empty(BOOTSTRAP_RESAMPLES)
    chunk = max(1, _RESAMPLE_CELLS // n)
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        k = min(chunk, BOOTSTRAP_RESAMPLES - start)
        means[start : start + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return means


def bootstrap_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % bootstrap percentile interval of the mean of ``values``: the 2.5th and 97.5th percentiles of the
    means of :data:`BOOTSTRAP_RESAMPLES` resamples drawn with replacement (a fixed seed). It lies within the values'
    range, so a count or an amount that cannot be negative never gets a negative bound."""
    means = _resampled_means(values, np.random.default_rng(BOOTSTRAP_SEED))
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def unpaired_bootstrap_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The 95 % bootstrap percentile interval of ``mean(b) - mean(a)`` when ``a`` and ``b`` are resampled
    independently of each other (a fixed seed): the interval two unrelated sets of runs would give."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means_a = _resampled_means(a, rng)
    means_b = _resampled_means(b, rng)
    low, high = np.percentile(means_b - means_a, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """Variant B minus variant A over the seeds both have: the mean difference and its 95 % intervals."""

    pairs: int
    """Seeds with a (non-NaN) value on both sides."""
    mean_a: float
    mean_b: float
    mean: float
    """Mean over the paired seeds of B minus A (NaN without pairs)."""
    paired_low: float
    paired_high: float
    unpaired_low: float
    unpaired_high: float
    seeds: tuple[int, ...] = ()
    """The paired seeds, ascending."""
    only_a: tuple[int, ...] = ()
    """Seeds with a value in A but none (or NaN) in B."""
    only_b: tuple[int, ...] = ()
    """Seeds with a value in B but none (or NaN) in A."""
    differences: tuple[float, ...] = ()
    """B minus A on each paired seed, in the order of :attr:`seeds`."""

    @property
    def paired_width(self) -> float:
        return self.paired_high - self.paired_low

    @property
    def unpaired_width(self) -> float:
        return self.unpaired_high - self.unpaired_low

    @property
    def width_ratio(self) -> float:
        """The paired interval's width over the unpaired one's (NaN when the unpaired one has no width)."""
        if not (math.isfinite(self.unpaired_width) and self.unpaired_width > 0):
            return math.nan
        return self.paired_width / self.unpaired_width


def pair_by_seed(
    a: Mapping[int, float | None], b: Mapping[int, float | None]
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, tuple[int, ...], tuple[int, ...]]:
    """Match two variants' per-seed values (``{seed: value}``) by seed: the seeds with a value on both sides
    (ascending), A's and B's values on them, then the seeds only A and only B have a value for (None and NaN are
    no value)."""

    def present(values: Mapping[int, float | None]) -> dict[int, float]:
        return {int(s): float(v) for s, v in values.items() if v is not None and not math.isnan(float(v))}

    pa_, pb_ = present(a), present(b)
    seeds = tuple(sorted(pa_.keys() & pb_.keys()))
    va = np.array([pa_[s] for s in seeds], dtype=float)
    vb = np.array([pb_[s] for s in seeds], dtype=float)
    return seeds, va, vb, tuple(sorted(pa_.keys() - pb_.keys())), tuple(sorted(pb_.keys() - pa_.keys()))


def paired_difference(a: Mapping[int, float | None], b: Mapping[int, float | None]) -> PairedDifference:
    """B minus A, seed by seed (``{seed: value}`` per variant): the mean difference over the seeds both have, its
    paired bootstrap interval and the unpaired interval of the difference of means on the same seeds."""
    seeds, va, vb, only_a, only_b = pair_by_seed(a, b)
    nan = math.nan
    n = len(seeds)
    if n == 0:
        return PairedDifference(0, nan, nan, nan, nan, nan, nan, nan, seeds, only_a, only_b)
    diff = vb - va
    mean_a, mean_b, mean = float(va.mean()), float(vb.mean()), float(diff.mean())
    per_seed = tuple(float(x) for x in diff)
    if n < 2:
        return PairedDifference(n, mean_a, mean_b, mean, nan, nan, nan, nan, seeds, only_a, only_b, per_seed)
    p_low, p_high = bootstrap_interval(diff)
    u_low, u_high = unpaired_bootstrap_interval(va, vb)
    return PairedDifference(n, mean_a, mean_b, mean, p_low, p_high, u_low, u_high, seeds, only_a, only_b, per_seed)
