"""Arbitrageurs bound by capital: basis traders (perpetual vs spot on one venue) and cross-venue traders (the same
asset's perpetuals on two venues).

Rule: a trader acts when the gap between the two books, after both legs' taker fees and ``threshold_bps``, is
positive: it sells the dear leg and buys the cheap one with IOC orders limited so the edge survives, at most
``clip_usd`` per step, and only while its futures accounts stay below ``max_leverage`` (and, for the spot leg of a
basis trade, while its spot account has the cash to buy or the coins to sell). When the gap has closed to less
than half the fees it unwinds a clip. A cross-venue trader whose account on one venue reaches
``rebalance_margin_ratio`` (MM / equity), or has less than a clip of room left, asks for half the other
account's free margin (wallet above initial margin at ``max_leverage``) over the transfer rail, one transfer at a
time.

Assumptions: the second leg is sent right after the first fills, for the base quantity the first filled; what it
cannot fill stays unhedged until the next step's unwind. Traders see only the two books (no latency, no queue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perpstress.mechanisms.traders import TradingWorld


@dataclass
class ArbLegs:
    """One trader: ``dear`` and ``cheap`` legs are decided each step from the books."""

    owner: int
    account_a: int
    market_a: int
    account_b: int
    market_b: int
    a_is_spot: bool
    b_is_spot: bool
    threshold: float
    clip_usd: float
    max_leverage: float
    max_position_usd: float
    rebalance_ratio: float | None
    trades: int = 0
    capital_bound_steps: int = 0
    """Steps in which an edge was there but capital or margin stopped the trader."""


def _room(world: TradingWorld, account: int, is_spot: bool, side: int, price: float, leg: ArbLegs) -> float:
    """USD the leg may still trade on ``side`` (+1 buy, -1 sell)."""
    lots = world.position_lots(account)
    held = abs(world.notional(account))
    reducing = lots != 0 and (lots > 0) != (side > 0)
    if reducing:
        return held
    if is_spot:
        if side > 0:  # buying needs cash: the spot account's wallet less what its holdings cost
            return max(world.wallet(account), 0.0)
        return max(leg.max_position_usd - held, 0.0) if lots <= 0 else held  # selling short up to the cap
    equity = world.equity(account)
    return max(min(equity * leg.max_leverage, leg.max_position_usd) - held, 0.0)


def act(world: TradingWorld, leg: ArbLegs) -> None:
    """One step of the trader: trade the gap if there is one (a side the trade does not touch may be empty),
    otherwise unwind once the books have converged; then rebalance margin between venues when needed."""
    bid_a, ask_a = world.quotes(leg.market_a)
    bid_b, ask_b = world.quotes(leg.market_b)
    cost = world.taker_fee_rate(leg.market_a) + world.taker_fee_rate(leg.market_b) + leg.threshold
    if math.isfinite(bid_a) and math.isfinite(ask_b) and bid_a > ask_b * (1 + cost):
        _trade(world, leg, sell=(leg.account_a, leg.market_a, leg.a_is_spot, bid_a),
               buy=(leg.account_b, leg.market_b, leg.b_is_spot, ask_b), cost=cost)  # fmt: skip
    elif math.isfinite(bid_b) and math.isfinite(ask_a) and bid_b > ask_a * (1 + cost):
        _trade(world, leg, sell=(leg.account_b, leg.market_b, leg.b_is_spot, bid_b),
               buy=(leg.account_a, leg.market_a, leg.a_is_spot, ask_a), cost=cost)  # fmt: skip
    elif all(math.isfinite(x) for x in (bid_a, ask_a, bid_b, ask_b)):
        _unwind(world, leg, (bid_a + ask_a) / 2, (bid_b + ask_b) / 2, cost)
    if leg.rebalance_ratio is not None:
        _rebalance(world, leg)


def _trade(world: TradingWorld, leg: ArbLegs, sell: tuple[int, int, bool, float], buy: tuple[int, int, bool, float],
           cost: float) -> None:  # fmt: skip
    s_acc, s_m, s_spot, s_px = sell
    b_acc, b_m, b_spot, b_px = buy
    usd = min(leg.clip_usd, _room(world, s_acc, s_spot, -1, s_px, leg), _room(world, b_acc, b_spot, 1, b_px, leg))
    lots = int(usd / s_px / world.lot_size(s_m))
    if lots <= 0:
        leg.capital_bound_steps += 1
        return
    filled, avg = world.trade(s_acc, s_m, -lots, b_px * (1 + cost))  # sell only while the edge survives
    if filled == 0:
        return
    base = -filled * world.lot_size(s_m)
    other = round(base / world.lot_size(b_m))
    if other > 0:
        world.trade(b_acc, b_m, other, avg / (1 + cost / 2))
    leg.trades += 1


def _unwind(world: TradingWorld, leg: ArbLegs, mid_a: float, mid_b: float, cost: float) -> None:
    lots_a = world.position_lots(leg.account_a)
    if lots_a == 0 or abs(mid_a / mid_b - 1) > cost / 2:
        return
    side = -1 if lots_a > 0 else 1
    n = min(abs(lots_a), max(1, int(leg.clip_usd / mid_a / world.lot_size(leg.market_a))))
    filled, _ = world.trade(leg.account_a, leg.market_a, side * n, mid_a * (1 + side * cost))
    if filled:
        base = -filled * world.lot_size(leg.market_a)
        lots_b = world.position_lots(leg.account_b)
        other = min(abs(round(base / world.lot_size(leg.market_b))), abs(lots_b))
        if other:
            world.trade(leg.account_b, leg.market_b, (1 if lots_b < 0 else -1) * other, mid_b * (1 - side * cost))


def _rebalance(world: TradingWorld, leg: ArbLegs) -> None:
    assert leg.rebalance_ratio is not None
    for weak, strong in ((leg.account_a, leg.account_b), (leg.account_b, leg.account_a)):
        eq = world.equity(weak)
        if world.in_transit_to(weak) > 0 or world.in_transit_to(strong) > 0:
            continue
        room = min(eq * leg.max_leverage, leg.max_position_usd) - world.notional(weak)
        if eq <= 0 or world.maintenance(weak) / eq >= leg.rebalance_ratio or room < leg.clip_usd:
            free = min(world.wallet(strong), world.equity(strong)) - world.notional(strong) / leg.max_leverage
            if free > leg.clip_usd / leg.max_leverage:
                world.transfer(leg.owner, strong, weak, 0.5 * free, "arbitrage_rebalance")
            return
