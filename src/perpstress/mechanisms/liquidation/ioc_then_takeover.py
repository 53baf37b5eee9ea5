"""IOC then takeover (Binance USD-M): an IOC order for each position of the unit, limited ``max_price_deviation``
from mark; what does not fill is taken over by the insurance fund at the bankruptcy price, if the fund's takeover
limit allows, else it goes to ADL. A clearance fee on the filled notional (never more than the unit's equity) goes
to the fund.

Source: shared/reference/exchange-rules.md section 4.2 (Binance USD-M liquidation protocol) and section 5 (the
fund's max net notional per market).

Not modelled: Binance's "smart" partial reduction to compliance (the IOC is for the whole position); per-symbol
clearance fee rates (one rate per venue). The fund unwinds what it took over in the engine's fund phase
(``engine.fund_unwind_fraction`` per step), not here.
"""

from __future__ import annotations

from perpstress.config.venue import IocThenTakeover
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.liquidation.base import LiquidationWorld, Procedure, order_then_takeover


class IocThenTakeoverLiquidation(Procedure):
    """Whole-position IOC into the book, then the fund's takeover at the bankruptcy price (or ADL)."""

    def __init__(self, config: IocThenTakeover, venue: int, world: LiquidationWorld) -> None:
        super().__init__(venue, world)
        self.config = config

    def liquidate(self, ts_ms: int, account: int, position: int) -> list[AdlRequest]:
        c = self.config
        pos = self.world.positions
        requests: list[AdlRequest] = []
        for p in self.world.accounting.unit_positions(account, position):
            send = -int(pos.size_lots[p])
            requests += order_then_takeover(self, ts_ms, account, position, p, send, False, False,
                                            c.max_price_deviation, c.clearance_fee_rate)  # fmt: skip
        return requests
