"""Pro-rata ADL (Chitra et al. 2025, "Autodeleveraging: Impossibilities and Optimization", arXiv:2512.01112):
spread the bankrupt size over every winner instead of closing a queue.

Source: shared/reference/exchange-rules.md section 8; the allocations are :mod:`perpstress.rules.adl`'s (water
filling). One rule, :class:`ProRata`, with the family member chosen once by ``ProRataAdl.rule``
(:data:`ALLOCATIONS`):

- ``wealth_pro_rata``: each winner closes in proportion to its profit at mark (every winner gives up the same
  fraction of its profit), capped by its size.
- ``capped_pro_rata``: the same, no account closing more than ``max_haircut`` of its position (in whole lots).
- ``risk_aware_pro_rata``: weights ``profit x leverage^2`` (the paper's levered pro-rata with ``g(lambda) =
  lambda``), capped at ``max_haircut``; leverage is notional over the unit's equity (infinite at equity <= 0).

Candidates are the other accounts' opposite positions in profit at mark; amounts are rounded to whole lots by
largest remainders. Both sides close at ``price`` (mark by default). What the caps cannot take is left uncovered.
A venue's round of requests runs in one compiled call (:func:`~perpstress.mechanisms.adl.kernels.allocate_requests`),
the Python rule its reference.

Not modelled: the paper's continuous haircuts of profit (here a haircut is a close of lots at the rule's price)
and its fee terms; no venue runs these rules (they are studied alternatives).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from perpstress.config.venue import ProRataAdl
from perpstress.mechanisms.adl import kernels
from perpstress.mechanisms.adl.base import AdlBook, AdlPrices, AdlRequest, AllocatingRule, price_of
from perpstress.rules import adl as rules
from perpstress.state.portfolio import F64


def _wealth(rule: ProRata, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray]:
    take, _ = rules.allocate_wealth_pro_rata(want, sizes, upnl)
    return take, sizes


def _capped(rule: ProRata, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray]:
    h = rule.config.max_haircut
    caps = np.floor(h * sizes + 1e-9).astype(np.int64)
    take, _ = rules.allocate_capped_pro_rata(want, sizes, upnl, h)
    return take, caps


def _risk_aware(rule: ProRata, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray]:
    h = rule.config.max_haircut
    caps = np.floor(h * sizes + 1e-9).astype(np.int64)
    take, _ = rules.allocate_risk_aware_pro_rata(want, sizes, upnl, rule.leverage(cand), h)
    return take, caps


Allocation = Callable[["ProRata", int, np.ndarray, np.ndarray, F64], tuple[F64, np.ndarray]]

ALLOCATIONS: dict[str, Allocation] = {
    "wealth_pro_rata": _wealth,
    "capped_pro_rata": _capped,
    "risk_aware_pro_rata": _risk_aware,
}
"""Each pro-rata family member (``ProRataAdl.rule``): the amounts candidates close and their caps in lots."""

KERNEL_RULES = {
    "wealth_pro_rata": kernels.WEALTH_PRO_RATA,
    "capped_pro_rata": kernels.CAPPED_PRO_RATA,
    "risk_aware_pro_rata": kernels.RISK_AWARE_PRO_RATA,
}
"""Each member's code in :func:`~perpstress.mechanisms.adl.kernels.allocate_requests`."""
_NO_DRAWS = np.random.default_rng(0)
"""The generator handed to the compiled allocation, which draws nothing for these rules."""


class ProRata(AllocatingRule):
    """Haircut every winner by the family member's weights, within its cap, at the venue's price."""

    def __init__(self, config: ProRataAdl, book: AdlBook, rng: np.random.Generator) -> None:
        super().__init__(book)
        self.config = config
        self._allocation = ALLOCATIONS[config.rule]

    def price(self, request: AdlRequest, mark: float, prices: AdlPrices) -> float:
        return price_of(self.config.price, request, mark, prices)

    def kernel(self) -> tuple[int, F64, Any] | None:
        params = np.zeros(kernels.N_PARAMS)
        params[kernels.P_MAX_HAIRCUT] = self.config.max_haircut
        return KERNEL_RULES[self.config.rule], params, _NO_DRAWS

    def allocate(self, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray, np.ndarray]:
        take, caps = self._allocation(self, want, cand, sizes, upnl)
        return take, caps, np.arange(cand.size)

    def leverage(self, cand: np.ndarray) -> F64:
        """Each candidate's notional over its unit's equity (infinite when the equity is not positive)."""
        acc = self.book.accounting
        equity, _, _ = self.book.units(cand)
        m = acc.positions.market[cand]
        notional = np.abs(acc.positions.size_lots[cand] * acc.markets.lot_size[m]) * acc.markets.mark[m]
        return np.where(equity > 0, notional / np.where(equity > 0, equity, 1.0), np.inf)
