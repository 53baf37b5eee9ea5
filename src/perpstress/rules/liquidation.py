"""Liquidation and bankruptcy prices of one-way positions, isolated or cross, under tiered maintenance margin.

The liquidation price is the mark at which margin balance equals maintenance margin:
``C + s*Q*(P - EP) = Q*P*MMR_k - cum_k`` with ``k`` the tier of the notional ``Q*P`` *at that price*, where
``C = wallet - MM_others + UPnL_others`` (isolated: the position's margin, others zero; cross: the cross wallet
balance and the other contracts' maintenance and PnL, held fixed). Solved per tier:

``P_k = (C + cum_k - s*Q*EP) / (Q*MMR_k - s*Q)``

and the tier whose bracket contains ``Q*P_k`` is the answer. This is Binance's published one-way formula with its
"if the price falls in another bracket, recompute" rule (shared/reference/exchange-rules.md section 4.2), done for
all tiers at once so it vectorises; the same equation gives Hyperliquid's
``liq = price - s*margin_available/Q/(1 - MMR*s)`` (section 4.6). Because margin balance moves with slope ``Q``
and maintenance margin with slope ``Q*MMR < Q``, the root is unique and exactly one tier is consistent.

The bankruptcy price is the mark at which margin balance is zero: ``P = EP - s*(wallet + UPnL_others)/Q``.

Longs whose collateral covers the whole notional (``C >= Q*EP``) cannot be liquidated by price: 0 is returned.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from perpstress.rules.margin import FloatArray, TierTable

_BRACKET_SLACK = 1e-9
"""Relative slack when testing whether a candidate price's notional lies in its bracket (float rounding)."""


def liquidation_price(
    table: TierTable,
    side: ArrayLike,
    size: ArrayLike,
    entry_price: ArrayLike,
    collateral: ArrayLike,
    other_maintenance: ArrayLike = 0.0,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """Mark price at which the position's margin balance equals its maintenance margin.

    ``side``: +1 long, -1 short. ``size``: base units, > 0. ``collateral``: isolated margin or cross wallet
    balance, USD. ``other_maintenance``/``other_upnl``: cross mode's other contracts (Binance TMM1, UPNL1), USD.
    NaN where no price balances them: a long whose maintenance rate at its size is 100 % or more (Drift's IMF
    margin on hundreds of millions) is liquidatable at every price.
    """
    s = np.asarray(side, dtype=np.float64)[..., None]
    q = np.asarray(size, dtype=np.float64)[..., None]
    ep = np.asarray(entry_price, dtype=np.float64)[..., None]
    c = (
        np.asarray(collateral, dtype=np.float64)
        - np.asarray(other_maintenance, dtype=np.float64)
        + np.asarray(other_upnl, dtype=np.float64)
    )[..., None]
    s, q, ep, c = np.broadcast_arrays(s, q, ep, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        candidates = (c + table.maintenance_amount - s * q * ep) / (q * table.mmr - s * q)
        notional = q * candidates
    upper = table.cap.copy()
    upper[-1] = np.inf
    lo_ok = notional >= table.floor * (1 - _BRACKET_SLACK) - _BRACKET_SLACK
    hi_ok = notional <= upper * (1 + _BRACKET_SLACK) + _BRACKET_SLACK
    valid = lo_ok & hi_ok & (candidates >= 0)
    pick = np.argmax(valid, axis=-1)
    price = np.take_along_axis(candidates, pick[..., None], axis=-1)[..., 0]
    found = np.take_along_axis(valid, pick[..., None], axis=-1)[..., 0]
    never = (s[..., 0] > 0) & (c[..., 0] >= q[..., 0] * ep[..., 0])
    price = np.where(never, 0.0, np.where(found, price, np.nan))
    return np.asarray(price, dtype=np.float64)


def bankruptcy_price(
    side: ArrayLike,
    size: ArrayLike,
    entry_price: ArrayLike,
    collateral: ArrayLike,
    other_upnl: ArrayLike = 0.0,
) -> FloatArray:
    """Mark price at which the margin balance is zero: ``EP - s*(collateral + other_upnl)/Q`` (long floored at 0).

    For an isolated USDT position opened at leverage ``L`` with margin ``EP*Q/L`` this is Bybit's published
    ``EP*(1 - 1/L)`` (long) and ``EP*(1 + 1/L)`` (short) (exchange-rules.md section 4.3).
    """
    s = np.asarray(side, dtype=np.float64)
    q = np.asarray(size, dtype=np.float64)
    c = np.asarray(collateral, dtype=np.float64) + np.asarray(other_upnl, dtype=np.float64)
    price = np.asarray(entry_price, dtype=np.float64) - s * c / q
    return np.asarray(np.maximum(price, 0.0), dtype=np.float64)
