"""The cascade simulation: the composition root. It builds the World from a scenario (:mod:`perpstress.engine.build`),
makes the mechanisms over it and registers them with the kernel in DESIGN.md's step order.

Step: fundamental values (exogenous; with ``[wider_market]`` moved by the venues' net taker flow of the step
before) -> market makers quote (spot around the fundamental value, perpetuals around
their venue's index) -> noise takers trade -> the crowd's flow opens positions (``[flow]`` only) -> arbitrageurs
trade, hedgers ask for top-ups -> makers hedge on other venues (``[[makers.hedges]]`` only) -> transfers advance ->
indices from the spot books, collateral revalued, marks -> funding -> margin check and liquidation (the cascade:
trigger index for the crowd, every step for makers, arbitrageurs and hedgers; collateral sold first; rounds within
the step up to ``engine.max_cascade_rounds``; ADL; hedge breaks noted) -> funds unwind their inventory -> record
(time series, then the invariants at their cadence).

Assumptions stated plainly: makers' fair value is the fundamental value (spot) or the venue's index (perpetuals);
a maker's ADL exposure is the share of its position ADL closed recently; Drift's keepers are exempt accounts with
no capital limit; two money ledgers are conserved: USD, and each collateral asset in units.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perpstress.config.scenario import Scenario
from perpstress.config.venue import VenueConfig
from perpstress.engine.build import build_world
from perpstress.engine.cascade import Cascade
from perpstress.engine.invariants import Invariants
from perpstress.engine.kernel import Clock, Kernel
from perpstress.engine.recorder import Recorder
from perpstress.engine.summary import summarise
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlEngine
from perpstress.mechanisms.agents.crowd import CrowdBands, CrowdStops, MarginMonitor
from perpstress.mechanisms.agents.desk import ArbitragePhase, TradingDesk
from perpstress.mechanisms.agents.flow import CrowdFlowPhase
from perpstress.mechanisms.agents.maker_hedges import MakerHedgesPhase
from perpstress.mechanisms.agents.makers import MakersPhase
from perpstress.mechanisms.agents.takers import TakersPhase
from perpstress.mechanisms.execution import AbsorbedExecution, BookExecution, ForcedExecution
from perpstress.mechanisms.exogenous import ExogenousPaths, ExogenousPhase
from perpstress.mechanisms.fund_unwind import FundsPhase
from perpstress.mechanisms.funding import FundingPhase
from perpstress.mechanisms.indices import IndexEngine
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.mechanisms.prices import MarkEngine
from perpstress.mechanisms.pricing import PricesPhase
from perpstress.mechanisms.transfers import TransferRails, TransfersPhase
from perpstress.mechanisms.wider_market import WiderMarket
from perpstress.population.initial import InitialDraw
from perpstress.population.positions_file import PositionsSnapshot
from perpstress.state.orderbook import OrderBooks
from perpstress.state.portfolio import F64, I64, Accounts, Markets, Positions
from perpstress.state.triggers import TriggerIndex
from perpstress.state.world import ARBITRAGEUR, CROWD, HEDGER, KEEPER, MAKER, NOISE, SPOT

__all__ = ["ARBITRAGEUR", "CROWD", "HEDGER", "KEEPER", "MAKER", "NOISE", "SPOT", "RunTables", "Simulation"]


@dataclass
class RunTables:
    """What a run produced, as columns."""

    timeseries: dict[str, np.ndarray]
    liquidations: dict[str, list[Any]]
    adl: dict[str, list[Any]]
    trades: dict[str, list[Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class Simulation:
    def __init__(self, scenario: Scenario, scale: float = 1.0, positions: PositionsSnapshot | None = None,
                 population: InitialDraw | None = None) -> None:  # fmt: skip
        """``positions``: a validated snapshot whose rows replace the crowd. ``population``: a population drawn
        beforehand by :func:`~perpstress.population.initial.draw_initial` for this scenario and ``scale`` (a
        sweep shares one between runs); it is used as given, read-only, after checking its key."""
        self.scenario = scenario
        self.scale = scale
        self.positions_source = positions.source if positions is not None else None
        self.kernel = Kernel(scenario.ts_start_ms, scenario.step_ms, scenario.steps, scenario.seed)
        streams = self.kernel.streams
        built = build_world(scenario, scale, positions, population, streams)
        self.world = w = built.world
        self.hedges, self.arbitrageurs = built.hedges, built.arbitrageurs
        venues, venue_of = w.venues, [int(v) for v in w.markets.venue]
        self.accounting = accounting = Accounting(w.markets, w.accounts, w.positions)
        self.execution = execution = BookExecution(w, accounting)
        self.forced: ForcedExecution = (
            AbsorbedExecution(w, accounting) if scenario.engine.forced_flow == "absorbed_at_mark" else execution
        )
        """Where liquidations, funds' unwinds and collateral sales trade: the books, or the absorbers at mark."""
        self.liquidation = LiquidationEngine(venues, w.markets, w.accounts, w.positions, w.funds, self.forced,
                                             w.ledger, accounting, built.keepers)  # fmt: skip
        self.adl = AdlEngine(venues, accounting, streams.get("adl"), np.concatenate([w.absorber_ids, w.resting_ids]))
        self.funding = FundingPhase(venues, w.market_cfg, w.markets, w.books, w.positions, w.accounts, w.funds,
                                    scenario.step_ms)  # fmt: skip
        index_engine = IndexEngine(venues, venue_of, w.market_base, ~w.is_spot, w.spot_book_of, scenario.step_ms)
        mark_engine = MarkEngine(venues, list(w.markets.venue), scenario.step_ms / 1000.0)
        self.bands = bands = CrowdBands(w)
        self.crowd_stops = CrowdStops(w, accounting, execution, self.liquidation)
        self.monitor = MarginMonitor(w)
        self.desk = TradingDesk(w, accounting, execution, bands.reband)
        wm = scenario.wider_market
        wider = None if wm is None else WiderMarket(w, accounting, wm, self.adl.record)
        self.exogenous = ExogenousPhase(w, bool(index_engine.endogenous), wider)
        self.makers = MakersPhase(w, accounting, self.adl.record)
        self.takers = TakersPhase(w, execution, streams.get("takers"))
        self.flow = (CrowdFlowPhase(w, execution, self.liquidation, streams.get("flow"), scale, bands.reband,
                                    streams.get("flow_hold") if scenario.flow.hold_median_s is not None else None)
                     if scenario.flow.enabled else None)  # fmt: skip
        self.maker_hedges = MakerHedgesPhase(w, accounting, execution) if w.maker_hedge_ids.size else None
        self.arbitrage = ArbitragePhase(self.desk, self.arbitrageurs, self.hedges, self.adl)
        self.transfers = TransfersPhase(w, bands.reband)
        self.prices = PricesPhase(w, index_engine, mark_engine, self.funding, bands.reband)
        self.cascade = Cascade(w, accounting, self.forced, bands, self.crowd_stops, self.monitor, self.liquidation,
                               self.adl, self.prices, self.hedges, self.desk, self.kernel.timing)  # fmt: skip
        self.funds_phase = FundsPhase(w, self.forced)
        bands.start()
        self.recorder = Recorder(w, accounting, self.funding.rate)
        self.invariants = Invariants(w, accounting)
        phases: list[tuple[str, Callable[[Clock], None]]] = [
            ("exogenous", self.exogenous),
            ("makers", self.makers),
            ("takers", self.takers),
            ("arbitrage", self.arbitrage),
            ("transfers", self.transfers),
            ("prices", self.prices),
            ("funding", self._settle_funding),
            ("liquidation", self.cascade),
            ("funds", self.funds_phase),
            ("record", self._record),
        ]
        if self.maker_hedges is not None:  # makers hedge after the arbitrageurs (a phase only when configured)
            phases.insert(4, ("maker_hedges", self.maker_hedges))
        if self.flow is not None:  # the crowd's flow trades after the noise takers (a phase only when it is on)
            phases.insert(3, ("flow", self.flow))
        for name, phase in phases:
            self.kernel.add(name, phase)

    def _settle_funding(self, clock: Clock) -> None:
        """Funding when due; accounts it paid or charged get new trigger bands."""
        self.bands.reband_crowd(self.funding.step(clock.step, clock.ts_ms, self.world.index_now))

    def _record(self, clock: Clock) -> None:
        self.recorder(clock)
        self.invariants.check(clock.step)

    def run(self, progress: Callable[[int], None] | None = None) -> RunTables:
        started = time.perf_counter()
        self.kernel.run(progress)
        wall = time.perf_counter() - started
        liquidations, adl = self.liquidation.record.__dict__, self.adl.record.__dict__
        tables = RunTables(self.recorder.ts, liquidations, adl, self.world.trades)
        tables.summary = summarise(self, wall)
        return tables

    # --- what summaries, run files, benchmarks and tests read: the World's and the phases' own objects ----------
    @property
    def venues(self) -> list[VenueConfig]:
        return self.world.venues

    @property
    def market_keys(self) -> list[str]:
        return self.world.market_keys

    @property
    def markets(self) -> Markets:
        return self.world.markets

    @property
    def accounts(self) -> Accounts:
        return self.world.accounts

    @property
    def positions(self) -> Positions:
        return self.world.positions

    @property
    def kind(self) -> np.ndarray:
        return self.world.kind

    @property
    def crowd_ids(self) -> I64:
        return self.world.crowd_ids

    @property
    def maker_ids(self) -> I64:
        return self.world.maker_ids

    @property
    def books(self) -> OrderBooks:
        return self.world.books

    @property
    def rails(self) -> TransferRails:
        return self.world.rails

    @property
    def index(self) -> TriggerIndex:
        """The crowd's trigger index."""
        return self.world.triggers

    @property
    def paths(self) -> ExogenousPaths:
        return self.world.paths

    @property
    def asset_of(self) -> I64:
        return self.world.asset_of

    @property
    def index_now(self) -> F64:
        return self.world.index_now

    @property
    def funding_rate(self) -> F64:
        """The funding phase's rate per market (updated in place; marks and the recorder read it)."""
        return self.funding.rate

    def total_value(self) -> float:
        return self.invariants.total_value()

    @property
    def value_start(self) -> float:
        return self.invariants.value_start

    @property
    def max_value_error(self) -> float:
        return self.invariants.max_value_error
