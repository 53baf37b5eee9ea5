"""Mark-price methods (shared/reference/exchange-rules.md section 1).

- ``median_of_three`` (Binance since 2025-09-18, Bybit): ``median(P1, P2, last)`` with the funding-basis price
  ``P1 = I * (1 + F * t_to_funding / interval)`` and ``P2 = I + MA(mid - I)`` (Binance 30 one-second samples,
  Bybit 5 minutes).
- ``index_plus_basis_ma`` (OKX): ``I + MA(mid - I)``; the window is unconfirmed.
- ``fair_price`` (BitMEX): ``I * (1 + F * t_to_funding / interval)``.
- ``hyperliquid_median``: median of ``O + EMA_150s(mid - O)``, ``median(bid, ask, last)`` and the CEX perp median;
  with exactly two of the three, the 30-s EMA of the book median is added as a fourth input.
- ``oracle`` (dYdX v4, Drift v2): the oracle price itself.

Missing inputs are NaN. Functions broadcast over markets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from perpstress.rules.margin import FloatArray


def funding_basis_price(
    index: ArrayLike, funding_rate: ArrayLike, seconds_to_funding: ArrayLike, interval_seconds: ArrayLike
) -> FloatArray:
    """``I * (1 + F * t_to_funding / interval)``: Binance/Bybit P1, BitMEX fair price."""
    frac = np.asarray(seconds_to_funding, dtype=np.float64) / np.asarray(interval_seconds, dtype=np.float64)
    return np.asarray(np.asarray(index, dtype=np.float64) * (1.0 + np.asarray(funding_rate) * frac), dtype=np.float64)


def median_of_three(a: ArrayLike, b: ArrayLike, c: ArrayLike) -> FloatArray:
    """Element-wise median of three inputs (NaN inputs are ignored; all NaN gives NaN)."""
    if np.ndim(a) == 0 and np.ndim(b) == 0 and np.ndim(c) == 0:  # the per-market scalar path, kept cheap
        vals = sorted(v for v in (float(np.asarray(x)) for x in (a, b, c)) if v == v)  # v == v drops NaN
        if not vals:
            return np.asarray(np.nan)
        n = len(vals)
        return np.asarray(vals[n // 2] if n % 2 else 0.5 * (vals[0] + vals[1]))
    stack = np.stack(np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (a, b, c))))
    with np.errstate(invalid="ignore"):
        if not np.isnan(stack).any():
            return np.asarray(np.median(stack, axis=0), dtype=np.float64)
        return nanmedian(stack)


def nanmedian(stack: ArrayLike) -> FloatArray:
    """Median over axis 0 ignoring NaN (NaN where a column is all NaN): ``np.nanmedian(stack, axis=0)``, the
    same values, without the masked arrays NumPy uses below 600 elements (measured: most of the marks' cost).

    Sorting puts NaN last, so a column with ``n`` live values has them in its first ``n`` rows; the median is the
    mean of rows ``(n - 1) // 2`` and ``n // 2``, computed as NumPy does, ``(low + high) / 2``."""
    a = np.asarray(stack, dtype=np.float64)
    flat = a.reshape(a.shape[0], -1)
    ordered = np.sort(flat, axis=0)
    n = (~np.isnan(flat)).sum(axis=0)
    low = np.take_along_axis(ordered, np.maximum(n - 1, 0)[None, :] // 2, axis=0)[0]
    high = np.take_along_axis(ordered, (n // 2)[None, :], axis=0)[0]
    with np.errstate(invalid="ignore"):
        out = np.where(n > 0, (low + high) / 2.0, np.nan)
    return np.asarray(out.reshape(a.shape[1:]), dtype=np.float64)


def ema_update(
    numerator: ArrayLike, denominator: ArrayLike, sample: ArrayLike, dt_seconds: ArrayLike, tau_seconds: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Hyperliquid's EMA over irregular samples: ``num = num*e^(-t/tau) + x*t``, ``den = den*e^(-t/tau) + t``.

    The EMA is ``num / den``; ``tau`` is the time constant (150 s, i.e. 2.5 minutes, for Hyperliquid's "150 s EMA").
    Source: hyperliquid-docs docs/trading/robust-price-indices.md.
    """
    dt = np.asarray(dt_seconds, dtype=np.float64)
    decay = ema_decay(dt, tau_seconds)
    num = np.asarray(numerator, dtype=np.float64) * decay + np.asarray(sample, dtype=np.float64) * dt
    den = np.asarray(denominator, dtype=np.float64) * decay + dt
    return num, den


def ema_decay(dt_seconds: ArrayLike, tau_seconds: ArrayLike) -> FloatArray:
    """The EMA's weight on the past after ``dt``: ``e^(-dt/tau)``, with NumPy's ``exp`` (the engine computes it
    once and reuses it each step, with these very values)."""
    dt = np.asarray(dt_seconds, dtype=np.float64)
    return np.asarray(np.exp(-dt / np.asarray(tau_seconds, dtype=np.float64)), dtype=np.float64)


def hyperliquid_mark(
    oracle: ArrayLike,
    ema_basis: ArrayLike,
    best_bid: ArrayLike,
    best_ask: ArrayLike,
    last_trade: ArrayLike,
    cex_perp_median: ArrayLike,
    ema_book_median_30s: ArrayLike,
) -> FloatArray:
    """Hyperliquid mark: median of (oracle + EMA basis, book median, CEX perp median), with the 4-input fallback.

    ``ema_basis`` is ``EMA_150s(HL mid - oracle)``; ``ema_book_median_30s`` is the 30-s EMA of input (2).
    """
    in1 = np.asarray(oracle, dtype=np.float64) + np.asarray(ema_basis, dtype=np.float64)
    in2 = median_of_three(best_bid, best_ask, last_trade)
    in3 = np.asarray(cex_perp_median, dtype=np.float64)
    in1, in2, in3, in4 = np.broadcast_arrays(in1, in2, in3, np.asarray(ema_book_median_30s, dtype=np.float64))
    stack = np.stack([in1, in2, in3])
    present = (~np.isnan(stack)).sum(axis=0)
    four = np.stack([in1, in2, in3, np.where(present == 2, in4, np.nan)])
    return nanmedian(four)


def weighted_median(values: ArrayLike, weights: ArrayLike) -> float:
    """Weighted median (lower median at an exact half), ignoring NaN values; Hyperliquid's oracle and CEX median."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    ok = ~np.isnan(v) & (w > 0)
    if not ok.any():
        return float("nan")
    v, w = v[ok], w[ok]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cum = np.cumsum(w)
    return float(v[np.searchsorted(cum, 0.5 * cum[-1], side="left")])
