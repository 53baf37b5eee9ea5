"""Socialised loss (Drift v2): a bankrupt remainder closes nothing; the loss the fund cannot pay is charged to every
open position in the market, long and short, pro rata by size.

Source: shared/reference/exchange-rules.md sections 6.1 and 6.4; Drift v2 ``math/liquidation.rs``
(``calculate_funding_rate_deltas_to_resolve_bankruptcy``), ``controller/liquidation.rs``
(``resolve_perp_bankruptcy``).

This rule answers every request with its whole size uncovered and says so through
:attr:`SocialisedLoss.socialises_losses`: the liquidation side's gap settlement
(:meth:`perpstress.mechanisms.liquidation.LiquidationEngine.settle_gap`) then charges the uncovered loss to the
market's open positions instead of recording bad debt.

Not modelled: Drift's charge through the cumulative funding rate (here it is taken from margin at once), its fee
pool's share before the fund, and ``total_social_loss`` per market (the run keeps one total per venue).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from perpstress.config.venue import SocialisedLossAdl
from perpstress.mechanisms.adl.base import AdlBook, AdlPrices, AdlRequest


class SocialisedLoss:
    """Closes nothing: the liquidation side charges the loss to every open position in the market."""

    socialises_losses: ClassVar[bool] = True
    queues_per_round: ClassVar[bool] = False

    def __init__(self, config: SocialisedLossAdl, book: AdlBook, rng: np.random.Generator) -> None:
        self.config = config

    def execute(self, ts_ms: int, request: AdlRequest, prices: AdlPrices) -> int:
        return abs(request.lots)

    def execute_round(self, ts_ms: int, market: int, side: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        return sum(abs(r.lots) for r in requests)

    def execute_many(self, ts_ms: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        return sum(abs(r.lots) for r in requests)

    def rank_percentile(self, m: int, position: int, side: int, sample: int) -> float | None:
        return None
