"""The population a run starts with, drawn in one place so the engine, the liquidation map and a sweep agree exactly.

Order of draws: the simple crowd (``crowd.markets``), the hedged owners (``hedgers``), then the aggregate-built
population (``population``), which leaves to hedged owners the part of each market's open interest they hold.

Which generator draws them: the named streams ``population`` (the draw) and ``collateral`` (which crowd accounts
margin in non-USD collateral) of :class:`~perpstress.streams.RandomStreams`, seeded by

- the run seed when ``population_seed`` is unset: every run seed is a new crowd;
- ``population_seed`` when it is set. The population is then a function of the scenario's crowd sections, its
  markets, their start prices, the crowd scale and that seed, and not of the run seed: :func:`population_key`
  hashes exactly those, and :func:`draw_initial` draws it outside a run, so a sweep draws it once and hands it to
  every run that shares the key (the engine checks the key before using it).

Either way the population's numbers do not depend on what any other mechanism draws (the shock paths have a stream
of their own), so nothing here replays the run's generator.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

import numpy as np

from perpstress.config.layout import market_layout
from perpstress.config.scenario import Scenario
from perpstress.errors import UsageError
from perpstress.mechanisms import exogenous
from perpstress.population.crowd import CrowdPositions, generate_crowd
from perpstress.population.generator import generate_population
from perpstress.population.positions_file import PositionsSnapshot, positions_to_crowd
from perpstress.rules.margin import TierTable
from perpstress.state.portfolio import F64
from perpstress.streams import RandomStreams


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
                    tables: list[TierTable], scale: float,
                    positions: PositionsSnapshot | None = None) -> tuple[CrowdPositions, HedgedPositions]:  # fmt: skip
    """The crowd (simple and aggregate-built, concatenated) and the hedged owners, from the ``population`` stream
    (see the module's notes). With ``positions`` (a validated snapshot) the crowd is the snapshot instead, used as
    given."""
    rng = population_streams(scenario).fresh("population")
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


def population_streams(scenario: Scenario) -> RandomStreams:
    """The streams the population draws from: the run seed's without ``population_seed``, else that seed's."""
    return RandomStreams(scenario.seed if scenario.population_seed is None else scenario.population_seed)


@dataclass(frozen=True)
class InitialDraw:
    """A population drawn outside a run (:func:`draw_initial`), to be handed to runs that share its ``key``."""

    key: str
    crowd: CrowdPositions
    hedged: HedgedPositions


def start_prices(scenario: Scenario, bases: tuple[str, ...] | list[str]) -> F64:
    """Each market's price at step 0 (the shock's index at the start), as the engine sets it: the exogenous paths
    drawn from the run's ``shock`` stream."""
    if scenario.shock is None:
        raise UsageError(f"scenario {scenario.name}: needs a [shock] section (it sets the start prices)")
    rng = RandomStreams(scenario.seed).fresh("shock")
    paths = exogenous.generate(scenario.shock, scenario.steps, scenario.step_ms / 1000.0, scenario.ts_start_ms, rng)
    return np.asarray(paths.index[0, [paths.asset(b) for b in bases]], dtype=np.float64)


def population_key(scenario: Scenario, scale: float, start: F64 | None = None) -> str | None:
    """What a ``population_seed`` population is a function of, hashed (SHA-256, 20 hex digits); ``None`` without
    ``population_seed`` (the population then depends on the run seed too). ``start``: the markets' start prices
    when the caller has them (else computed)."""
    if scenario.population_seed is None:
        return None
    layout = market_layout(scenario)
    if start is None:
        start = start_prices(scenario, layout.base)
    digest = hashlib.sha256()
    head = {
        "population_seed": scenario.population_seed,
        "scale": float(scale),
        "crowd": scenario.crowd.model_dump(mode="json"),
        "population": scenario.population.model_dump(mode="json") if scenario.population is not None else None,
        "hedgers": [h.model_dump(mode="json") for h in scenario.hedgers],
        "keys": layout.keys,
        "bases": layout.base,
        "lot_size": layout.lot_size,
    }
    digest.update(json.dumps(head, sort_keys=True, separators=(",", ":")).encode())
    for table in layout.tables:
        for f in fields(table):
            digest.update(np.ascontiguousarray(getattr(table, f.name), dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(start, dtype=np.float64).tobytes())
    return digest.hexdigest()[:20]


def draw_initial(scenario: Scenario, scale: float = 1.0) -> InitialDraw:
    """Draw the population of ``scenario`` (which must set ``population_seed``) as its runs would, outside a run."""
    layout = market_layout(scenario)
    start = start_prices(scenario, layout.base)
    key = population_key(scenario, scale, start)
    if key is None:
        raise UsageError(f"scenario {scenario.name}: a population shared between runs needs population_seed")
    lot_size = np.asarray(layout.lot_size, dtype=np.float64)
    crowd, hedged = draw_population(
        scenario, list(layout.keys), list(layout.base), start, lot_size, list(layout.tables), scale
    )
    return InitialDraw(key, crowd, hedged)
