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
