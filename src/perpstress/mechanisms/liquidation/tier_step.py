"""Tier step then takeover (Bybit, OKX, Bitget; BitMEX's shape): positions in the lowest tiers are taken over whole
at the bankruptcy price; others send an order (FoK or IOC, ``TierStepThenTakeover.order``) that brings the notional
down ``tiers_to_drop`` tiers, to the cap of the tier that many below its own; a failed FoK means takeover. A step
that filled stops there: the unit is checked again next step and steps further if it must. A clearance fee on the
filled notional goes to the fund; the fund's takeover is refused past its takeover limit or drawdown threshold, and
the position then goes to ADL.

Source: shared/reference/exchange-rules.md sections 4.3 (Bybit), 4.4 (OKX: two tiers, re-check), 4.5 (BitMEX),
4.9 (Bitget) and 5 (drawdown thresholds).

Not modelled: lowering the risk limit and cancelling orders before the order (orders are cancelled by the engine
before any procedure); OKX's ~60 s re-check (``recheck_s``: the unit is re-checked next step); offsetting hedged
pairs first (OKX, Bitget); BitMEX's limit order at the bankruptcy price after takeover.
"""

from __future__ import annotations

import numpy as np

from perpstress.config.venue import TierStepThenTakeover
from perpstress.mechanisms.adl.base import AdlRequest
from perpstress.mechanisms.liquidation.base import LiquidationWorld, Procedure, order_then_takeover


class TierStepLiquidation(Procedure):
    """An order down ``tiers_to_drop`` tiers (the lowest tiers taken over whole), then takeover (or ADL)."""

    def __init__(self, config: TierStepThenTakeover, venue: int, world: LiquidationWorld) -> None:
        super().__init__(venue, world)
        self.config = config
        self.fill_or_kill = config.order == "fok"
        """The step's order is fill-or-kill (else IOC)."""

    def liquidate(self, ts_ms: int, account: int, position: int) -> list[AdlRequest]:
        requests: list[AdlRequest] = []
        for p in self.world.accounting.unit_positions(account, position):
            requests += self._step(ts_ms, account, position, p)
        return requests

    def _step(self, ts: int, account: int, position: int, p: int) -> list[AdlRequest]:
        proc = self.config
        w = self.world
        pos, mk = w.positions, w.markets
        m = int(pos.market[p])
        lots = int(pos.size_lots[p])
        side = 1 if lots > 0 else -1
        mark = float(mk.mark[m])
        send, fok, partial = -lots, False, False
        notional = abs(w.accounting.base(p)) * mark
        k = int(np.searchsorted(mk.tier_cap[m], notional, side="left"))
        if k < proc.full_takeover_below_tier:
            send = 0  # the lowest tiers go straight to the engine at the bankruptcy price
        else:  # bring the notional down to the cap of the tier ``tiers_to_drop`` below
            target = mk.tier_cap[m, k - proc.tiers_to_drop] if k >= proc.tiers_to_drop else 0.0
            keep = int(target / mark / mk.lot_size[m])
            send = -side * max(abs(lots) - keep, 0)
            fok, partial = self.fill_or_kill, keep > 0
        return order_then_takeover(self, ts, account, position, p, send, fok, partial, proc.max_price_deviation,
                                   proc.clearance_fee_rate)  # fmt: skip
