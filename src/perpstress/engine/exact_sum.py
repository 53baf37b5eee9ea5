"""An exact sum of float64 arrays, correctly rounded (the same float as ``math.fsum``), at compiled speed.

The money invariant adds millions of balances whose total must not carry the summation's own rounding, so that the
check measures the engine's bookkeeping. ``math.fsum`` is exact but runs in the interpreter (about 35 ns a value);
this is a superaccumulator: every finite double is ``m * 2**(e - 1075)`` with an integer ``m < 2**53`` and a
biased exponent ``e`` (1 for subnormals), so the kernel splits ``m`` into a 27-bit high and a 26-bit low half and
adds each, signed, into an int64 bin of its exponent (no bin can overflow before 2**36 values). The bins are then
combined as one Python integer over ``2**1074`` and rounded once. A NaN or infinity makes the result NaN or inf; a
finite total beyond the float range raises ``OverflowError``, as ``math.fsum`` does.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit

from perpstress.state.portfolio import I64

N_BINS = 2048
_LOW_BITS = 26


def _accumulate_py(bits: I64, high: I64, low: I64) -> int:
    """Add the doubles whose bit patterns are ``bits`` into the exponent bins; returns how many were not finite."""
    not_finite = 0
    low_mask = (1 << _LOW_BITS) - 1
    for i in range(bits.shape[0]):
        b = bits[i]
        biased = (b >> 52) & 0x7FF
        if biased == 0x7FF:
            not_finite += 1
            continue
        mantissa = b & 0xFFFFFFFFFFFFF
        if biased == 0:
            biased = 1  # subnormal: no implicit leading bit
        else:
            mantissa |= 1 << 52
        if b < 0:
            high[biased] -= mantissa >> _LOW_BITS
            low[biased] -= mantissa & low_mask
        else:
            high[biased] += mantissa >> _LOW_BITS
            low[biased] += mantissa & low_mask
    return not_finite


_accumulate = njit(cache=True)(_accumulate_py)


def exact_sum(*arrays: np.ndarray, compiled: bool = True) -> float:
    """The sum of every value of ``arrays`` (float64), correctly rounded: equal to ``math.fsum`` of them all."""
    high = np.zeros(N_BINS, dtype=np.int64)
    low = np.zeros(N_BINS, dtype=np.int64)
    accumulate = _accumulate if compiled else _accumulate_py
    not_finite = 0
    for a in arrays:
        values = np.ascontiguousarray(a, dtype=np.float64).ravel()
        if values.size:
            not_finite += accumulate(values.view(np.int64), high, low)
    if not_finite:  # inf, -inf or nan, as IEEE addition of the non-finite values gives
        special = [v for a in arrays for v in np.asarray(a, dtype=np.float64).ravel().tolist() if not math.isfinite(v)]
        with np.errstate(invalid="ignore"):
            return float(np.sum(special))
    numerator = 0
    for e in np.flatnonzero(high | low):
        numerator += ((int(high[e]) << _LOW_BITS) + int(low[e])) << (int(e) - 1)
    return float(Fraction(numerator, 1 << 1074)) if numerator else 0.0
