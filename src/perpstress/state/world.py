"""The World: every piece of a run's state in one bundle, and the compact view of it that compiled kernels take.

The World holds state, not behaviour: markets, accounts and positions (structures of arrays, integer ids), what
kind of trader owns each account, order books, insurance funds, the ledger, collateral holdings, transfer rails,
the trigger index, the exogenous paths and the clock's "now". The mechanisms (``perpstress.mechanisms``) act on it
and the engine (``perpstress.engine``) builds it and runs them in order; whatever a mechanism needs from another
lives here, so no mechanism reaches into the simulation.

Layout (built by :mod:`perpstress.engine.build`): one row per market, the venues' perpetuals first, then the spot
markets the scenario simulates (rows ``n_perpetual..``). Accounts in blocks, in this order: the crowd, market makers
(per market), one noise-trader account per market, one keeper per Drift market, two accounts per hedged owner, per
arbitrageur one account per leg, one absorber per market (counterfactual runs only), one hedge account per
``makers.hedges`` entry and the flow's dormant crowd accounts per flow market (``[flow]`` only). Position ids equal
account ids (one position each).

Some state types keep their behaviour in the mechanism that owns them (``InsuranceFunds``, ``CollateralHoldings``,
``TransferRails``, the exogenous paths): the World's fields are typed with imports made for the type checker only,
so this module imports nothing above the state layer at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from perpstress.config.scenario import Scenario
from perpstress.config.venue import VenueConfig
from perpstress.state.ledger import Ledger
from perpstress.state.orderbook import OrderBooks
from perpstress.state.portfolio import F64, I32, I64, Accounts, Markets, Positions
from perpstress.state.triggers import TriggerIndex

if TYPE_CHECKING:
    from perpstress.mechanisms.collateral import CollateralHoldings
    from perpstress.mechanisms.exogenous import ExogenousPaths
    from perpstress.mechanisms.insurance import InsuranceFunds
    from perpstress.mechanisms.transfers import TransferRails

CROWD, MAKER, NOISE, KEEPER, HEDGER, ARBITRAGEUR, SPOT, ABSORBER, RESTING = 0, 1, 2, 3, 4, 5, 6, 7, 8
"""Account kinds. SPOT accounts hold only a spot market's position and are never margin-checked. ABSORBER accounts
(one per market, only with ``engine.forced_flow = "absorbed_at_mark"`` or ``makers.lay_off``) stand outside the
venue: they take the forced flow at mark and the inventory makers lay off, are never margin-checked and never
ADL'd. RESTING accounts (one per market, only with ``[resting]``) own the limit orders resting beyond the makers'
ladders; never margin-checked, never ADL'd."""

TRADE_COLUMNS = ("ts_ms", "market", "account", "maker", "lots", "price")
"""Columns of the fills record (``World.trades``)."""


class MarginView(NamedTuple):
    """The arrays a margin kernel reads, in :func:`~perpstress.mechanisms.margin_kernels.unit_balances`'s order:
    ``unit_balances(ids, *view)``. Built once per World: every field is the World's own array (updated in place),
    never a copy."""

    pos_start: I64
    pos_count: I32
    wallet: F64
    """Cross wallet per account, USD."""
    pos_market: I32
    size_lots: I64
    entry: F64
    iso_margin: F64
    """Isolated margin per position, USD; NaN for a cross position."""
    lot: F64
    """Lot size per market, base units."""
    mark: F64
    tier_cap: F64
    tier_mmr: F64
    tier_cum: F64

    @property
    def positions_and_markets(self) -> tuple[I32, I64, F64, F64, F64, F64, F64, F64, F64]:
        """The view without the account arrays, in :func:`~perpstress.mechanisms.margin_kernels.isolated_balances`'s
        order (``pos_market .. tier_cum``)."""
        return (self.pos_market, self.size_lots, self.entry, self.iso_margin, self.lot, self.mark, self.tier_cap,
                self.tier_mmr, self.tier_cum)  # fmt: skip

    @classmethod
    def of(cls, markets: Markets, accounts: Accounts, positions: Positions) -> MarginView:
        return cls(accounts.pos_start, accounts.pos_count, accounts.wallet, positions.market, positions.size_lots,
                   positions.entry_price, positions.isolated_margin, markets.lot_size, markets.mark, markets.tier_cap,
                   markets.tier_mmr, markets.tier_cum)  # fmt: skip


@dataclass(repr=False)
class World:
    """A run's state. Arrays are updated in place (the :class:`MarginView` and the mechanisms hold them); the
    scalars of "now" (``now_ms``, ``step``, ``fundamental``, ``index_now``, ``appetite``) are set each step by the
    exogenous phase and the prices phase."""

    scenario: Scenario
    venues: list[VenueConfig]
    market_keys: list[str]
    """``venue:SYMBOL`` per market row."""
    market_base: list[str]
    """Base asset per market row."""
    market_cfg: list[Any]
    """The perpetuals' market configs (``PerpetualMarket``), in market order."""
    n_perpetual: int
    spot_book_of: dict[tuple[int, str], int]
    """(venue index, base asset) -> the market row of that venue's spot book."""
    paths: ExogenousPaths
    """Index paths (``index[step, asset]``) and risk appetite per step, generated before the run."""
    asset_of: I64
    """Per market: its base asset's column in ``paths.index``."""
    markets: Markets
    accounts: Accounts
    positions: Positions
    kind: NDArray[np.int8]
    """Per account: CROWD, MAKER, NOISE, KEEPER, HEDGER, ARBITRAGEUR, SPOT, ABSORBER or RESTING."""
    owner: I64
    """Who owns each account: hedged owners and arbitrageurs own one account per venue or leg."""
    books: OrderBooks
    funds: InsuranceFunds
    """One insurance fund or backstop vault per venue."""
    ledger: Ledger
    collateral: CollateralHoldings
    rails: TransferRails
    triggers: TriggerIndex
    """The crowd's trigger bands per position (margin, stop, top-up), by market."""
    maker_fee: F64
    """Maker fee rate per venue, fraction of notional."""
    taker_fee: F64
    """Taker fee rate per venue, fraction of notional."""
    stop_price: F64
    """Per account: the crowd's stop-loss price (NaN: none, or done)."""
    topup_reserve: F64
    """Per account: USD the crowd member may still add as margin from outside the venue."""
    log_returns: F64
    """(n_markets, window) recent mark log-returns, a ring buffer by step: realised volatility for the makers."""
    now_ms: int
    step: int = 0
    fundamental: F64 = field(default_factory=lambda: np.zeros(0))
    """This step's fundamental value per market (the exogenous index of its asset), quote units."""
    index_now: F64 = field(default_factory=lambda: np.zeros(0))
    """This step's index per market: the fundamental value, or the index built from the simulated spot books."""
    appetite: float = 1.0
    """This step's risk appetite in [0, 1] (1 calm)."""
    last_trade: F64 = field(default_factory=lambda: np.zeros(0))
    """Per market: this step's last trade price (NaN: none yet)."""
    volume_usd: F64 = field(default_factory=lambda: np.zeros(0))
    maker_filled: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per account: set when a maker's order fills; the maker requotes at its next turn."""
    laid_off_lots: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per account: lots its maker has laid off outside the venues so far (``makers.lay_off``), signed as the
    position change (a long maker selling: negative)."""
    topup_delay_ms: F64 = field(default_factory=lambda: np.zeros(0))
    """Per account: ms from a margin call to the crowd member's top-up (0: at once; infinite: never answers)."""
    call_ms: F64 = field(default_factory=lambda: np.zeros(0))
    """Per account: when its outstanding margin call was made, ms since the epoch (NaN: none)."""
    maker_hedge_ids: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    """Per ``makers.hedges`` entry: its hedge account (kind HEDGER, on the hedge's venue)."""
    flow_pool_start: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    """Per flow market (``flow.markets``' order): its first dormant flow account (a block at the end)."""
    flow_pool_size: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    """Per flow market: its dormant flow accounts, each with one position in that market."""
    trades: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in TRADE_COLUMNS})
    """Every fill (taker signed: buy > 0), kept only when ``engine.record_trades`` is on."""
    view: MarginView = field(init=False)
    is_spot: NDArray[np.bool_] = field(init=False)
    """Per market: a spot book (row >= ``n_perpetual``)."""
    spot_account: NDArray[np.bool_] = field(init=False)
    """Per account: holds a spot market's position (fully paid, never margin-checked)."""
    crowd_ids: I64 = field(init=False)
    maker_ids: I64 = field(init=False)
    noise_ids: I64 = field(init=False)
    """One noise-trader account per market, in market order."""
    keeper_ids: I64 = field(init=False)
    absorber_ids: I64 = field(init=False)
    """One absorber account per market, in market order, when forced flow is absorbed at mark or makers lay off
    (else none)."""
    resting_ids: I64 = field(init=False)
    """One resting-orders account per market, in market order, with ``[resting]`` (else none)."""
    watch_ids: I64 = field(init=False)
    """Non-crowd accounts margin-checked every step (makers, hedgers, arbitrageurs' futures legs)."""

    def __post_init__(self) -> None:
        n_m = self.markets.n
        self.view = MarginView.of(self.markets, self.accounts, self.positions)
        self.is_spot = np.arange(n_m) >= self.n_perpetual
        if self.last_trade.size == 0:
            self.last_trade = np.full(n_m, np.nan)
        if self.volume_usd.size == 0:
            self.volume_usd = np.zeros(n_m)
        if self.topup_delay_ms.size == 0:
            self.topup_delay_ms = np.zeros(self.accounts.n)
        if self.call_ms.size == 0:
            self.call_ms = np.full(self.accounts.n, np.nan)
        if self.maker_filled.size == 0:
            self.maker_filled = np.zeros(self.accounts.n, dtype=bool)
        if self.laid_off_lots.size == 0:
            self.laid_off_lots = np.zeros(self.accounts.n, dtype=np.int64)
        self.spot_account = np.zeros(self.accounts.n, dtype=bool)
        self.spot_account[self.is_spot[self.positions.market]] = True
        self.crowd_ids = np.flatnonzero(self.kind == CROWD)
        self.maker_ids = np.flatnonzero(self.kind == MAKER)
        self.noise_ids = np.flatnonzero(self.kind == NOISE)
        self.keeper_ids = np.flatnonzero(self.kind == KEEPER)
        self.absorber_ids = np.flatnonzero(self.kind == ABSORBER)
        self.resting_ids = np.flatnonzero(self.kind == RESTING)
        self.watch_ids = np.flatnonzero(np.isin(self.kind, (MAKER, HEDGER, ARBITRAGEUR)) & ~self.spot_account)

    @property
    def venue_names(self) -> list[str]:
        return [v.name for v in self.venues]

    @property
    def n_markets(self) -> int:
        return self.markets.n

    def crowd_of(self, accounts: I64) -> I64:
        """The crowd accounts among ``accounts``, in their order."""
        crowd: I64 = accounts[self.kind[accounts] == CROWD]
        return crowd
