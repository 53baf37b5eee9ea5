"""Generate the crowd of :mod:`perpstress.config.population` as arrays (no Python object per account).

One position per crowd account (the simple generator; multi-market accounts come with the calibrated population).
Sizes are whole lots; the rounding residue of each side is given to that side's largest position so the side's
total notional is exact to one lot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perpstress.config.population import CrowdBehaviour, CrowdConfig
from perpstress.rules.margin import TierTable, max_leverage
from perpstress.state.portfolio import F64, I32, I64


@dataclass(frozen=True)
class CrowdPositions:
    """One row per crowd account (and position)."""

    market: I32
    size_lots: I64
    entry_price: F64
    margin: F64
    """USD: the isolated margin, or the cross wallet balance."""
    isolated: np.ndarray
    stop_price: F64
    """NaN when the account has no stop."""
    topup_reserve: F64
    """USD the account can still add when its margin ratio reaches the top-up threshold (0: none)."""


def generate_crowd(
    config: CrowdConfig,
    market_ids: dict[str, int],
    start_price: F64,
    lot_size: F64,
    tables: list[TierTable],
    rng: np.random.Generator,
    scale: float = 1.0,
) -> CrowdPositions:
    """Draw the crowd. ``market_ids`` maps ``venue:SYMBOL`` to market index; ``scale`` scales accounts only."""
    parts: list[dict[str, np.ndarray]] = []
    for key, cm in config.markets.items():
        m = market_ids[key]
        n = max(2, round(cm.accounts * scale))
        n_long = round(n * cm.long_share)
        if 0 < cm.long_share < 1:  # both sides present whenever both have notional
            n_long = min(max(n_long, 1), n - 1)
        side = np.where(np.arange(n) < n_long, 1, -1)
        raw = np.exp(config.notional_sigma * rng.standard_normal(n))
        notional = np.empty(n)
        for s, share in ((1, cm.long_share), (-1, 1.0 - cm.long_share)):
            sel = side == s
            if sel.any():
                notional[sel] = raw[sel] / raw[sel].sum() * cm.notional_usd * share
        price = float(start_price[m])
        lots = np.maximum(1, np.round(notional / price / lot_size[m])).astype(np.int64)
        for s, share in ((1, cm.long_share), (-1, 1.0 - cm.long_share)):  # exact side totals, to one lot
            sel = np.flatnonzero(side == s)
            if sel.size:
                target = round(float(cm.notional_usd * share / price / lot_size[m]))
                big = sel[np.argmax(lots[sel])]
                lots[big] = max(1, lots[big] + target - int(lots[sel].sum()))
        entry = price * np.exp(config.entry_offset * side + config.entry_dispersion * rng.standard_normal(n))
        notional_entry = lots * lot_size[m] * entry
        lev_cap = max_leverage(tables[m], notional_entry)
        lev = np.minimum(config.leverage_median * np.exp(config.leverage_sigma * rng.standard_normal(n)), lev_cap)
        lev = np.maximum(lev, 1.0)
        parts.append(market_part(config, m, side * lots, entry, notional_entry / lev, price, rng))
    return concatenate(parts)


def market_part(config: CrowdBehaviour, market: int, size_lots: np.ndarray, entry: F64, margin: F64,
                start_price: float, rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    """One market's rows with the crowd's behaviour drawn: stops, top-up reserves, margin mode (in this order).

    A stop sits ``stop_distance`` beyond the entry price, or beyond the start price where the market has already
    moved past the entry against the position: a stop the start price had crossed would have fired before the run
    (as nobody starts past maintenance), so the account holds it at the same distance from where the market is."""
    n = size_lots.size
    side = np.sign(size_lots)
    anchor = np.where(side > 0, np.minimum(entry, start_price), np.maximum(entry, start_price))
    stop = np.where(rng.random(n) < config.stop_share, anchor * (1 - side * config.stop_distance), np.nan)
    topup = np.where(rng.random(n) < config.topup_share, margin * config.topup_reserve_multiple, 0.0)
    return {
        "market": np.full(n, market, dtype=np.int32),
        "size_lots": size_lots,
        "entry_price": entry,
        "margin": margin,
        "isolated": rng.random(n) < config.isolated_share,
        "stop_price": stop,
        "topup_reserve": topup,
    }


def concatenate(parts: list[dict[str, np.ndarray]]) -> CrowdPositions:
    if not parts:
        empty = np.zeros(0)
        return CrowdPositions(np.zeros(0, np.int32), np.zeros(0, np.int64), empty, empty, empty.astype(bool), empty,
                              empty)  # fmt: skip
    return CrowdPositions(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
