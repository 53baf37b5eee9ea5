"""The test kit: a small World built by hand, without drawing a population or running a scenario.

One venue, Binance (its preset: ``load_venue("binance")``), two perpetuals with Binance's real margin tiers
(``venue.perpetuals[symbol].tier_table()``): BTCUSDT (lot 0.001 BTC, tick 0.1) and the thin long-tail HIVEUSDT
(lot 1 HIVE, tick 0.00001). A crowded long book: ``n_longs`` crowd accounts long BTC at leverage 5x to 50x (every
fifth isolated, every third with a stop 2 % below entry, every fourth with a top-up reserve), a few crowd longs in
HIVE, and per market two makers holding the crowd's net position short (so open interest balances), then one noise
account per market. Exogenous paths are flat at the start prices. Nothing has quoted yet: the books are empty until
a test runs the makers' phase (:meth:`Kit.quote`).

Importable by any test (``from kit import crowded_long_world``: ``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from perpstress.calculator import load_venue
from perpstress.config.scenario import Scenario
from perpstress.engine.cascade import Cascade
from perpstress.engine.invariants import Invariants
from perpstress.engine.kernel import Timing
from perpstress.mechanisms import hedging
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlEngine
from perpstress.mechanisms.agents.crowd import CrowdBands, CrowdStops, MarginMonitor
from perpstress.mechanisms.agents.desk import TradingDesk
from perpstress.mechanisms.agents.makers import MakersPhase
from perpstress.mechanisms.collateral import CollateralHoldings
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.exogenous import ExogenousPaths
from perpstress.mechanisms.funding import FundingPhase
from perpstress.mechanisms.indices import IndexEngine
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.mechanisms.prices import MarkEngine
from perpstress.mechanisms.pricing import PricesPhase
from perpstress.mechanisms.transfers import TransferRails
from perpstress.state.clock import Clock
from perpstress.state.ledger import Ledger
from perpstress.state.orderbook import OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account
from perpstress.state.triggers import TriggerIndex
from perpstress.state.world import CROWD, MAKER, NOISE, World

START = {"BTC": 116_800.0, "HIVE": 0.25}
SYMBOLS = ("BTCUSDT", "HIVEUSDT")
BTC, HIVE = 0, 1
"""Market rows."""
TS_START_MS = 1_760_130_000_000  # 2025-10-10T21:00:00Z
STEP_MS = 1000

MAKERS: dict[str, Any] = {
    "per_market": 2,
    "capital_usd": 2e7,
    "levels": 10,
    "depth_usd": 2e6,
    "inventory_limit_usd": 2e7,
    "loss_limit_usd": 2e6,
    "markets": {
        "binance:HIVEUSDT": {
            "capital_usd": 3e5,
            "depth_usd": 3e4,
            "inventory_limit_usd": 3e5,
            "loss_limit_usd": 5e4,
        }
    },
}
"""Two makers per market, a thinner HIVEUSDT book: the kit's and the small test scenarios' (tests/unit/conftest.py)."""

KIT_SCENARIO: dict[str, Any] = {
    "name": "kit",
    "description": "the test kit's configuration: Binance BTCUSDT and HIVEUSDT",
    "seed": 1,
    "start": "2025-10-10T21:00:00Z",
    "duration_s": 60,
    "venues": {"binance": {"preset": "binance", "symbols": list(SYMBOLS), "insurance_fund": {"initial_usd": 1e6}}},
    "shock": {
        "kind": "jump_regime",
        "at_s": 5,
        "jump": -0.05,
        "stress_vol": 0.003,
        "half_life_s": 30,
        "assets": {"BTC": {"start_price": START["BTC"]}, "HIVE": {"start_price": START["HIVE"], "beta": 3.0}},
    },
    "crowd": {"markets": {"binance:BTCUSDT": {"notional_usd": 1e7, "long_share": 0.9, "accounts": 10}}},
    "makers": MAKERS,
}


@dataclass
class Kit:
    """A built World and the shared mechanisms every phase takes."""

    world: World
    accounting: Accounting
    execution: BookExecution
    longs: np.ndarray
    """Crowd accounts long BTCUSDT."""
    hive_longs: np.ndarray
    makers: np.ndarray

    def clock(self, step: int = 0) -> Clock:
        return Clock(step, TS_START_MS + step * STEP_MS, STEP_MS)

    def quote(self) -> MakersPhase:
        """The makers' phase, run once: every maker's ladder is in the book."""
        phase = MakersPhase(self.world, self.accounting, AdlEngine(self.world.venues, self.accounting,
                                                                    np.random.default_rng(0)).record)  # fmt: skip
        phase(self.clock())
        return phase

    def liquidation(self) -> LiquidationEngine:
        w = self.world
        return LiquidationEngine(w.venues, w.markets, w.accounts, w.positions, w.funds, self.execution, w.ledger,
                                 self.accounting, {})  # fmt: skip

    def move(self, fraction: float) -> None:
        """Every market's fundamental value, index and mark move by ``fraction`` from the start."""
        w = self.world
        start = w.paths.index[0, w.asset_of]
        w.fundamental = start * (1 + fraction)
        w.index_now = w.fundamental.copy()
        w.markets.mark[:] = w.fundamental

    def invariants(self) -> Invariants:
        return Invariants(self.world, self.accounting)

    def cascade(self) -> tuple[Cascade, LiquidationEngine, AdlEngine, CrowdStops]:
        """The liquidation phase over the kit, with the prices phase it moves marks with between rounds."""
        w = self.world
        bands = CrowdBands(w)
        bands.start()
        liquidation = self.liquidation()
        adl = AdlEngine(w.venues, self.accounting, np.random.default_rng(0))
        stops = CrowdStops(w, self.accounting, self.execution, liquidation)
        funding = FundingPhase(w.venues, w.market_cfg, w.markets, w.books, w.positions, w.accounts, w.funds, STEP_MS)
        venue_of = [int(v) for v in w.markets.venue]
        prices = PricesPhase(w, IndexEngine(w.venues, venue_of, w.market_base, ~w.is_spot, w.spot_book_of, STEP_MS),
                             MarkEngine(w.venues, venue_of, STEP_MS / 1000.0), funding, bands.reband)  # fmt: skip
        hedges = hedging.HedgePairs(*(np.zeros(0, np.int64),) * 7, [], [], [], [], [])  # no hedged owners
        desk = TradingDesk(w, self.accounting, self.execution, bands.reband)
        cascade = Cascade(w, self.accounting, self.execution, bands, stops, MarginMonitor(w), liquidation, adl,
                          prices, hedges, desk, Timing())  # fmt: skip
        return cascade, liquidation, adl, stops


def crowded_long_world(n_longs: int = 40, n_hive_longs: int = 8, fund_usd: float = 1e6) -> Kit:
    """The kit's World (see the module docstring): ``n_longs`` BTC longs and ``n_hive_longs`` HIVE longs."""
    scenario = Scenario.from_dict(KIT_SCENARIO)
    venue = load_venue("binance")
    cfgs = [venue.perpetuals[s] for s in SYMBOLS]
    tables = [c.tier_table() for c in cfgs]
    markets = Markets.from_tables([0, 0], [c.lot_size for c in cfgs], [c.tick_size for c in cfgs], tables)
    start = np.array([START["BTC"], START["HIVE"]])
    markets.mark[:] = start
    n_m = 2

    leverage = np.linspace(5.0, 50.0, n_longs)
    btc_lots = np.full(n_longs, 100, dtype=np.int64)  # 0.1 BTC each, ~$11.7k
    hive_lots = np.full(n_hive_longs, 20_000, dtype=np.int64)  # 20,000 HIVE each, $5k
    crowd_market = np.concatenate([np.full(n_longs, BTC), np.full(n_hive_longs, HIVE)])
    crowd_lots = np.concatenate([btc_lots, hive_lots])
    crowd_lev = np.concatenate([leverage, np.full(n_hive_longs, 10.0)])
    notional = crowd_lots * markets.lot_size[crowd_market] * start[crowd_market]
    margin = notional / crowd_lev
    n_c = crowd_lots.size
    isolated = (np.arange(n_c) % 5 == 4) & (crowd_market == BTC)
    stop = np.where((np.arange(n_c) % 3 == 2) & ~isolated, start[crowd_market] * 0.98, np.nan)
    reserve = np.where(np.arange(n_c) % 4 == 1, 0.5 * margin, 0.0)

    maker_market = np.repeat(np.arange(n_m), 2)
    net = np.bincount(crowd_market, weights=crowd_lots, minlength=n_m).astype(np.int64)
    maker_lots = np.concatenate([[-net[m] // 2, -net[m] - (-net[m] // 2)] for m in range(n_m)]).astype(np.int64)
    maker_capital = np.array([2e7, 2e7, 3e5, 3e5])

    pos_market = np.concatenate([crowd_market, maker_market, np.arange(n_m)]).astype(np.int32)
    size = np.concatenate([crowd_lots, maker_lots, np.zeros(n_m, np.int64)])
    entry = start[pos_market].astype(float)
    iso = np.concatenate([np.where(isolated, margin, np.nan), np.full(maker_market.size + n_m, np.nan)])
    wallet = np.concatenate([np.where(isolated, 0.0, margin), maker_capital, np.zeros(n_m)])
    kind = np.concatenate([np.full(n_c, CROWD), np.full(maker_market.size, MAKER), np.full(n_m, NOISE)])
    n_acc = size.size
    ids = np.arange(n_acc, dtype=np.int32)
    pos_start, pos_count = group_by_account(n_acc, ids)
    accounts = Accounts(np.zeros(n_acc, np.int32), wallet, pos_start, pos_count)
    positions = Positions(ids, pos_market, size, entry, iso)
    steps = scenario.steps
    paths = ExogenousPaths(("BTC", "HIVE"), np.tile(start, (steps, 1)), np.ones(steps))
    limits = FundLimits(max_takeover_notional_fraction=venue.insurance_fund.max_takeover_notional_fraction)
    pad = n_acc - n_c
    world = World(
        scenario=scenario,
        venues=[venue],
        market_keys=[f"binance:{s}" for s in SYMBOLS],
        market_base=["BTC", "HIVE"],
        market_cfg=cfgs,
        n_perpetual=n_m,
        spot_book_of={},
        paths=paths,
        asset_of=np.array([0, 1]),
        markets=markets,
        accounts=accounts,
        positions=positions,
        kind=kind.astype(np.int8),
        owner=np.arange(n_acc, dtype=np.int64),
        books=OrderBooks(n_m, scenario.engine.book_capacity, markets.tick_size, markets.lot_size),
        funds=InsuranceFunds.create([fund_usd], n_m, [limits]),
        ledger=Ledger(np.zeros(1), np.zeros(1)),
        collateral=CollateralHoldings([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)),
        rails=TransferRails(scenario.rails, ["binance"], TS_START_MS, np.random.default_rng(0)),
        triggers=TriggerIndex(n_m, pos_market),
        maker_fee=np.array([venue.fees.maker_rate]),
        taker_fee=np.array([venue.fees.taker_rate]),
        stop_price=np.concatenate([stop, np.full(pad, np.nan)]),
        topup_reserve=np.concatenate([reserve, np.zeros(pad)]),
        log_returns=np.zeros((n_m, 60)),
        now_ms=TS_START_MS,
        fundamental=start.copy(),
        index_now=start.copy(),
    )
    accounting = Accounting(markets, accounts, positions)
    return Kit(world, accounting, BookExecution(world, accounting), np.flatnonzero(crowd_market == BTC),
               np.flatnonzero(crowd_market == HIVE), world.maker_ids)  # fmt: skip


def load_bench_script(name: str) -> ModuleType:
    """``bench/NAME.py`` imported as module ``NAME`` (registered in ``sys.modules``: dataclasses look their module
    up while a class is made)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def flat(x: Any) -> list[Any]:
    """A call's arguments or result as exact values: arrays as (dtype, shape, bytes), floats as their bits, tuples
    flattened (a kernel and its twin compared bit for bit)."""
    if isinstance(x, tuple):
        return [v for item in x for v in flat(item)]
    if isinstance(x, np.ndarray):
        return [(x.dtype.str, x.shape, x.tobytes())]
    return [float(x).hex() if isinstance(x, float) else x]


def draw_maker_ladders(draw: Any, books: Any, maker_market: Any, marks: Any, lot: Any, far_from: float) -> None:
    """Hypothesis: up to four resting orders a side for each maker ``a`` (account ``a``, quoting in market
    ``maker_market[a]``), each a near (0.02-1 %) or far (``far_from``-30 %) distance from the mark and 1-5,000 lots,
    posted with ``books.replace_ladder``."""
    from hypothesis import strategies as st

    from perpstress.state.orderbook import ASK, BID

    for a, m in enumerate(int(x) for x in maker_market):
        for side in (BID, ASK):
            steps = draw(st.lists(st.floats(0.0002, 0.01) | st.floats(far_from, 0.3), min_size=0, max_size=4))
            px = np.array([marks[m] * (1 - s if side == BID else 1 + s) for s in steps])
            q = np.array([draw(st.integers(1, 5000)) * lot[m] for _ in steps])
            books.replace_ladder(m, side, a, px, q)
