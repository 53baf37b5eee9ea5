"""The liquidation engine: each venue's procedure, with accounting that conserves money.

Input: the margin units found liquidatable this step (a cross account, or one isolated position). For each, in the
order given (worst first), the venue's procedure from its preset runs:

- ``ioc_then_takeover`` (Binance): an IOC order for each position, limited ``max_price_deviation`` from mark;
  what does not fill is taken over by the insurance fund at the bankruptcy price, if the fund's takeover limit
  allows, else it goes to ADL. A clearance fee on the filled notional goes to the fund. (Binance's "smart" partial
  reduction to compliance is not modelled: the IOC is for the whole position.)
- ``tier_step_then_takeover`` (Bybit, OKX, Bitget): positions in the lowest tiers are taken over whole; others send
  an order (FoK or IOC) that brings the notional down ``tiers_to_drop`` tiers; a failed FoK means takeover.
- ``market_then_backstop`` (Hyperliquid): below ``backstop_mm_fraction`` of maintenance the backstop vault takes
  the unit's positions over at mark together with its remaining equity; otherwise a market order (limited
  ``max_price_deviation`` from mark) for the whole position, or ``partial_fraction`` of it above
  ``partial_threshold_usd`` outside the cooldown. No fee.

- ``fillable_price_ioc`` (dYdX v4): per block at most ``max_subaccounts_per_block`` units; an IOC at the fillable
  price ``O * (1 -+ ABR * SMMR * MMF)`` for ``max_position_portion`` of one position within the notional caps; a fill
  better than bankruptcy pays a fee (at most ``max_liquidation_fee_rate``) to the fund, a worse one is paid by the
  fund (at most ``max_insurance_lost_per_block_usd``); nothing filled and negative net collateral -> deleveraging.

- ``keeper_takeover`` (Drift v2): a keeper account takes a share of each position over at ``oracle -+ fee``, the
  share ramping from ``initial_fraction`` to all over ``liquidation_duration_s`` (whole below ``whole_below_usd``);
  the user pays the IF fee. A bankrupt remainder the fund cannot pay (within its per-market claim cap) is
  socialised: charged to every open position in the market pro rata by size.

Accounting. A position's value to its holder is cash plus ``size * (mark - entry)``; closing ``x`` at price ``P``
moves ``x * (P - entry)`` into cash. Every close has a counterparty (the book's makers through :class:`Execution`,
the fund, the vault, or ADL winners), so the total over accounts, funds and fee pools changes only by declared
external flows. A unit left with negative collateral after everything closes has its gap paid by the fund; what the
fund cannot pay is recorded as bad debt and the unit is set to zero, so ``accounts + funds + fee pools - bad debt``
is what stays constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from perpstress.config.venue import (
    FillablePriceIoc,
    IocThenTakeover,
    KeeperTakeover,
    MarketThenBackstop,
    SocialisedLossAdl,
    TierStepThenTakeover,
    VenueConfig,
)
from perpstress.errors import UsageError
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.insurance import InsuranceFunds
from perpstress.state.events import EventColumns
from perpstress.state.ledger import Ledger
from perpstress.state.portfolio import Accounts, Markets, Positions


@dataclass(frozen=True)
class Fill:
    """Result of a taker order: signed lots filled (buy > 0) and their average price (NaN if nothing filled)."""

    lots: int
    average_price: float


class Execution(Protocol):
    """Sends a taker order into a market's book on behalf of ``taker`` and settles the makers' side."""

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill: ...


@dataclass(frozen=True)
class AdlRequest:
    """A bankrupt remainder the fund could not take: ``lots`` of ``position`` (signed like the position) to close
    against opposite winners at ``bankruptcy_price``."""

    venue: int
    market: int
    account: int
    position: int
    lots: int
    bankruptcy_price: float


@dataclass
class LiquidationRecord(EventColumns):
    """One row per liquidation fill, takeover, backstop or keeper transfer."""

    ts_ms: list[int] = field(default_factory=list)
    venue: list[int] = field(default_factory=list)
    market: list[int] = field(default_factory=list)
    account: list[int] = field(default_factory=list)
    side: list[int] = field(default_factory=list)
    lots: list[int] = field(default_factory=list)
    notional_usd: list[float] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    mark: list[float] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    fee_usd: list[float] = field(default_factory=list)


class LiquidationEngine:
    """Runs the venues' liquidation procedures over the state arrays."""

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
        for v in venues:
            if isinstance(v.liquidation, KeeperTakeover) and keepers is None:
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

    # --- the procedures --------------------------------------------------------------------------------------
    def liquidate(self, ts_ms: int, venue: int, units: list[tuple[int, int]]) -> list[AdlRequest]:
        """Liquidate ``units`` ((account, -1) for cross, (account, position) for isolated) on ``venue``."""
        cfg = self.venues[venue]
        requests: list[AdlRequest] = []
        proc = cfg.liquidation
        if isinstance(proc, FillablePriceIoc):
            units = units[: proc.max_subaccounts_per_block]  # per block; the rest wait for the next step
        for account, position in units:
            if isinstance(proc, FillablePriceIoc):
                requests += self._dydx(ts_ms, venue, proc, account, position)
            elif isinstance(proc, KeeperTakeover):
                self._keeper(ts_ms, venue, proc, account, position)
            elif isinstance(proc, MarketThenBackstop):
                requests += self._hyperliquid(ts_ms, venue, proc, account, position)
            elif isinstance(proc, IocThenTakeover | TierStepThenTakeover):
                for p in self.accounting.unit_positions(account, position):
                    requests += self._book_then_takeover(ts_ms, venue, proc, account, position, p)
            requests += self.settle_gap(venue, account, position)
        return requests

    def _book_then_takeover(
        self, ts: int, venue: int, proc: IocThenTakeover | TierStepThenTakeover, account: int, position: int, p: int
    ) -> list[AdlRequest]:
        pos, mk = self.positions, self.markets
        m = int(pos.market[p])
        lots = int(pos.size_lots[p])
        side = 1 if lots > 0 else -1
        mark = float(mk.mark[m])
        send, fok, partial = -lots, False, False
        if isinstance(proc, TierStepThenTakeover):
            notional = abs(self.accounting.base(p)) * mark
            k = int(np.searchsorted(mk.tier_cap[m], notional, side="left"))
            if k < proc.full_takeover_below_tier:
                send = 0  # the lowest tiers go straight to the engine at the bankruptcy price
            else:  # bring the notional down to the cap of the tier ``tiers_to_drop`` below
                target = mk.tier_cap[m, k - proc.tiers_to_drop] if k >= proc.tiers_to_drop else 0.0
                keep = int(target / mark / mk.lot_size[m])
                send = -side * max(abs(lots) - keep, 0)
                fok, partial = proc.order == "fok", keep > 0
        if send != 0:
            fill = self.execution.execute(m, send, mark * (1 - side * proc.max_price_deviation), fok, account)
            if fill.lots != 0:
                self.accounting.close(account, position, p, fill.lots, fill.average_price)
                notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
                fee = min(proc.clearance_fee_rate * notional, max(self.accounting.unit_equity(account, position), 0.0))
                self.accounting.credit(account, position, -fee)
                self.funds.deposit(self._fund(venue), fee)
                self.record.add(
                    ts, venue, m, account, side, -fill.lots, notional, fill.average_price, mark, "book", fee
                )
                if partial:
                    return []  # a tier step: the unit is checked again next step and steps further if it must
        if pos.size_lots[p] == 0:
            return []
        return self._take_over(ts, venue, account, position, p)

    def _take_over(self, ts: int, venue: int, account: int, position: int, p: int) -> list[AdlRequest]:
        pos, mk = self.positions, self.markets
        m = int(pos.market[p])
        lots = int(pos.size_lots[p])
        bp = self.accounting.bankruptcy_price(account, position, p)
        fund = self._fund(venue)
        size = lots * mk.lot_size[m]
        drawn_down = self.funds.drawdown_triggered(fund, self.markets.mark)  # OKX, Bybit: ADL past the drawdown
        if drawn_down or not self.funds.can_take_over(fund, m, size, bp):
            return [AdlRequest(venue, m, account, p, lots, bp)]
        self.accounting.close(account, position, p, -lots, bp)
        self.funds.take_over(fund, m, size, bp)
        self.record.add(ts, venue, m, account, 1 if lots > 0 else -1, lots, abs(size) * bp, bp, float(mk.mark[m]),
                        "takeover", 0.0)  # fmt: skip
        return []

    def _hyperliquid(
        self, ts: int, venue: int, proc: MarketThenBackstop, account: int, position: int
    ) -> list[AdlRequest]:
        mk = self.markets
        ps = self.accounting.unit_positions(account, position)
        equity = self.accounting.unit_equity(account, position)
        maintenance = sum(self.accounting.maintenance(p) for p in ps)
        if equity < proc.backstop_mm_fraction * maintenance:
            if equity < 0:  # the vault does not absorb negative equity: ADL at the bankruptcy prices
                return [
                    AdlRequest(
                        venue,
                        int(self.positions.market[p]),
                        account,
                        p,
                        int(self.positions.size_lots[p]),
                        self.accounting.bankruptcy_price(account, position, p),
                    )
                    for p in ps
                ]
            fund = self._fund(venue)
            for p in ps:
                m = int(self.positions.market[p])
                lots = int(self.positions.size_lots[p])
                mark = float(mk.mark[m])
                self.accounting.close(account, position, p, -lots, mark)
                self.funds.take_over(fund, m, lots * mk.lot_size[m], mark)
                self.record.add(ts, venue, m, account, 1 if lots > 0 else -1, lots, abs(lots) * mk.lot_size[m] * mark,
                                mark, mark, "backstop", 0.0)  # fmt: skip
            rest = self.accounting.collateral(account, position)
            self.accounting.credit(account, position, -rest)
            self.funds.deposit(fund, rest)
            return []
        for p in ps:
            m = int(self.positions.market[p])
            lots = int(self.positions.size_lots[p])
            side = 1 if lots > 0 else -1
            mark = float(mk.mark[m])
            send = -lots
            if abs(lots) * mk.lot_size[m] * mark > proc.partial_threshold_usd and ts >= self.cooldown_until[account]:
                send = -side * max(1, int(abs(lots) * proc.partial_fraction))
                self.cooldown_until[account] = ts + int(proc.cooldown_s * 1000)
            fill = self.execution.execute(m, send, mark * (1 - side * proc.max_price_deviation), False, account)
            if fill.lots != 0:
                self.accounting.close(account, position, p, fill.lots, fill.average_price)
                notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
                self.record.add(
                    ts, venue, m, account, side, -fill.lots, notional, fill.average_price, mark, "book", 0.0
                )
        return []

    def _dydx(self, ts: int, venue: int, proc: FillablePriceIoc, account: int, position: int) -> list[AdlRequest]:
        """dYdX v4: an IOC at the fillable price for a slice of one position; the fill's distance from bankruptcy
        decides the fee to the fund (capped at ``max_liquidation_fee_rate``) or the fund's payment (capped per
        block); nothing filled with negative net collateral means deleveraging."""
        acc, mk = self.accounting, self.markets
        ps = acc.unit_positions(account, position)
        if not ps:
            return []
        tnc = acc.unit_equity(account, position)
        tmmr = sum(acc.maintenance(q) for q in ps)
        p = ps[0]
        m = int(self.positions.market[p])
        lots = int(self.positions.size_lots[p])
        side = 1 if lots > 0 else -1
        oracle = float(mk.mark[m])
        notional = abs(acc.base(p)) * oracle
        mmf = acc.maintenance(p) / notional if notional > 0 else 0.0
        abr = float(np.clip(proc.bankruptcy_adjustment * (1.0 - tnc / tmmr), 0.0, 1.0)) if tmmr > 0 else 1.0
        fillable = oracle * (1.0 - side * abr * proc.spread_to_maintenance_ratio * mmf)
        slice_usd = min(proc.max_position_portion * notional, proc.max_notional_per_block_usd)
        slice_usd = min(max(slice_usd, proc.min_position_notional_usd), notional)
        send = -side * min(abs(lots), max(1, int(slice_usd / oracle / mk.lot_size[m])))
        bp = acc.bankruptcy_price(account, position, p)
        fill = self.execution.execute(m, send, fillable, False, account)
        if fill.lots == 0:
            return [AdlRequest(venue, m, account, p, lots, bp)] if tnc < 0 else []
        acc.close(account, position, p, fill.lots, fill.average_price)
        closed = abs(fill.lots) * mk.lot_size[m]
        delta = side * (fill.average_price - bp) * closed  # > 0: closed better than bankruptcy
        fund = self._fund(venue)
        fee = 0.0
        if delta > 0:
            fee = min(delta, proc.max_liquidation_fee_rate * closed * fill.average_price)
            acc.credit(account, position, -fee)
            self.funds.deposit(fund, fee)
        else:
            paid = self.funds.pay(fund, m, min(-delta, proc.max_insurance_lost_per_block_usd))
            acc.credit(account, position, paid)
        self.record.add(ts, venue, m, account, side, -fill.lots, closed * fill.average_price, fill.average_price,
                        oracle, "book", fee)  # fmt: skip
        return []

    def _keeper(self, ts: int, venue: int, proc: KeeperTakeover, account: int, position: int) -> None:
        """Drift v2: the keeper takes a ramping share of each position over at ``oracle -+ liquidator fee``; the
        user also pays the IF fee (never more than it has)."""
        acc, mk = self.accounting, self.markets
        if self.liquidation_started[account] < 0:
            self.liquidation_started[account] = ts
        elapsed_s = (ts - self.liquidation_started[account]) / 1000.0
        ramp = proc.initial_fraction + (elapsed_s / proc.liquidation_duration_s if proc.liquidation_duration_s else 1.0)
        equity = acc.unit_equity(account, position)
        maintenance = sum(acc.maintenance(q) for q in acc.unit_positions(account, position))
        shortfall = maintenance * (1 + proc.margin_buffer_ratio) - equity
        for p in acc.unit_positions(account, position):
            m = int(self.positions.market[p])
            lots = int(self.positions.size_lots[p])
            side = 1 if lots > 0 else -1
            oracle = float(mk.mark[m])
            notional = abs(acc.base(p)) * oracle
            share = 1.0 if notional < proc.whole_below_usd or shortfall < proc.whole_below_usd else min(ramp, 1.0)
            take = -side * min(abs(lots), max(1, int(abs(lots) * share)))
            price = oracle * (1.0 - side * proc.liquidator_fee_rate)
            keeper = self.keepers[m]
            acc.close(account, position, p, take, price)
            acc.trade(keeper, -1, keeper, -take, price)
            taken = abs(take) * mk.lot_size[m] * price
            fee = min(proc.if_fee_rate * taken, max(acc.unit_equity(account, position), 0.0))
            acc.credit(account, position, -fee)
            self.funds.deposit(self._fund(venue), fee)
            self.record.add(ts, venue, m, account, side, -take, taken, price, oracle, "keeper", fee)

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
        cap); the rest is socialised on Drift and recorded as bad debt elsewhere."""
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
            if isinstance(self.venues[venue].adl, SocialisedLossAdl):
                self.socialise(venue, market, uncovered)  # Drift: every open position in the market pays its share
            else:
                self.ledger.bad_debt[venue] += uncovered  # elsewhere it is recorded as bad debt
        return []

    def _fund(self, venue: int) -> int:
        return venue
