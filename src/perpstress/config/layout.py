"""The markets a scenario simulates, in the engine's order: every venue's perpetuals, then its spot books.

One function lays them out so the engine, the liquidation map and a sweep's shared population index markets the
same way (a crowd drawn by one is valid in the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from perpstress.config.scenario import Scenario
from perpstress.rules.margin import TierTable

SPOT_TIERS = TierTable.from_rates([0.0], [np.inf], [0.0], [1.0])
"""Spot rows carry a neutral tier table (no maintenance margin) so market arrays stay uniform."""


@dataclass(frozen=True)
class MarketLayout:
    keys: tuple[str, ...]
    """``venue:SYMBOL`` of each market: perpetuals (venue by venue), then spot books (one per venue and base)."""
    venue_of: tuple[int, ...]
    tables: tuple[TierTable, ...]
    """Perpetuals: the preset's margin tiers. Spot books: :data:`SPOT_TIERS` (fully paid)."""
    lot_size: tuple[float, ...]
    tick_size: tuple[float, ...]
    base: tuple[str, ...]
    perpetual_config: tuple[Any, ...]
    """The perpetuals' market configs (``PerpetualMarket``), in order."""
    n_perpetual: int
    spot_book_of: dict[tuple[int, str], int]
    """(venue index, base asset) -> the market index of that venue's spot book."""


def market_layout(scenario: Scenario) -> MarketLayout:
    keys: list[str] = []
    venue_of: list[int] = []
    tables: list[TierTable] = []
    lots: list[float] = []
    ticks: list[float] = []
    bases: list[str] = []
    cfgs: list[Any] = []
    venues = list(scenario.venues.values())
    for vi, venue in enumerate(venues):
        for symbol, market in venue.markets().items():
            keys.append(f"{venue.name}:{symbol}")
            venue_of.append(vi)
            tables.append(market.tier_table())
            lots.append(market.lot_size)
            ticks.append(market.tick_size)
            bases.append(market.base)
            cfgs.append(market)
    n_perpetual = len(keys)
    spot_book_of: dict[tuple[int, str], int] = {}
    for vi, venue in enumerate(venues):
        for symbol, spot in venue.spot_markets().items():
            spot_book_of.setdefault((vi, spot.base), len(keys))
            keys.append(f"{venue.name}:{symbol}")
            venue_of.append(vi)
            tables.append(SPOT_TIERS)
            lots.append(spot.lot_size)
            ticks.append(spot.tick_size)
            bases.append(spot.base)
    return MarketLayout(tuple(keys), tuple(venue_of), tuple(tables), tuple(lots), tuple(ticks), tuple(bases),
                        tuple(cfgs), n_perpetual, spot_book_of)  # fmt: skip
