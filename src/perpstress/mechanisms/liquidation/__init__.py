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

Speed. On the books' execution (without trade records), a venue's units of a round run in one compiled call
(:mod:`~perpstress.mechanisms.liquidation.kernels`: every procedure above, with the gap settlement after each unit,
socialised losses included), with the same outcome bit for bit; the Python procedures are the reference
(``LiquidationEngine.compiled = False``) and the path for any other execution. The gaps left after a round's ADL
are settled in one compiled call per venue too (:meth:`LiquidationEngine.settle_gaps`).
"""

from __future__ import annotations

from typing import Any

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
from perpstress.mechanisms.liquidation import kernels
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
from perpstress.state.portfolio import F64, Accounts, Markets, Positions

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
        self.compiled = True
        """Run the procedures :mod:`~perpstress.mechanisms.liquidation.kernels` compiles there (False: the Python
        procedures everywhere, the reference)."""
        self._kernels = [_kernel_spec(v.liquidation, self.socialises_losses[i]) for i, v in enumerate(venues)]
        """Per venue: its procedure's kernel code, parameters and cooldown (ms), or None (the Python path)."""
        self._keeper_of = np.full(markets.n, -1, dtype=np.int64)
        for m, k in self.keepers.items():
            self._keeper_of[m] = k
        order = np.argsort(positions.market, kind="stable").astype(np.int64)
        bounds = np.searchsorted(positions.market[order], np.arange(markets.n + 1)).astype(np.int64)
        self._by_market = (order, bounds)
        """Position ids by market (ascending within each) and where each market's run starts (the compiled
        socialised loss's scan)."""
        self._scratch = np.zeros(max(int(accounts.pos_count.max(initial=0)), 1), dtype=np.int64)
        self._fund_limits = np.array(
            [[np.nan if x is None else float(x) for x in (f.max_takeover_notional_fraction, f.per_market_claim_cap_usd,
                                                         f.adl_drawdown_fraction)] for f in funds.limits],
            dtype=np.float64,
        ).reshape(len(funds.limits), 3)  # fmt: skip

    def liquidate(self, ts_ms: int, venue: int, units: list[tuple[int, int]]) -> list[AdlRequest]:
        """Liquidate ``units`` ((account, -1) for cross, (account, position) for isolated) on ``venue``."""
        procedure = self.procedures[venue]
        admitted = procedure.admit(units)
        spec = self._kernels[venue] if self.compiled else None
        if spec is not None and admitted and self._book_world() is not None:
            return self._liquidate_compiled(ts_ms, venue, admitted, *spec)
        requests: list[AdlRequest] = []
        for account, position in admitted:
            requests += procedure.liquidate(ts_ms, account, position)
            requests += self.settle_gap(venue, account, position)
        return requests

    def _book_world(self) -> Any:
        """The World the books' execution works on, when the kernels can stand in for it (no trade records)."""
        from perpstress.mechanisms.execution import BookExecution  # execution imports this package

        ex = self.execution
        if not isinstance(ex, BookExecution) or ex.world.scenario.engine.record_trades:
            return None
        return ex.world

    def _liquidate_compiled(self, ts_ms: int, venue: int, units: list[tuple[int, int]], kind: int, params: F64,
                            cooldown_ms: int) -> list[AdlRequest]:  # fmt: skip
        """:meth:`liquidate` by :func:`~perpstress.mechanisms.liquidation.kernels.liquidate_units`: the same
        records and requests, the same state after."""
        w = self._book_world()
        ex_acc = self.execution.accounting  # type: ignore[attr-defined]
        pos, acc, mk, funds, books = self.positions, self.accounts, self.markets, self.funds, w.books
        unit = np.array(units, dtype=np.int64).reshape(-1, 2)
        unit_account = np.ascontiguousarray(unit[:, 0])
        unit_position = np.ascontiguousarray(unit[:, 1])
        rows = 2 * int(np.where(unit_position >= 0, 1, acc.pos_count[unit_account]).sum())
        rec_i = np.zeros((rows, 5), dtype=np.int64)
        rec_f = np.zeros((rows, 4), dtype=np.float64)
        req_i = np.zeros((rows, 4), dtype=np.int64)
        req_f = np.zeros(rows, dtype=np.float64)
        counts = np.zeros(3, dtype=np.int64)
        peak = np.full(self._fund_limits.shape[0], np.nan)
        peak[venue] = funds.drawdown_peak(venue)
        limits = self._fund_limits
        kernels.liquidate_units(
            kind, params, cooldown_ms, ts_ms, venue, venue, unit_account, unit_position,
            (pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
            (acc.pos_start, acc.pos_count, acc.wallet),
            (mk.mark, mk.lot_size, mk.tick_size, mk.venue, mk.tier_cap, mk.tier_mmr, mk.tier_cum),
            (books.price, books.lots, books.owner, books.count, books._fill_owner, books._fill_tick,
             books._fill_lots),
            (w.maker_fee, w.maker_filled, w.ledger.fee_pool, w.last_trade, w.volume_usd, ex_acc.long_lots),
            (funds.balance, funds.inventory, funds.entry_price, funds.claimed, funds.cost_adjustment,
             limits[:, 0].copy(), limits[:, 1].copy(), limits[:, 2].copy(), peak),
            self.accounting.long_lots, self.cooldown_until, self.ledger.bad_debt, rec_i, rec_f, req_i, req_f, counts,
            self._scratch, (self._keeper_of, self.liquidation_started), self._social(),
        )  # fmt: skip
        n, k = int(counts[kernels.C_RECORDS]), int(counts[kernels.C_REQUESTS])
        rec = self.record
        rec.ts_ms.extend([ts_ms] * n)
        rec.venue.extend([venue] * n)
        rec.market.extend(rec_i[:n, kernels.R_MARKET].tolist())
        rec.account.extend(rec_i[:n, kernels.R_ACCOUNT].tolist())
        rec.side.extend(rec_i[:n, kernels.R_SIDE].tolist())
        rec.lots.extend(rec_i[:n, kernels.R_LOTS].tolist())
        rec.notional_usd.extend(rec_f[:n, kernels.F_NOTIONAL].tolist())
        rec.price.extend(rec_f[:n, kernels.F_PRICE].tolist())
        rec.mark.extend(rec_f[:n, kernels.F_MARK].tolist())
        rec.kind.extend([kernels.KIND_NAMES[c] for c in rec_i[:n, kernels.R_KIND].tolist()])
        rec.fee_usd.extend(rec_f[:n, kernels.F_FEE].tolist())
        error = int(counts[kernels.C_ERROR])
        if error == kernels.E_NEGATIVE_DEPOSIT:
            raise ValueError("a deposit is not negative; use pay()")
        if error == kernels.E_NO_KEEPER:
            raise KeyError("a market without a keeper account")
        if error == kernels.E_NOT_A_NUMBER:
            raise ValueError("cannot convert float NaN to integer")
        return [
            AdlRequest(venue, m, a, p, lots, bp)
            for (m, a, p, lots), bp in zip(req_i[:k].tolist(), req_f[:k].tolist(), strict=True)
        ]

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

    def settle_gaps(self, venue: int, accounts: np.ndarray, positions: np.ndarray) -> None:
        """:meth:`settle_gap` for each unit (``accounts[i]``, ``positions[i]``) in order, in one compiled call
        (:func:`~perpstress.mechanisms.liquidation.kernels.settle_gaps`; the Python loop when not ``compiled``)."""
        if not self.compiled:
            for account, position in zip(accounts.tolist(), positions.tolist(), strict=True):
                self.settle_gap(venue, account, position)
            return
        if not accounts.size:
            return
        pos, acc = self.positions, self.accounts
        kernels.settle_gaps(
            venue, self._fund(venue), np.ascontiguousarray(accounts, dtype=np.int64),
            np.ascontiguousarray(positions, dtype=np.int64),
            (pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
            (acc.pos_start, acc.pos_count, acc.wallet), self.gap_funds(),
            self.ledger.bad_debt, self._scratch, self.socialises_losses[venue], self.markets.lot_size, self._social(),
        )  # fmt: skip

    def gap_funds(self) -> tuple[F64, ...]:
        """The funds as the compiled gap settlement reads them (balances, inventory, claims and limits)."""
        funds, limits = self.funds, self._fund_limits
        caps = limits[:, 0].copy(), limits[:, 1].copy(), limits[:, 2].copy()
        return (funds.balance, funds.inventory, funds.entry_price, funds.claimed, funds.cost_adjustment, *caps,
                np.full(limits.shape[0], np.nan))  # fmt: skip

    def _social(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, F64]:
        """What the compiled socialised loss reads: position accounts, positions by market, socialised USD."""
        return (self.positions.account, *self._by_market, self.socialised_usd)

    def _fund(self, venue: int) -> int:
        return venue


def _kernel_spec(config: object, socialises: bool) -> tuple[int, F64, int] | None:
    """The kernel code, parameters (at the kernel's ``P_*`` indices, with ``socialises``: the venue's ADL rule
    socialises what the fund cannot pay) and cooldown in ms of a procedure that
    :mod:`~perpstress.mechanisms.liquidation.kernels` compiles; None for the others."""
    params = np.zeros(kernels.N_PARAMS)
    params[kernels.P_SOCIALISES] = 1.0 if socialises else 0.0
    if isinstance(config, IocThenTakeover):
        params[kernels.P_MAX_DEVIATION] = config.max_price_deviation
        params[kernels.P_FEE_RATE] = config.clearance_fee_rate
        return kernels.IOC_THEN_TAKEOVER, params, 0
    if isinstance(config, TierStepThenTakeover):
        params[kernels.P_MAX_DEVIATION] = config.max_price_deviation
        params[kernels.P_FEE_RATE] = config.clearance_fee_rate
        params[kernels.P_FULL_BELOW_TIER] = config.full_takeover_below_tier
        params[kernels.P_TIERS_TO_DROP] = config.tiers_to_drop
        params[kernels.P_FILL_OR_KILL] = 1.0 if config.order == "fok" else 0.0
        return kernels.TIER_STEP, params, 0
    if isinstance(config, MarketThenBackstop):
        params[kernels.P_MAX_DEVIATION] = config.max_price_deviation
        params[kernels.P_MM_FRACTION] = config.backstop_mm_fraction
        params[kernels.P_PARTIAL_USD] = config.partial_threshold_usd
        params[kernels.P_PARTIAL_FRACTION] = config.partial_fraction
        return kernels.BACKSTOP_VAULT, params, int(config.cooldown_s * 1000)
    if isinstance(config, FillablePriceIoc):
        params[kernels.P_BANKRUPTCY_ADJUSTMENT] = config.bankruptcy_adjustment
        params[kernels.P_SPREAD_TO_MM] = config.spread_to_maintenance_ratio
        params[kernels.P_POSITION_PORTION] = config.max_position_portion
        params[kernels.P_MIN_NOTIONAL] = config.min_position_notional_usd
        params[kernels.P_MAX_BLOCK_NOTIONAL] = config.max_notional_per_block_usd
        params[kernels.P_MAX_INSURANCE_LOST] = config.max_insurance_lost_per_block_usd
        params[kernels.P_MAX_LIQUIDATION_FEE] = config.max_liquidation_fee_rate
        return kernels.FILLABLE_PRICE_IOC, params, 0
    if isinstance(config, KeeperTakeover):
        params[kernels.P_LIQUIDATOR_FEE] = config.liquidator_fee_rate
        params[kernels.P_IF_FEE] = config.if_fee_rate
        params[kernels.P_INITIAL_FRACTION] = config.initial_fraction
        params[kernels.P_DURATION_S] = config.liquidation_duration_s
        params[kernels.P_BUFFER] = config.margin_buffer_ratio
        params[kernels.P_WHOLE_BELOW] = config.whole_below_usd
        return kernels.KEEPER_TAKEOVER, params, 0
    return None
