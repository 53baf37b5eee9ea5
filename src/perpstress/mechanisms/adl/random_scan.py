"""Random-scan deleveraging (dYdX v4): offset the bankrupt position against opposite positions in id order from a
pseudo-random start, wrapping, up to ``max_accounts_scanned``; each offsets up to its whole position.

Source: shared/reference/exchange-rules.md sections 6.2 and 6.3; dYdX v4 ``protocol/x/clob/keeper/deleveraging.go``
(``OffsetSubaccountPerpetualPosition``), ``x/clob/flags/flags.go`` (``MaxDeleveragingSubaccountsToIterate``).

- Candidates are every other account's opposite position in the market, in profit or not (deleveraging.go
  iterates every subaccount with an opposite position).
- The start is drawn from the run's ``adl`` stream (one draw per request that has candidates), so a run is
  deterministic for its seed.
- Both sides close at ``price`` (the bankruptcy price by default).
- A venue's round of requests runs in one compiled call (:func:`~perpstress.mechanisms.adl.kernels.allocate_requests`,
  the same draws from the same stream), the Python rule its reference.

Not modelled: final-settlement deleveraging at the oracle price, the skip of non-overlapping bankruptcy prices,
dYdX's subaccount (not position) granularity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perpstress.config.venue import RandomScanAdl
from perpstress.mechanisms.adl import kernels
from perpstress.mechanisms.adl.base import AdlBook, AdlPrices, AdlRequest, AllocatingRule, price_of
from perpstress.rules import adl as rules
from perpstress.state.portfolio import F64


class RandomScan(AllocatingRule):
    """Scan opposite positions from a random start, each offsetting up to its whole size, at the venue's price."""

    profitable_only = False

    def __init__(self, config: RandomScanAdl, book: AdlBook, rng: np.random.Generator) -> None:
        super().__init__(book)
        self.config = config
        self.rng = rng

    def price(self, request: AdlRequest, mark: float, prices: AdlPrices) -> float:
        return price_of(self.config.price, request, mark, prices)

    def kernel(self) -> tuple[int, F64, Any] | None:
        rng: Any = self.rng
        if not isinstance(rng, np.random.Generator):  # a stream numba cannot draw from (a test's recorder)
            return None
        params = np.zeros(kernels.N_PARAMS)
        params[kernels.P_MAX_ACCOUNTS] = self.config.max_accounts_scanned
        return kernels.RANDOM_SCAN, params, self.rng

    def allocate(self, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray, np.ndarray]:
        start = int(self.rng.integers(cand.size))
        sequence = (start + np.arange(cand.size)) % cand.size
        take, _ = rules.allocate_random_scan(want, sizes, start, self.config.max_accounts_scanned)
        return take, sizes, sequence
