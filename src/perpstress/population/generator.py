"""The crowd from public aggregates (perpstress.config.population.PopulationConfig).

Per market the crowd holds the whole long side of the configured open interest (less what hedged owners hold) and
``crowd_short_share`` of the short side; market makers take the net, so both sides equal the open interest to one
lot. Accounts are shared among markets by open interest (times ``account_weight``), split long and short by the
published long/short account ratio; notionals are log-normal with a heavy tail, rescaled so each side's total is
exact. Leverage is log-normal around ``leverage_median``, lower for large accounts (``leverage_size_elasticity``),
with ``crowded_long_share`` of long accounts around
``crowded_leverage_median`` (the crowded high-leverage longs of October 10), capped by each position's tier.
Entries sample the preceding days' path (``entry_path``, prices relative to the start; alts raise it to their
``beta_to_path``) with a small dispersion; an account that would start within 0.3-3 % (log-uniform) of its
liquidation price holds that cushion above maintenance instead (it would have been liquidated or topped up
before), or with ``survivors = "chosen_leverage"`` its chosen leverage again at the start price (topped up to it,
or liquidated and opened again at the start: either way as far from liquidation as a position opened now).
``scale`` scales accounts, not notional: a small run is a miniature.
"""

from __future__ import annotations

import numpy as np

from perpstress.config.population import PopulationConfig
from perpstress.population.crowd import CrowdPositions, concatenate, market_part
from perpstress.rules.margin import TierTable, maintenance_margin, max_leverage
from perpstress.state.portfolio import F64


def generate_population(
    config: PopulationConfig,
    market_ids: dict[str, int],
    market_base: list[str],
    start_price: F64,
    lot_size: F64,
    tables: list[TierTable],
    hedged_lots: dict[int, tuple[int, int]],
    rng: np.random.Generator,
    scale: float = 1.0,
) -> CrowdPositions:
    """``hedged_lots[m] = (long lots, short lots)`` hedged owners hold in market ``m`` (taken off the crowd's)."""
    keys = list(config.markets)
    weights = np.array([config.markets[k].open_interest_usd * config.markets[k].account_weight for k in keys])
    total = max(2 * len(keys), round(config.accounts * scale))
    counts = np.maximum(2, np.floor(weights / weights.sum() * total).astype(np.int64))
    path = np.asarray(config.entry_path, dtype=np.float64)
    parts: list[dict[str, np.ndarray]] = []
    for key, n in zip(keys, counts, strict=True):
        pm = config.markets[key]
        m = market_ids[key]
        price = float(start_price[m])
        lot = float(lot_size[m])
        oi_lots = round(pm.open_interest_usd / price / lot)
        h_long, h_short = hedged_lots.get(m, (0, 0))
        side_lots = {1: max(oi_lots - h_long, 1), -1: max(round(oi_lots * pm.crowd_short_share) - h_short, 1)}
        n = int(n)
        n_long = min(max(round(n * pm.long_short_account_ratio / (1 + pm.long_short_account_ratio)), 1), n - 1)
        side = np.where(np.arange(n) < n_long, 1, -1)
        lots = np.empty(n, dtype=np.int64)
        for s in (1, -1):
            sel = np.flatnonzero(side == s)
            raw = np.exp(config.notional_sigma * rng.standard_normal(sel.size))
            share = np.maximum(1, np.floor(raw / raw.sum() * side_lots[s])).astype(np.int64)
            rest = side_lots[s] - int(share.sum())
            if rest > 0:  # the rounding residue, one lot at a time to the largest draws (exact side total)
                order = np.argsort(-raw, kind="stable")
                share[order[np.arange(rest) % sel.size]] += 1
            elif rest < 0:
                big = int(np.argmax(share))
                share[big] = max(1, share[big] + rest)
            lots[sel] = share
        beta = config.beta_to_path.get(market_base[m], 1.0)
        sampled = path[rng.integers(0, path.size, n)] ** beta
        entry = price * sampled * np.exp(config.entry_dispersion * rng.standard_normal(n))
        notional_entry = lots * lot * entry
        cap = max_leverage(tables[m], notional_entry)
        crowded = (side > 0) & (rng.random(n) < config.crowded_long_share)
        median = np.where(crowded, config.crowded_leverage_median, config.leverage_median)
        size_factor = (notional_entry / np.median(notional_entry)) ** -config.leverage_size_elasticity
        lev = np.clip(median * size_factor * np.exp(config.leverage_sigma * rng.standard_normal(n)), 1.0, cap)
        margin = notional_entry / lev
        # nobody starts liquidatable: an account that would start past its maintenance margin would have been
        # liquidated (or topped up) before; it holds maintenance plus a cushion of 0.3-3 % of its notional
        # (log-uniform), so survivors sit at a spread of distances from liquidation, not all at its edge
        upnl = side * lots * lot * (price - entry)
        notional_start = lots * lot * price
        cushion = np.exp(rng.uniform(np.log(0.003), np.log(0.03), n)) * notional_start
        floor = maintenance_margin(tables[m], notional_start) + cushion - upnl
        if config.survivors == "chosen_leverage":
            margin = np.where(margin < floor, np.maximum(notional_start / lev - upnl, floor), margin)
        else:
            margin = np.maximum(margin, floor)
        parts.append(market_part(config, m, side * lots, entry, margin, price, rng))
    return concatenate(parts)
