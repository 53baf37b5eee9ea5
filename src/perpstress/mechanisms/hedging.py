"""Owners hedged across venues: long on one venue, short the same asset on another, each leg its own account.

Rule (perpstress.config.agents.HedgedBook): every ``check_interval_s`` an owner looks at both legs. The *weaker*
leg is one whose MM / equity has reached ``topup_margin_ratio`` (liquidation risk) or, when ``adl_quantile`` is
set, a winning leg whose ADL score ranks above that quantile of its venue's queue (the ADL "indicator light"
venues publish; lowering leverage lowers the rank). The owner then moves ``topup_fraction`` of the other leg's
free margin (wallet above initial margin) to it over the transfer rail, one transfer at a time.

A hedge *breaks* when a liquidation or ADL fill closes part of one leg while the other stays open: each such fill
is an event with the unhedged notional left and the owner's P&L so far; an owner counts once in ``broken``.
Assumption: a broken owner does not close the other leg within the run (the exposure the event reports is what it
carries).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perpstress.mechanisms.traders import TradingWorld
from perpstress.state.events import EventColumns


@dataclass
class HedgeRecord(EventColumns):
    """One row per fill that closed part of a hedged leg while the other leg stayed open."""

    ts_ms: list[int] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    account: list[int] = field(default_factory=list)
    market: list[int] = field(default_factory=list)
    other_account: list[int] = field(default_factory=list)
    other_market: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    """``liquidation`` or ``adl``."""
    lots: list[int] = field(default_factory=list)
    unhedged_notional_usd: list[float] = field(default_factory=list)
    pnl_usd: list[float] = field(default_factory=list)
    transfer_in_flight_usd: list[float] = field(default_factory=list)


@dataclass
class HedgePairs:
    """Arrays over owners: the long and short legs' accounts and markets, and each book's parameters."""

    owner: np.ndarray
    long_account: np.ndarray
    short_account: np.ndarray
    long_market: np.ndarray
    short_market: np.ndarray
    book: np.ndarray
    capital_usd: np.ndarray
    """Both legs' starting wallets together, USD."""
    topup_ratio: list[float]
    topup_fraction: list[float]
    adl_quantile: list[float | None]
    leverage: list[tuple[float, float]]
    """Per book: (long, short) initial leverage; a leg keeps its initial margin when sending a top-up."""
    check_every: list[int]
    record: HedgeRecord = field(default_factory=HedgeRecord)
    broken_notional: dict[int, float] = field(default_factory=dict)
    """Largest unhedged notional each broken owner carried, USD."""
    topups: int = 0

    @property
    def n(self) -> int:
        return int(self.owner.size)

    def leg_of(self) -> dict[int, tuple[int, int]]:
        """account -> (pair, other account)."""
        out: dict[int, tuple[int, int]] = {}
        for i in range(self.n):
            out[int(self.long_account[i])] = (i, int(self.short_account[i]))
            out[int(self.short_account[i])] = (i, int(self.long_account[i]))
        return out

    def check(self, world: TradingWorld, step: int, adl_high: set[int]) -> None:
        """Top up weaker legs; ``adl_high`` holds the hedged accounts whose ADL rank is above their quantile."""
        for i in range(self.n):
            if step % self.check_every[self.book[i]] != 0:
                continue
            legs = (int(self.long_account[i]), int(self.short_account[i]))
            if any(world.position_lots(a) == 0 for a in legs):
                continue
            b = int(self.book[i])
            risk = []
            for a in legs:
                eq = world.equity(a)
                ratio = world.maintenance(a) / eq if eq > 0 else np.inf
                risk.append(max(ratio / self.topup_ratio[b], 1.0 if a in adl_high else 0.0))
            weak = int(np.argmax(risk))
            if risk[weak] < 1.0:
                continue
            dst, src = legs[weak], legs[1 - weak]
            if world.in_transit_to(dst) > 0:
                continue
            free = min(world.wallet(src), world.equity(src)) - world.notional(src) / self.leverage[b][1 - weak]
            if free > 0:
                world.transfer(int(self.owner[i]), src, dst, self.topup_fraction[b] * free, "hedge_topup")
                self.topups += 1

    def note_fills(self, world: TradingWorld, fills: list[tuple[int, str, int]], mark: np.ndarray) -> None:
        """Record breaks for ``fills`` = (account, kind, lots) that hit hedged legs this round."""
        legs = self.leg_of()
        for account, kind, lots in fills:
            hit = legs.get(account)
            if hit is None:
                continue
            i, other = hit
            if world.position_lots(other) == 0:
                continue  # the other leg had already gone: nothing left to break
            markets = {
                int(self.long_account[i]): int(self.long_market[i]),
                int(self.short_account[i]): int(self.short_market[i]),
            }
            long_base = world.position_lots(int(self.long_account[i])) * world.lot_size(int(self.long_market[i]))
            short_base = world.position_lots(int(self.short_account[i])) * world.lot_size(int(self.short_market[i]))
            unhedged = abs(long_base + short_base) * float(mark[markets[other]])
            pnl = world.equity(int(self.long_account[i])) + world.equity(int(self.short_account[i]))
            in_flight = world.in_transit_to(int(self.long_account[i])) + world.in_transit_to(int(self.short_account[i]))
            pnl += in_flight - float(self.capital_usd[i])
            owner = int(self.owner[i])
            self.record.add(world.now_ms, owner, account, markets[account], other, markets[other], kind, int(lots),
                            unhedged, pnl, in_flight)  # fmt: skip
            self.broken_notional[owner] = max(self.broken_notional.get(owner, 0.0), unhedged)
