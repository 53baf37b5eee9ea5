"""The population a run starts with, drawn in one place so the engine and the liquidation map agree exactly.

Order of draws from the run's generator (after the exogenous paths): the simple crowd (``crowd.markets``), the
hedged owners (``hedgers``), then the aggregate-built population (``population``), which leaves to hedged owners
the part of each market's open interest they hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perpstress.config.scenario import Scenario
from perpstress.population.crowd import CrowdPositions, generate_crowd
from perpstress.population.generator import generate_population
from perpstress.population.positions_file import PositionsSnapshot, positions_to_crowd
from perpstress.rules.margin import TierTable
from perpstress.state.portfolio import F64


@dataclass(frozen=True)
class HedgedPositions:
    """Two rows per hedged owner (long leg, then short leg)."""

    market: np.ndarray
    size: np.ndarray
    wallet: F64
    owner: np.ndarray
    """Owner number within the run's hedged owners (0, 0, 1, 1, ...)."""
    book: np.ndarray
    """Index of the ``hedgers`` entry each owner comes from."""


def draw_hedged(scenario: Scenario, ids: dict[str, int], start: F64, lot_size: F64, rng: np.random.Generator,
                scale: float) -> HedgedPositions:  # fmt: skip
    """Equal base size on both legs; each wallet holds the leg's initial margin plus ``reserve_multiple`` times it
    as a reserve the owner can move between venues."""
    market, size, wallet, owner, book = [], [], [], [], []
    first = 0
    for b, h in enumerate(scenario.hedgers):
        n = max(1, round(h.owners * scale))
        raw = np.exp(h.notional_sigma * rng.standard_normal(n))
        notional = raw / raw.sum() * h.notional_usd
        ml, ms = ids[h.long], ids[h.short]
        lots_long = np.maximum(1, np.round(notional / start[ml] / lot_size[ml])).astype(np.int64)
        lots_short = np.maximum(1, np.round(lots_long * lot_size[ml] / lot_size[ms]))
        lev_long, lev_short = h.leg_leverage()
        spread = np.exp(h.leverage_sigma * rng.standard_normal(n)) if h.leverage_sigma > 0 else np.ones(n)
        for i in range(n):
            market += [ml, ms]
            size += [int(lots_long[i]), -int(lots_short[i])]
            legs = (max(lev_long * spread[i], 1.0), max(lev_short * spread[i], 1.0))
            wallet += [notional[i] / lev * (1.0 + h.reserve_multiple) for lev in legs]
            owner += [first + i, first + i]
            book += [b, b]
        first += n
    return HedgedPositions(
        np.asarray(market, dtype=np.int64),
        np.asarray(size, dtype=np.int64),
        np.asarray(wallet, dtype=np.float64),
        np.asarray(owner, dtype=np.int64),
        np.asarray(book, dtype=np.int64),
    )


def draw_population(scenario: Scenario, keys: list[str], bases: list[str], start: F64, lot_size: F64,
                    tables: list[TierTable], rng: np.random.Generator, scale: float,
                    positions: PositionsSnapshot | None = None) -> tuple[CrowdPositions, HedgedPositions]:  # fmt: skip
    """The crowd (simple and aggregate-built, concatenated) and the hedged owners, in the engine's draw order.
    With ``positions`` (a validated snapshot) the crowd is the snapshot instead, used as given."""
    ids = {k: i for i, k in enumerate(keys)}
    crowd = generate_crowd(scenario.crowd, ids, start, lot_size, tables, rng, scale)
    hedge = draw_hedged(scenario, ids, start, lot_size, rng, scale)
    if positions is not None:
        return positions_to_crowd(positions), hedge
    if scenario.population is not None:
        hedged: dict[int, tuple[int, int]] = {}
        for m, lots in zip(hedge.market, hedge.size, strict=True):
            long_h, short_h = hedged.get(int(m), (0, 0))
            hedged[int(m)] = (long_h + max(int(lots), 0), short_h + max(-int(lots), 0))
        generated = generate_population(scenario.population, ids, bases, start, lot_size, tables, hedged, rng, scale)
        crowd = CrowdPositions(
            *(np.concatenate([getattr(crowd, f), getattr(generated, f)]) for f in CrowdPositions.__dataclass_fields__)
        )
    return crowd, hedge
