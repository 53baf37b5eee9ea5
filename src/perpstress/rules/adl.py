"""Auto-deleveraging scores and queue order (shared/reference/exchange-rules.md section 6.2).

Higher score = deleveraged first; only positions in profit on the side opposite the bankrupt one are eligible.

- ``pnl_leverage_score`` (BitMEX, OKX; Bybit assumed): ``PnL% * EffLev`` in profit, ``PnL% / EffLev`` in loss, with
  ``PnL% = s*(M - EP)/EP`` and ``EffLev = |M| / (s*(M - BP))`` (mark value over mark-minus-bankruptcy value).
- ``binance_leverage_pnl``: ``max(0, UPnL)/max(1, WB) * MM/(WB + UPnL)`` (margin ratio 0 when equity <= 0).
- ``hyperliquid_score``: ``(M/EP) * (notional / account value)``. The sign convention for shorts is not published;
  we use ``EP/M`` for shorts so that a short's score, like a long's, grows with its profit (a stated choice).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from perpstress.rules.margin import FloatArray


def pnl_leverage_score(
    side: ArrayLike, entry_price: ArrayLike, mark: ArrayLike, bankruptcy_price: ArrayLike
) -> FloatArray:
    """BitMEX/OKX ranking: profit percentage times effective leverage (divided by it when losing)."""
    s = np.asarray(side, dtype=np.float64)
    m = np.asarray(mark, dtype=np.float64)
    ep = np.asarray(entry_price, dtype=np.float64)
    pnl_pct = s * (m - ep) / ep
    with np.errstate(divide="ignore", invalid="ignore"):
        cushion = s * (m - np.asarray(bankruptcy_price, dtype=np.float64))
        eff_lev = np.where(cushion > 0, m / np.where(cushion > 0, cushion, 1.0), np.inf)
        score = np.where(pnl_pct > 0, pnl_pct * eff_lev, pnl_pct / eff_lev)
    return np.asarray(score, dtype=np.float64)


def binance_leverage_pnl(unrealised: ArrayLike, wallet_balance: ArrayLike, maintenance: ArrayLike) -> FloatArray:
    """Binance "leverage PnL": ``max(0, UPnL)/max(1, WB) * MM/(WB + UPnL)``, 0 when ``WB + UPnL <= 0``."""
    u = np.asarray(unrealised, dtype=np.float64)
    wb = np.asarray(wallet_balance, dtype=np.float64)
    mb = wb + u
    pnl_pct = np.maximum(0.0, u) / np.maximum(1.0, wb)
    ratio = np.where(mb > 0, np.asarray(maintenance, dtype=np.float64) / np.where(mb > 0, mb, 1.0), 0.0)
    return np.asarray(pnl_pct * ratio, dtype=np.float64)


def hyperliquid_score(
    side: ArrayLike, entry_price: ArrayLike, mark: ArrayLike, notional: ArrayLike, account_value: ArrayLike
) -> FloatArray:
    """Hyperliquid: ``(M/EP) * notional/account value`` (``EP/M`` for shorts, a stated choice)."""
    s = np.asarray(side, dtype=np.float64)
    m = np.asarray(mark, dtype=np.float64)
    ep = np.asarray(entry_price, dtype=np.float64)
    price_ratio = np.where(s > 0, m / ep, ep / m)
    av = np.asarray(account_value, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = np.where(av > 0, np.abs(np.asarray(notional, dtype=np.float64)) / np.where(av > 0, av, 1.0), 0.0)
    return np.asarray(price_ratio * lev, dtype=np.float64)


def queue_order(scores: ArrayLike, eligible: ArrayLike) -> NDArray[np.intp]:
    """Indices of eligible entries, highest score first; ties keep index order (deterministic)."""
    sc = np.asarray(scores, dtype=np.float64)
    idx = np.flatnonzero(np.asarray(eligible, dtype=bool))
    order = np.argsort(-sc[idx], kind="stable")
    return np.asarray(idx[order], dtype=np.intp)


# --- Allocation: who is closed, and by how much ---------------------------------------------------------------
#
# A bankrupt position of ``quantity`` (base units) must be offset by positions on the other side. Each rule below
# returns how much of each candidate's position is closed against it (``0 <= x_i <= size_i``, so ADL never raises
# anyone's exposure) and the total left unallocated when the candidates cannot absorb it all.


def allocate_queue(quantity: float, sizes: ArrayLike, order: ArrayLike) -> tuple[FloatArray, float]:
    """Ranked queue (Binance, Bybit, OKX, BitMEX, Hyperliquid): close candidates fully in ``order`` until covered."""
    q = np.asarray(sizes, dtype=np.float64)
    take = np.zeros_like(q)
    remaining = float(quantity)
    for i in np.asarray(order, dtype=np.intp):
        if remaining <= 0:
            break
        x = min(q[i], remaining)
        take[i] = x
        remaining -= x
    return take, max(remaining, 0.0)


def allocate_random_scan(quantity: float, sizes: ArrayLike, start: int, max_accounts: int) -> tuple[FloatArray, float]:
    """dYdX v4: scan candidates (in id order) from a pseudo-random ``start``, wrapping, up to ``max_accounts``;
    each offsets up to its whole position. Profitability is not required (deleveraging.go iterates every
    subaccount with an opposite position)."""
    q = np.asarray(sizes, dtype=np.float64)
    n = q.size
    order = (start + np.arange(min(n, max_accounts))) % max(n, 1)
    return allocate_queue(quantity, q, order)


def water_fill(quantity: float, weights: ArrayLike, caps: ArrayLike) -> tuple[FloatArray, float]:
    """``x_i = min(cap_i, t * w_i)`` with ``t`` chosen so that ``sum(x) = quantity`` (or every cap is reached).

    The capped pro-rata allocation of Chitra et al. (2025): proportional to the weights, no one above their cap,
    the excess of capped accounts spread over the others. Infinite weights come first, shared equally.
    """
    w = np.asarray(weights, dtype=np.float64)
    c = np.asarray(caps, dtype=np.float64)
    infinite = np.isinf(w) & (w > 0) & (c > 0)
    if infinite.any():  # an infinite weight (a winner at infinite leverage) gives up first, equally among them
        first, remaining = water_fill(quantity, infinite.astype(np.float64), np.where(infinite, c, 0.0))
        others, left = water_fill(remaining, np.where(infinite, 0.0, w), np.where(infinite, 0.0, c))
        return first + others, left
    x = np.zeros_like(w)
    live = np.flatnonzero((w > 0) & (c > 0))
    total_cap = float(c[live].sum())
    if quantity >= total_cap:
        x[live] = c[live]
        return x, float(quantity - total_cap)
    # Visit accounts in the order they would reach their cap as the level rises (weight / cap, descending; the
    # weights taken relative to the largest, so weights near the smallest float do not underflow into a tie);
    # shares use suffix sums, not running differences.
    with np.errstate(over="ignore"):  # a huge weight over a tiny cap sorts first as +inf, as it should
        key = -(w[live] / w[live].max()) / np.maximum(c[live], np.finfo(float).tiny)
    order = live[np.lexsort((live, key))]
    suffix_w = np.cumsum(w[order][::-1])[::-1]
    remaining = float(quantity)
    for k, i in enumerate(order):
        share = remaining * (w[i] / suffix_w[k])
        if share < c[i]:
            rest = order[k:]
            x[rest] = np.minimum(c[rest], remaining * (w[rest] / suffix_w[k]))
            return x, 0.0
        x[i] = c[i]
        remaining -= c[i]
    return x, max(remaining, 0.0)


def allocate_wealth_pro_rata(quantity: float, sizes: ArrayLike, profits: ArrayLike) -> tuple[FloatArray, float]:
    """Wealth pro-rata: every winner gives up the same fraction of its profit, so the quantity each closes is
    proportional to its profit ``w_i = max(PnL_i, 0)`` (at a common execution gap per unit), capped by its size."""
    return water_fill(quantity, np.maximum(np.asarray(profits, dtype=np.float64), 0.0), sizes)


def allocate_capped_pro_rata(
    quantity: float, sizes: ArrayLike, profits: ArrayLike, max_haircut: float
) -> tuple[FloatArray, float]:
    """Capped pro-rata: wealth pro-rata with no account losing more than ``max_haircut`` of its position."""
    q = np.asarray(sizes, dtype=np.float64)
    return water_fill(quantity, np.maximum(np.asarray(profits, dtype=np.float64), 0.0), max_haircut * q)


def allocate_risk_aware_pro_rata(
    quantity: float, sizes: ArrayLike, profits: ArrayLike, leverage: ArrayLike, max_haircut: float
) -> tuple[FloatArray, float]:
    """Risk-aware (levered) pro-rata: weights ``w_i * lambda_i * g(lambda_i)`` with ``g(lambda) = lambda``, the
    paper's levered pro-rata choice, capped at ``max_haircut`` of each position. Higher leverage gives up more."""
    lam = np.asarray(leverage, dtype=np.float64)
    w = np.maximum(np.asarray(profits, dtype=np.float64), 0.0) * lam * lam
    return water_fill(quantity, w, max_haircut * np.asarray(sizes, dtype=np.float64))


def socialised_loss_per_unit(loss: float, long_base: float, short_base: float) -> float:
    """Drift v2: a loss spread over every open position, long and short, pro rata by size: USD per base unit.

    Source: drift-labs/protocol-v2 math/liquidation.rs (calculate_funding_rate_deltas_to_resolve_bankruptcy).
    """
    total = abs(long_base) + abs(short_base)
    return float(loss / total) if total > 0 else 0.0
