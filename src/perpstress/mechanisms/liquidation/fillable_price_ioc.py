"""Fillable-price IOC (dYdX v4): per block (a simulation step) at most ``max_subaccounts_per_block`` units, worst
first; for each, an IOC at the fillable price ``O * (1 -+ ABR * SMMR * MMF)``, ``ABR = clamp(BA (1 - TNC/TMMR), 0,
1)``, for ``max_position_portion`` of one position (its first open one) within the notional caps (at least
``min_position_notional_usd``, at most ``max_notional_per_block_usd``, never more than the position). A fill better
than bankruptcy pays a fee (the distance from bankruptcy, at most ``max_liquidation_fee_rate`` of the quote) to the
fund; a worse one is paid by the fund (at most ``max_insurance_lost_per_block_usd``); nothing filled with negative
net collateral goes to deleveraging at the bankruptcy price.

Source: shared/reference/exchange-rules.md section 4.7 (``protocol/x/clob/keeper/liquidations.go``, mainnet
genesis ``liquidations_config``) and section 6.1 (``deleveraging.go``, ``CanDeleverageSubaccount``).

Not modelled: the pseudo-random start and the |fillable - oracle| ordering of the block's subaccounts (units come
worst first); the pseudo-random choice of the position (the first open one); the per-subaccount block limits
across several fills of one block (one fill per unit per step); withdrawal gating on negative TNC.
"""

from __future__ import annotations

import numpy as np

from perpstress.config.venue import FillablePriceIoc
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.liquidation.base import LiquidationWorld, Procedure


class FillablePriceIocLiquidation(Procedure):
    """An IOC at the fillable price for a slice of one position; its distance from bankruptcy is the fund's fee
    (capped) or the fund's payment (capped per block)."""

    def __init__(self, config: FillablePriceIoc, venue: int, world: LiquidationWorld) -> None:
        super().__init__(venue, world)
        self.config = config

    def admit(self, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return units[: self.config.max_subaccounts_per_block]  # per block; the rest wait for the next step

    def liquidate(self, ts_ms: int, account: int, position: int) -> list[AdlRequest]:
        proc, w = self.config, self.world
        acc, mk = w.accounting, w.markets
        ps = acc.unit_positions(account, position)
        if not ps:
            return []
        tnc = acc.unit_equity(account, position)
        tmmr = sum(acc.maintenance(q) for q in ps)
        p = ps[0]
        m = int(w.positions.market[p])
        lots = int(w.positions.size_lots[p])
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
        fill = w.execution.execute(m, send, fillable, False, account)
        if fill.lots == 0:
            return [AdlRequest(self.venue, m, account, p, lots, bp)] if tnc < 0 else []
        acc.close(account, position, p, fill.lots, fill.average_price)
        closed = abs(fill.lots) * mk.lot_size[m]
        delta = side * (fill.average_price - bp) * closed  # > 0: closed better than bankruptcy
        fund = self.fund
        fee = 0.0
        if delta > 0:
            fee = min(delta, proc.max_liquidation_fee_rate * closed * fill.average_price)
            acc.credit(account, position, -fee)
            w.funds.deposit(fund, fee)
        else:
            paid = w.funds.pay(fund, m, min(-delta, proc.max_insurance_lost_per_block_usd))
            acc.credit(account, position, paid)
        w.record.add(ts_ms, self.venue, m, account, side, -fill.lots, closed * fill.average_price, fill.average_price,
                     oracle, "book", fee)  # fmt: skip
        return []
