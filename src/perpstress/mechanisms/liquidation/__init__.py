"""The liquidation engine: each venue's procedure, with accounting that conserves money.

Input: the margin units found liquidatable this step (a cross account, or one isolated position). For each, in the
order given (worst first), the venue's :class:`LiquidationProcedure`, built once per venue from :data:`PROCEDURES`
(keyed by the ``LiquidationConfig`` class), runs; its module states the rule, its source and what is not modelled:

- :mod:`~perpstress.mechanisms.liquidation.ioc_then_takeover` (Binance): an IOC, then the fund's takeover.
- :mod:`~perpstress.mechanisms.liquidation.tier_step` (Bybit, OKX, Bitget): an order down ``tiers_to_drop`` tiers,
  the lowest tiers taken over whole.
- :mod:`~perpstress.mechanisms.liquidation.backstop_vault` (Hyperliquid): market orders, the backstop vault below
  a share of maintenance.
- :mod:`~perpstress.mechanisms.liquidation.fillable_price_ioc` (dYdX v4): an IOC at the fillable price for a slice,
  a capped number of units per block.
- :mod:`~perpstress.mechanisms.liquidation.keeper` (Drift v2): a keeper takes a ramping share over.

Accounting. A position's value to its holder is cash plus ``size * (mark - entry)``; closing ``x`` at price ``P``
moves ``x * (P - entry)`` into cash. Every close has a counterparty (the book's makers through :class:`Execution`,
the fund, the vault, or ADL winners), so the total over accounts, funds and fee pools changes only by declared
external flows. A unit left with negative collateral after everything closes has its gap paid by the fund
(:meth:`LiquidationEngine.settle_gap`); what the fund cannot pay is socialised when the venue's ADL rule says it
socialises losses (Drift: charged to every open position in the market pro rata by size), else recorded as bad
debt and the unit is set to zero, so ``accounts + funds + fee pools - bad debt`` is what stays constant.
"""

from __future__ import annotations

import numpy as np

from perpstress.config.venue import (
    FillablePriceIoc,
    IocThenTakeover,
    KeeperTakeover,
    MarketThenBackstop,
    TierStepThenTakeover,
    VenueConfig,
)
from perpstress.errors import UsageError
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import ADL_RULES
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.insurance import InsuranceFunds
from perpstress.mechanisms.liquidation.backstop_vault import BackstopVaultLiquidation
from perpstress.mechanisms.liquidation.base import (
    Execution,
    Fill,
    LiquidationProcedure,
    LiquidationRecord,
    LiquidationWorld,
)
from perpstress.mechanisms.liquidation.fillable_price_ioc import FillablePriceIocLiquidation
from perpstress.mechanisms.liquidation.ioc_then_takeover import IocThenTakeoverLiquidation
from perpstress.mechanisms.liquidation.keeper import KeeperLiquidation
from perpstress.mechanisms.liquidation.tier_step import TierStepLiquidation
from perpstress.state.ledger import Ledger
from perpstress.state.portfolio import Accounts, Markets, Positions

__all__ = [
    "PROCEDURES",
    "AdlRequest",
    "BackstopVaultLiquidation",
    "Execution",
    "Fill",
    "FillablePriceIocLiquidation",
    "IocThenTakeoverLiquidation",
    "KeeperLiquidation",
    "Ledger",
    "LiquidationEngine",
    "LiquidationProcedure",
    "LiquidationRecord",
    "LiquidationWorld",
    "TierStepLiquidation",
]

PROCEDURES: dict[
    type[IocThenTakeover | TierStepThenTakeover | MarketThenBackstop | FillablePriceIoc | KeeperTakeover],
    type[LiquidationProcedure],
] = {
    IocThenTakeover: IocThenTakeoverLiquidation,
    TierStepThenTakeover: TierStepLiquidation,
    MarketThenBackstop: BackstopVaultLiquidation,
    FillablePriceIoc: FillablePriceIocLiquidation,
    KeeperTakeover: KeeperLiquidation,
}
"""The procedure of each ``LiquidationConfig`` class, built as ``procedure(config, venue, world)``."""


class LiquidationEngine:
    """Runs the venues' liquidation procedures (built once per venue) over the state arrays."""

    def __init__(
        self,
        venues: list[VenueConfig],
        markets: Markets,
        accounts: Accounts,
        positions: Positions,
        funds: InsuranceFunds,
        execution: Execution,
        ledger: Ledger,
        accounting: Accounting | None = None,
        keepers: dict[int, int] | None = None,
    ) -> None:
        kinds = [PROCEDURES[type(v.liquidation)] for v in venues]
        for v, kind in zip(venues, kinds, strict=True):
            if kind.needs_keeper and keepers is None:
                raise UsageError(f"venue {v.name}: keeper takeover needs keeper accounts")
        self.venues = venues
        self.markets = markets
        self.accounts = accounts
        self.positions = positions
        self.accounting = accounting or Accounting(markets, accounts, positions)
        self.funds = funds
        self.execution = execution
        self.ledger = ledger
        self.record = LiquidationRecord()
        self.cooldown_until = np.zeros(accounts.n, dtype=np.int64)
        self.keepers = keepers or {}
        """Drift: the keeper account (its one position) that takes liquidations over, per market."""
        self.liquidation_started = np.full(accounts.n, -1, dtype=np.int64)
        self.socialised_usd = np.zeros(len(venues))
        world = LiquidationWorld(markets, positions, self.accounting, funds, execution, self.record,
                                 self.cooldown_until, self.liquidation_started, self.keepers)  # fmt: skip
        self.procedures: list[LiquidationProcedure] = [
            kind(v.liquidation, i, world) for i, (v, kind) in enumerate(zip(venues, kinds, strict=True))
        ]
        """Each venue's procedure, by venue index."""
        self.socialises_losses = [ADL_RULES[type(v.adl)].socialises_losses for v in venues]
        """Per venue: its ADL rule socialises what the fund cannot pay (Drift) rather than leaving bad debt."""

    def liquidate(self, ts_ms: int, venue: int, units: list[tuple[int, int]]) -> list[AdlRequest]:
        """Liquidate ``units`` ((account, -1) for cross, (account, position) for isolated) on ``venue``."""
        procedure = self.procedures[venue]
        requests: list[AdlRequest] = []
        for account, position in procedure.admit(units):
            requests += procedure.liquidate(ts_ms, account, position)
            requests += self.settle_gap(venue, account, position)
        return requests

    def socialise(self, venue: int, market: int, loss: float) -> None:
        """Drift's socialised loss: ``loss`` charged to every open position in ``market`` pro rata by size."""
        pos, mk = self.positions, self.markets
        ids = np.flatnonzero((pos.market == market) & (pos.size_lots != 0))
        base = np.abs(pos.size_lots[ids]) * mk.lot_size[market]
        if base.sum() == 0:
            self.ledger.bad_debt[venue] += loss
            return
        charge = base * (loss / base.sum())
        iso = ~np.isnan(pos.isolated_margin[ids])
        pos.isolated_margin[ids[iso]] -= charge[iso]
        np.subtract.at(self.accounts.wallet, pos.account[ids[~iso]], charge[~iso])
        self.socialised_usd[venue] += loss

    def settle_gap(self, venue: int, account: int, position: int) -> list[AdlRequest]:
        """A unit with nothing left open and negative collateral: the fund pays the gap (within its per-market claim
        cap); the rest is socialised where the venue's ADL rule socialises losses (Drift) and recorded as bad debt
        elsewhere."""
        if self.accounting.unit_positions(account, position):
            return []
        gap = -self.accounting.collateral(account, position)
        if gap <= 0:
            return []
        first = position if position >= 0 else int(self.accounts.pos_start[account])
        market = int(self.positions.market[first])
        paid = self.funds.pay(self._fund(venue), market, gap)
        self.accounting.credit(account, position, paid)
        uncovered = gap - paid
        if uncovered > 0:
            self.accounting.credit(account, position, uncovered)  # the loss leaves the account:
            if self.socialises_losses[venue]:
                self.socialise(venue, market, uncovered)  # Drift: every open position in the market pays its share
            else:
                self.ledger.bad_debt[venue] += uncovered  # elsewhere it is recorded as bad debt
        return []

    def _fund(self, venue: int) -> int:
        return venue
