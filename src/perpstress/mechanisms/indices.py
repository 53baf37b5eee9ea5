"""Each perpetual's spot index from its venue's constituents (rules in :mod:`perpstress.rules.index`).

A constituent that is a simulated venue with a spot book of the market's base asset contributes that book's mid
(the last two-sided mid while the book is one-sided or empty; weight 0 once that is older than the venue's
``stale_after_s``). A constituent that is not simulated (Coinbase, Kraken ... or any venue without such a book)
contributes the asset's exogenous fundamental value: the rest of the market, which the shock moves. A market whose
constituents are all external has the fundamental value as index, exactly as before spot books were simulated.

Methods (:data:`INDEX_RULES`, keyed by ``IndexMethod``, looked up once per market at build; formulas in
:mod:`perpstress.rules.index`; shared/reference/exchange-rules.md section 1):

- ``weighted_mean`` (Binance 1.1, OKX 1.3; Bybit and Bitget by assumption): the weighted mean of the
  constituents, a source further than the asset's outlier band from the median capped at the band's edge (Binance:
  3 %, 1 % for BTC and ETH).
- ``weighted_median`` (Hyperliquid's oracle 1.5): the weighted median of the sources.
- ``median`` (dYdX 1.6, Drift 1.7: oracle networks): the median of the live sources (the band is not used).

An index with no live source keeps its previous value (the fundamental value before it has one). Not modelled:
Hyperliquid's stake-weighted median over validators, dYdX's minimum price change and accuracy check, Binance's
"Last Price Protected" fallback, volume weights that move with the sources' volumes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from perpstress.config.venue import IndexMethod, VenueConfig
from perpstress.rules import index as rules
from perpstress.state.portfolio import F64


class IndexRule(Protocol):
    """One index method: the index from the constituents' ``prices`` and ``weights`` (0: stale), ``band`` the
    asset's outlier band (a fraction of the median)."""

    def __call__(self, prices: F64, weights: F64, band: float) -> float: ...


def weighted_mean(prices: F64, weights: F64, band: float) -> float:
    return rules.weighted_mean_index(prices, weights, band)


def weighted_median(prices: F64, weights: F64, band: float) -> float:
    return rules.weighted_median_index(prices, weights)


def median(prices: F64, weights: F64, band: float) -> float:
    return rules.median_index(prices, weights)


INDEX_RULES: dict[IndexMethod, IndexRule] = {
    IndexMethod.WEIGHTED_MEAN: weighted_mean,
    IndexMethod.WEIGHTED_MEDIAN: weighted_median,
    IndexMethod.MEDIAN: median,
}
"""The rule of each ``IndexMethod``."""


class IndexEngine:
    def __init__(self, venues: list[VenueConfig], market_venue: list[int], market_base: list[str],
                 perpetual: np.ndarray, spot_book_of: dict[tuple[int, str], int], step_ms: int) -> None:  # fmt: skip
        """``spot_book_of[(venue, asset)]`` is the market row of a simulated spot book."""
        names = {v.name: i for i, v in enumerate(venues)}
        self.n = len(market_venue)
        self.step_ms = step_ms
        self._plan: list[tuple[int, IndexRule, float, np.ndarray, np.ndarray, float]] = []
        for m in np.flatnonzero(perpetual):
            cfg = venues[market_venue[m]].index
            books, weights = [], []
            for source, w in cfg.constituents.items():
                vi = names.get(source)
                books.append(spot_book_of.get((vi, market_base[m]), -1) if vi is not None else -1)
                weights.append(w)
            if max(books) >= 0:
                self._plan.append((int(m), INDEX_RULES[cfg.method], cfg.band(market_base[m]), np.array(books),
                                   np.array(weights), cfg.stale_after_s * 1000.0))  # fmt: skip
        self.last_mid = np.full(self.n, np.nan)
        self.last_mid_ms = np.full(self.n, -np.inf)
        self.index = np.full(self.n, np.nan)

    @property
    def endogenous(self) -> list[int]:
        """Markets whose index has at least one simulated constituent."""
        return [p[0] for p in self._plan]

    def step(self, ts_ms: int, fundamental: F64, mid: F64) -> F64:
        """The index of every market (``fundamental`` is per market, the base asset's fundamental value)."""
        live = np.isfinite(mid)
        self.last_mid[live] = mid[live]
        self.last_mid_ms[live] = ts_ms
        index = fundamental.astype(np.float64).copy()
        for m, rule, band, books, weights, stale_ms in self._plan:
            is_book = books >= 0
            b = np.where(is_book, books, 0)
            prices = np.where(is_book, self.last_mid[b], fundamental[m])
            fresh = ~is_book | (ts_ms - self.last_mid_ms[b] <= stale_ms)
            w = np.where(fresh, weights, 0.0)
            value = rule(prices, w, band)
            index[m] = (
                value if np.isfinite(value) else (self.index[m] if np.isfinite(self.index[m]) else fundamental[m])
            )
        self.index = index
        return index
