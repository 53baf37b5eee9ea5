"""Keeper takeover (Drift v2, ``keeper_takeover``): a keeper account takes a share of each position over at
``oracle -+ liquidator_fee_rate``, the share ramping from ``initial_fraction`` to all over
``liquidation_duration_s`` since the unit's liquidation started (whole when the position or the unit's shortfall
below maintenance plus ``margin_buffer_ratio`` is under ``whole_below_usd``); the user also pays the IF fee
(``if_fee_rate`` of the taken notional, never more than its equity) to the fund. A bankrupt remainder the fund
cannot pay (within its per-market claim cap) is socialised by the engine's gap settlement (the ADL rule,
:mod:`perpstress.mechanisms.adl.socialised_loss`, says so).

Source: shared/reference/exchange-rules.md section 4.8 (``programs/drift/src/controller/liquidation.rs``,
``math/liquidation.rs``) and section 5 (``resolve_perp_bankruptcy``, per-market insurance claim caps).

Not modelled: the margin-shortage sizing ``shortage / (price (MR - liq_fee) - price if_fee)`` (the ramp alone
sizes the take), the IF fee's scaling so it cannot bankrupt the user (it is capped at the equity instead), the
liquidator fee's rise after the grace period, ``liquidate_perp_with_fill``, and exit from liquidation at
maintenance plus the buffer (the start time is kept for the run).
"""

from __future__ import annotations

from typing import ClassVar

from perpstress.config.venue import KeeperTakeover
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.liquidation.base import LiquidationWorld, Procedure


class KeeperLiquidation(Procedure):
    """The market's keeper takes a ramping share of each position at ``oracle -+ fee``; the user pays the IF fee."""

    needs_keeper: ClassVar[bool] = True

    def __init__(self, config: KeeperTakeover, venue: int, world: LiquidationWorld) -> None:
        super().__init__(venue, world)
        self.config = config

    def liquidate(self, ts_ms: int, account: int, position: int) -> list[AdlRequest]:
        ts, proc, w = ts_ms, self.config, self.world
        acc, mk = w.accounting, w.markets
        if w.liquidation_started[account] < 0:
            w.liquidation_started[account] = ts
        elapsed_s = (ts - w.liquidation_started[account]) / 1000.0
        ramp = proc.initial_fraction + (elapsed_s / proc.liquidation_duration_s if proc.liquidation_duration_s else 1.0)
        equity = acc.unit_equity(account, position)
        maintenance = sum(acc.maintenance(q) for q in acc.unit_positions(account, position))
        shortfall = maintenance * (1 + proc.margin_buffer_ratio) - equity
        for p in acc.unit_positions(account, position):
            m = int(w.positions.market[p])
            lots = int(w.positions.size_lots[p])
            side = 1 if lots > 0 else -1
            oracle = float(mk.mark[m])
            notional = abs(acc.base(p)) * oracle
            share = 1.0 if notional < proc.whole_below_usd or shortfall < proc.whole_below_usd else min(ramp, 1.0)
            take = -side * min(abs(lots), max(1, int(abs(lots) * share)))
            price = oracle * (1.0 - side * proc.liquidator_fee_rate)
            keeper = w.keepers[m]
            acc.close(account, position, p, take, price)
            acc.trade(keeper, -1, keeper, -take, price)
            taken = abs(take) * mk.lot_size[m] * price
            fee = min(proc.if_fee_rate * taken, max(acc.unit_equity(account, position), 0.0))
            acc.credit(account, position, -fee)
            w.funds.deposit(self.fund, fee)
            w.record.add(ts, self.venue, m, account, side, -take, taken, price, oracle, "keeper", fee)
        return []
