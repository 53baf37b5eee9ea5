"""exact_sum against math.fsum (correctly rounded, so equal bit for bit) and its compiled kernel against the plain
twin, on doubles across the whole exponent range, subnormals and near-cancelling values included."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.engine.exact_sum import N_BINS, _accumulate, _accumulate_py, exact_sum

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(finite, max_size=40), max_size=4), st.booleans())
def test_exact_sum_is_fsum(parts: list[list[float]], cancel: bool) -> None:
    arrays = [np.array(p, dtype=np.float64) for p in parts]
    if cancel and arrays:  # near-cancellation: what a money check sums
        arrays.append(-arrays[0] * (1 + 2**-52))
    values = [v for a in arrays for v in a.tolist()]
    assert exact_sum(*arrays) == math.fsum(values)
    assert exact_sum(*arrays, compiled=False) == math.fsum(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60))
def test_kernel_matches_twin(values: list[float]) -> None:
    bits = np.array(values, dtype=np.float64).view(np.int64)
    bins = [(np.zeros(N_BINS, np.int64), np.zeros(N_BINS, np.int64)) for _ in range(2)]
    out = [(_accumulate(bits, *bins[0]), *bins[0]), (_accumulate_py(bits, *bins[1]), *bins[1])]
    assert out[0][0] == out[1][0] == sum(not math.isfinite(v) for v in values)
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][2], out[1][2])


def test_non_finite_and_subnormal() -> None:
    assert exact_sum(np.array([np.inf, 1.0])) == math.inf
    assert math.isnan(exact_sum(np.array([np.inf, -np.inf])))
    assert exact_sum(np.array([5e-324, 5e-324])) == 1e-323
    assert exact_sum(np.array([1e16, 1.0, -1e16])) == 1.0  # a plain sum gives 0.0
    assert exact_sum() == 0.0
