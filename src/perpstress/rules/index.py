"""Spot index formulas (shared/reference/exchange-rules.md section 1).

- ``weighted_mean_index`` (Binance, Bybit, OKX, Bitget): ``I = sum(w_e * P_e) / sum(w_e)`` over live sources, each
  source first capped to ``median * (1 +- band)`` where ``median`` is the plain median of live sources (Binance's
  newer outlier protection: 3 %, 1 % for BTC and ETH).
- ``weighted_median_index`` (Hyperliquid's oracle): the weighted median of live sources' prices.
- ``median_index`` (dYdX, oracle networks): the plain median of live sources.

A source is live when its price is finite and its weight positive; stale sources are passed with weight 0 (the
venues' staleness rules: Binance drops a source not updated for 5 minutes). With no live source the index is NaN
and the caller keeps the previous value (Binance's "last price protected" fallback is not modelled further).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _live(prices: ArrayLike, weights: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(prices, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(p) & (w > 0) & (p > 0)
    return p[ok], w[ok]


def weighted_mean_index(prices: ArrayLike, weights: ArrayLike, band: float) -> float:
    """Weighted mean of live sources after capping each within ``band`` of their median."""
    p, w = _live(prices, weights)
    if p.size == 0:
        return float("nan")
    med = float(np.median(p))
    capped = np.clip(p, med * (1 - band), med * (1 + band))
    return float(np.dot(capped, w) / w.sum())


def weighted_median_index(prices: ArrayLike, weights: ArrayLike) -> float:
    """The smallest live price at which cumulative weight reaches half the total (lower weighted median); when
    cumulative weight equals exactly half, the mean of that price and the next."""
    p, w = _live(prices, weights)
    if p.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    p, w = p[order], w[order]
    cum = np.cumsum(w)
    half = cum[-1] / 2.0
    k = int(np.searchsorted(cum, half, side="left"))
    if np.isclose(cum[k], half, rtol=1e-12, atol=0.0) and k + 1 < p.size:
        return float((p[k] + p[k + 1]) / 2.0)
    return float(p[k])


def median_index(prices: ArrayLike, weights: ArrayLike) -> float:
    """Plain median of live sources (weights only mark liveness)."""
    p, _ = _live(prices, weights)
    return float(np.median(p)) if p.size else float("nan")
