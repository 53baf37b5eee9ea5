"""Limit orders resting beyond the makers' ladders (``[resting]``,
:class:`perpstress.config.agents.RestingOrdersConfig`).

Rule: before the first step, every market gets ``levels`` bids and ``levels`` asks at fixed prices, from ``inner``
to ``outer`` away from the start price, spaced geometrically (distance ``inner * (outer / inner) ** (k / (levels -
1))``), each of the same notional at its price, ``depth_multiple`` times the makers' calm depth per side
(``makers.per_market x depth_usd`` of the market) in all. They belong to the market's RESTING account. Nothing moves,
refreshes or cancels them: a filled order is gone, so a book its makers have left still holds them, and a second
fall finds fewer. Order books accept only orders that do not cross, so a resting bid is posted before any maker quotes.

Calibration (``scripts/derive_oct2025.py``): Binance's BTCUSDT book held, at 20:30 UTC on 10 Oct, 40 % as much ask
notional between 1 % and 5 % from the price as within 1 %; an even notional per log-distance reproduces that band,
and its extrapolation past 5 % is an assumption the scenario states.
Left out: new resting orders arriving during the run, their owners cancelling them as the price nears.
"""

from __future__ import annotations

import numpy as np

from perpstress.config.agents import MarketMakerConfig, RestingOrdersConfig
from perpstress.state.orderbook import ASK, BID
from perpstress.state.world import World


def resting_ladder(cfg: RestingOrdersConfig, start_price: float, depth_usd: float) -> tuple[np.ndarray, np.ndarray,
                                                                                           np.ndarray]:  # fmt: skip
    """The ladder of one market: ``(bid prices, ask prices, sizes in base units per order)`` (bids from the
    nearest, asks from the nearest); ``depth_usd`` is the notional per side in all."""
    k = np.arange(cfg.levels, dtype=np.float64)
    span = 0.0 if cfg.levels == 1 else 1.0 / (cfg.levels - 1)
    distance = cfg.inner * (cfg.outer / cfg.inner) ** (k * span)
    bids = start_price * (1.0 - distance)
    asks = start_price * (1.0 + distance)
    per_order = depth_usd / cfg.levels
    return bids, asks, np.stack([per_order / bids, per_order / asks])


def post_resting_orders(world: World, cfg: RestingOrdersConfig, makers: MarketMakerConfig | None) -> None:
    """Post every market's resting ladder, owned by its RESTING account (World.resting_ids, in market order)."""
    for m, key in enumerate(world.market_keys):
        mine = cfg.for_market(key)
        calm = makers.for_market(key).depth_usd * makers.per_market if makers is not None else 0.0
        depth = mine.depth_multiple * calm
        if depth <= 0:
            continue
        bids, asks, sizes = resting_ladder(mine, float(world.markets.mark[m]), depth)
        owner = int(world.resting_ids[m])
        world.books.replace_ladder(m, BID, owner, bids, sizes[0])
        world.books.replace_ladder(m, ASK, owner, asks, sizes[1])
