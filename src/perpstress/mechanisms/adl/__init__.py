"""Auto-deleveraging: close a bankrupt remainder against positions on the other side, by the venue's rule.

For each :class:`AdlRequest` (a remainder the liquidation side's fund could not take), the venue's
:class:`AdlRule`, built once per venue from :data:`ADL_RULES` (keyed by the ``AdlConfig`` class), closes it:

- :mod:`~perpstress.mechanisms.adl.ranked_queue` (``RankedQueueAdl``: Binance, Bybit, OKX, Bitget, Hyperliquid):
  profitable opposite positions in score order, one queue snapshot per liquidation round;
- :mod:`~perpstress.mechanisms.adl.random_scan` (``RandomScanAdl``: dYdX v4): any opposite position, from a
  random start drawn from the run's ``adl`` stream;
- :mod:`~perpstress.mechanisms.adl.pro_rata` (``ProRataAdl``: wealth, capped and risk-aware pro-rata of Chitra et
  al.): every winner by weight, within caps;
- :mod:`~perpstress.mechanisms.adl.socialised_loss` (``SocialisedLossAdl``: Drift v2): closes nothing; the
  liquidation engine charges the loss to every open position (``LiquidationEngine.socialise``).

Quantities are whole lots (largest remainders), never above a position's size, so ADL never raises anyone's
exposure and open interest stays balanced in lots. Both sides close at the rule's price (bankruptcy, mark, previous
mark or index); a close at a price other than bankruptcy leaves the bankrupt unit a gap for the fund (or bad debt).
Every fill is an event (:class:`AdlRecord`): who was hit, how much, at what price, and the loss versus closing at
mark. Sources and what is not modelled: each rule's module. A ranked queue's walk and a venue's round of random-scan
or pro-rata requests run compiled (:mod:`~perpstress.mechanisms.adl.kernels`; ``AdlBook.compiled = False``: the
Python rules, the reference).
"""

from __future__ import annotations

import numpy as np

from perpstress.config.venue import ProRataAdl, RandomScanAdl, RankedQueueAdl, SocialisedLossAdl, VenueConfig
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl.base import AdlBook, AdlPrices, AdlRecord, AdlRequest, AdlRule, round_to_lots
from perpstress.mechanisms.adl.pro_rata import ProRata
from perpstress.mechanisms.adl.random_scan import RandomScan
from perpstress.mechanisms.adl.ranked_queue import RankedQueue
from perpstress.mechanisms.adl.socialised_loss import SocialisedLoss
from perpstress.state.portfolio import F64

__all__ = [
    "ADL_RULES",
    "AdlBook",
    "AdlEngine",
    "AdlPrices",
    "AdlRecord",
    "AdlRequest",
    "AdlRule",
    "ProRata",
    "RandomScan",
    "RankedQueue",
    "SocialisedLoss",
    "round_to_lots",
]

ADL_RULES: dict[type[RankedQueueAdl | RandomScanAdl | ProRataAdl | SocialisedLossAdl], type[AdlRule]] = {
    RankedQueueAdl: RankedQueue,
    RandomScanAdl: RandomScan,
    ProRataAdl: ProRata,
    SocialisedLossAdl: SocialisedLoss,
}
"""The rule of each ``AdlConfig`` class, built as ``rule(config, book, rng)``."""


class AdlEngine:
    """Runs each venue's ADL rule (built once per venue) over the state arrays; :attr:`record` holds the fills."""

    def __init__(self, venues: list[VenueConfig], accounting: Accounting, rng: np.random.Generator,
                 outside: np.ndarray | None = None) -> None:  # fmt: skip
        """``outside``: positions ADL never closes against (the absorbers of forced flow)."""
        self.venues = venues
        self.accounting = accounting
        self.rng = rng
        self.record = AdlRecord()
        self.book = AdlBook(accounting, self.record, outside)
        self.rules: list[AdlRule] = [ADL_RULES[type(v.adl)](v.adl, self.book, rng) for v in venues]
        """Each venue's rule, by venue index."""

    def execute_batch(
        self, ts_ms: int, requests: list[AdlRequest], previous_mark: F64, index: F64, fund_empty: bool
    ) -> int:
        """Execute a round's requests; returns the lots left uncovered.

        Queue rules rank once per (venue, market, side) for the round and walk the queue across its requests in
        order, after the round's other requests; other rules allocate request by request on the sizes the
        previous requests left."""
        prices = AdlPrices(previous_mark, index, fund_empty)
        left = 0
        rounds: dict[tuple[int, int, int], list[AdlRequest]] = {}
        run: list[AdlRequest] = []  # consecutive requests of one venue's non-queue rule, executed in one call
        for req in requests:
            if self.rules[req.venue].queues_per_round:
                rounds.setdefault((req.venue, req.market, 1 if req.lots > 0 else -1), []).append(req)
                continue
            if run and run[-1].venue != req.venue:
                left += self.rules[run[-1].venue].execute_many(ts_ms, run, prices)
                run = []
            run.append(req)
        if run:
            left += self.rules[run[-1].venue].execute_many(ts_ms, run, prices)
        for (venue, m, side), group in rounds.items():
            left += self.rules[venue].execute_round(ts_ms, m, side, group, prices)
        return left

    def execute(self, ts_ms: int, request: AdlRequest, previous_mark: F64, index: F64, fund_empty: bool) -> int:
        """Close ``request`` against winners; returns the lots left uncovered (no one left to take them)."""
        return self.rules[request.venue].execute(ts_ms, request, AdlPrices(previous_mark, index, fund_empty))

    def rank_percentile(self, m: int, position: int, side: int, sample: int = 5_000) -> float | None:
        """Where ``position`` (on ``side``) stands in its venue's ADL queue for market ``m``: the share of the
        winning positions on its side it outranks, in [0, 1]; None when it is not in profit or the venue does not
        rank (the indicator venues publish). More than ``sample`` candidates are sampled evenly, deterministically.
        """
        return self.rules[int(self.accounting.markets.venue[m])].rank_percentile(m, position, side, sample)
