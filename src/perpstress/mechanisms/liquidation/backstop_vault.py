"""Market orders, then the backstop vault (Hyperliquid, ``market_then_backstop``): below ``backstop_mm_fraction``
of maintenance the backstop (liquidator) vault takes the unit's positions over at mark together with its remaining
collateral; a unit already at negative equity, or any unit once the vault's own equity is gone, goes to ADL at the
bankruptcy prices (the vault does not absorb negative equity). Otherwise a market order (limited
``max_price_deviation`` from mark) for the whole position, or ``partial_fraction`` of it above
``partial_threshold_usd`` outside the cooldown (``cooldown_s`` after a partial, during which later liquidations are
for the whole position). No fee; the remaining collateral stays with the trader.

Source: shared/reference/exchange-rules.md section 4.6 (Hyperliquid ``docs/trading/liquidations.md``), section 5
(the vault keeps the maintenance margin as its buffer) and section 6.1 (ADL once account value goes negative).

Not modelled: HIP-3 DEXs' own backstop liquidators; a market order's book walk beyond the simulation bound
``max_price_deviation``. The vault unwinds what it took over in the engine's fund phase, not here.
"""

from __future__ import annotations

from perpstress.config.venue import MarketThenBackstop
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.liquidation.base import LiquidationWorld, Procedure


class BackstopVaultLiquidation(Procedure):
    """Market orders for the position (slices above a size); the vault takes the unit over below a share of MM."""

    def __init__(self, config: MarketThenBackstop, venue: int, world: LiquidationWorld) -> None:
        super().__init__(venue, world)
        self.config = config

    def liquidate(self, ts_ms: int, account: int, position: int) -> list[AdlRequest]:
        ts, proc, w = ts_ms, self.config, self.world
        mk, acc = w.markets, w.accounting
        ps = acc.unit_positions(account, position)
        equity = acc.unit_equity(account, position)
        maintenance = sum(acc.maintenance(p) for p in ps)
        if equity < proc.backstop_mm_fraction * maintenance:
            if equity < 0 or w.funds.equity(self.fund, mk.mark) <= 0:  # the vault takes no negative equity and
                # nothing once its own equity is gone: ADL at the bankruptcy prices
                return [
                    AdlRequest(
                        self.venue,
                        int(w.positions.market[p]),
                        account,
                        p,
                        int(w.positions.size_lots[p]),
                        acc.bankruptcy_price(account, position, p),
                    )
                    for p in ps
                ]
            fund = self.fund
            for p in ps:
                m = int(w.positions.market[p])
                lots = int(w.positions.size_lots[p])
                mark = float(mk.mark[m])
                acc.close(account, position, p, -lots, mark)
                w.funds.take_over(fund, m, lots * mk.lot_size[m], mark)
                w.record.add(ts, self.venue, m, account, 1 if lots > 0 else -1, lots,
                             abs(lots) * mk.lot_size[m] * mark, mark, mark, "backstop", 0.0)  # fmt: skip
            rest = acc.collateral(account, position)
            acc.credit(account, position, -rest)
            w.funds.deposit(fund, rest)
            return []
        for p in ps:
            m = int(w.positions.market[p])
            lots = int(w.positions.size_lots[p])
            side = 1 if lots > 0 else -1
            mark = float(mk.mark[m])
            send = -lots
            if abs(lots) * mk.lot_size[m] * mark > proc.partial_threshold_usd and ts >= w.cooldown_until[account]:
                send = -side * max(1, int(abs(lots) * proc.partial_fraction))
                w.cooldown_until[account] = ts + int(proc.cooldown_s * 1000)
            fill = w.execution.execute(m, send, mark * (1 - side * proc.max_price_deviation), False, account)
            if fill.lots != 0:
                acc.close(account, position, p, fill.lots, fill.average_price)
                notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
                w.record.add(
                    ts, self.venue, m, account, side, -fill.lots, notional, fill.average_price, mark, "book", 0.0
                )
        return []
