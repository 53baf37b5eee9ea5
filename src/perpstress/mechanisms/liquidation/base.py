"""What every liquidation procedure shares: the order interface, the records, the state it works on, the protocol,
and the two steps the CEX procedures have in common (an order into the book with a clearance fee, then the fund's
takeover at the bankruptcy price).

Accounting. A position's value to its holder is cash plus ``size * (mark - entry)``; closing ``x`` at price ``P``
moves ``x * (P - entry)`` into cash. Every close has a counterparty (the book's makers through :class:`Execution`,
the fund, the vault, the keeper, or ADL winners), so the total over accounts, funds and fee pools changes only by
declared external flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.insurance import InsuranceFunds
from perpstress.state.events import EventColumns
from perpstress.state.portfolio import Markets, Positions


@dataclass(frozen=True)
class Fill:
    """Result of a taker order: signed lots filled (buy > 0) and their average price (NaN if nothing filled)."""

    lots: int
    average_price: float


class Execution(Protocol):
    """Sends a taker order into a market's book on behalf of ``taker`` and settles the makers' side."""

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill: ...


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


@dataclass(frozen=True)
class LiquidationWorld:
    """The state the procedures work on (the same objects the engine holds)."""

    markets: Markets
    positions: Positions
    accounting: Accounting
    funds: InsuranceFunds
    execution: Execution
    record: LiquidationRecord
    cooldown_until: np.ndarray
    """Hyperliquid: per account, ms until which a further market liquidation is for the whole position."""
    liquidation_started: np.ndarray
    """Drift: per account, ms its liquidation started (-1: not being liquidated)."""
    keepers: dict[int, int]
    """Drift: the keeper account (its one position) that takes liquidations over, per market."""


class LiquidationProcedure(Protocol):
    """One venue's liquidation procedure, built once per venue as ``procedure(config, venue, world)``."""

    needs_keeper: ClassVar[bool]
    """The procedure hands positions to a keeper account per market (which the engine must be given)."""

    def __init__(self, config: Any, venue: int, world: LiquidationWorld) -> None: ...

    def admit(self, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The units (worst first) this step liquidates; the rest wait for the next step."""
        ...

    def liquidate(self, ts_ms: int, account: int, position: int) -> list[AdlRequest]:
        """Liquidate one unit ((account, -1) for cross, (account, position) for isolated); returns what goes to
        ADL. The engine settles the unit's gap afterwards."""
        ...


class Procedure:
    """What the procedures share: their venue, its fund and the world; every unit admitted at once."""

    needs_keeper: ClassVar[bool] = False

    def __init__(self, venue: int, world: LiquidationWorld) -> None:
        self.venue = venue
        self.fund = venue
        """The venue's insurance fund (one per venue)."""
        self.world = world

    def admit(self, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return units


def order_then_takeover(
    proc: Procedure,
    ts: int,
    account: int,
    position: int,
    p: int,
    send: int,
    fok: bool,
    partial: bool,
    max_price_deviation: float,
    clearance_fee_rate: float,
) -> list[AdlRequest]:
    """An order of ``send`` lots of position ``p`` into the book, limited ``max_price_deviation`` from mark (FoK if
    ``fok``), its clearance fee on the filled notional to the fund; what is left is taken over (a partial tier step
    that filled stops there: the unit is checked again next step)."""
    w = proc.world
    pos, mk = w.positions, w.markets
    m = int(pos.market[p])
    lots = int(pos.size_lots[p])
    side = 1 if lots > 0 else -1
    mark = float(mk.mark[m])
    if send != 0:
        fill = w.execution.execute(m, send, mark * (1 - side * max_price_deviation), fok, account)
        if fill.lots != 0:
            w.accounting.close(account, position, p, fill.lots, fill.average_price)
            notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
            fee = min(clearance_fee_rate * notional, max(w.accounting.unit_equity(account, position), 0.0))
            w.accounting.credit(account, position, -fee)
            w.funds.deposit(proc.fund, fee)
            w.record.add(ts, proc.venue, m, account, side, -fill.lots, notional, fill.average_price, mark, "book", fee)
            if partial:
                return []  # a tier step: the unit is checked again next step and steps further if it must
    if pos.size_lots[p] == 0:
        return []
    return take_over(proc, ts, account, position, p)


def take_over(proc: Procedure, ts: int, account: int, position: int, p: int) -> list[AdlRequest]:
    """The fund takes position ``p`` over at its bankruptcy price, if its takeover limit allows and it is not past
    its drawdown threshold (OKX, Bybit); else the position goes to ADL."""
    w = proc.world
    pos, mk = w.positions, w.markets
    m = int(pos.market[p])
    lots = int(pos.size_lots[p])
    bp = w.accounting.bankruptcy_price(account, position, p)
    fund = proc.fund
    size = lots * mk.lot_size[m]
    drawn_down = w.funds.drawdown_triggered(fund, mk.mark)  # OKX, Bybit: ADL past the drawdown
    if drawn_down or not w.funds.can_take_over(fund, m, size, bp, mk.mark):
        return [AdlRequest(proc.venue, m, account, p, lots, bp)]
    w.accounting.close(account, position, p, -lots, bp)
    w.funds.take_over(fund, m, size, bp)
    w.record.add(ts, proc.venue, m, account, 1 if lots > 0 else -1, lots, abs(size) * bp, bp, float(mk.mark[m]),
                 "takeover", 0.0)  # fmt: skip
    return []
