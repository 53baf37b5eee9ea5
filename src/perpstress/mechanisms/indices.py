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
from perpstress.mechanisms.price_kernels import INDEX_CODE, fma_dot_is_numpys, index_step
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
    """The index of every market each step: one compiled pass (:func:`perpstress.mechanisms.price_kernels.index_step`)
    over the markets with a simulated constituent, each by its venue's rule in :data:`INDEX_RULES`, with the same
    values; a weighted mean the kernel cannot reproduce exactly (see :mod:`perpstress.mechanisms.price_kernels`)
    goes through the rule function."""

    def __init__(self, venues: list[VenueConfig], market_venue: list[int], market_base: list[str],
                 perpetual: np.ndarray, spot_book_of: dict[tuple[int, str], int], step_ms: int) -> None:  # fmt: skip
        """``spot_book_of[(venue, asset)]`` is the market row of a simulated spot book."""
        names = {v.name: i for i, v in enumerate(venues)}
        self.n = len(market_venue)
        self.step_ms = step_ms
        self._plan: list[tuple[int, IndexRule, float, np.ndarray, np.ndarray, float]] = []
        methods = []
        for m in np.flatnonzero(perpetual):
            cfg = venues[market_venue[m]].index
            books, weights = [], []
            for source, w in cfg.constituents_of(market_base[m]).items():
                vi = names.get(source)
                books.append(spot_book_of.get((vi, market_base[m]), -1) if vi is not None else -1)
                weights.append(w)
            if max(books) >= 0:
                self._plan.append((int(m), INDEX_RULES[cfg.method], cfg.band(market_base[m]), np.array(books),
                                   np.array(weights), cfg.stale_after_s * 1000.0))  # fmt: skip
                methods.append(INDEX_CODE[cfg.method])
        self._endogenous = [p[0] for p in self._plan]
        self._markets = np.array(self._endogenous, dtype=np.int64)
        self._method = np.array(methods, dtype=np.int64)
        self._band = np.array([p[2] for p in self._plan], dtype=np.float64)
        self._stale_ms = np.array([p[5] for p in self._plan], dtype=np.float64)
        sizes = [p[3].size for p in self._plan]
        self._start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self._book = np.concatenate([p[3] for p in self._plan] or [np.zeros(0)]).astype(np.int64)
        self._weight = np.concatenate([p[4] for p in self._plan] or [np.zeros(0)]).astype(np.float64)
        self._fallback = np.zeros(len(self._plan), dtype=bool)
        self._scratch = (np.empty(2 * max(sizes, default=1)), np.empty(2 * max(sizes, default=1)))
        self._fma_dot = fma_dot_is_numpys() if self._plan else True
        self.last_mid = np.full(self.n, np.nan)
        self.last_mid_ms = np.full(self.n, -np.inf)
        self.index = np.full(self.n, np.nan)

    @property
    def endogenous(self) -> list[int]:
        """Markets whose index has at least one simulated constituent."""
        return self._endogenous

    def step(self, ts_ms: int, fundamental: F64, mid: F64) -> F64:
        """The index of every market (``fundamental`` is per market, the base asset's fundamental value)."""
        index = np.empty(self.n)
        index_step(ts_ms, fundamental, mid, self.last_mid, self.last_mid_ms, self.index, self._markets, self._method,
                   self._band, self._stale_ms, self._start, self._book, self._weight, self._fma_dot, index,
                   self._fallback, *self._scratch)  # fmt: skip
        for j in np.flatnonzero(self._fallback):
            self._by_rule(int(j), ts_ms, fundamental, index)
        self.index = index
        return index

    def _by_rule(self, j: int, ts_ms: int, fundamental: F64, index: F64) -> None:
        """Plan entry ``j``'s index by its rule function (the books' mids already kept)."""
        m, rule, band, books, weights, stale_ms = self._plan[j]
        is_book = books >= 0
        b = np.where(is_book, books, 0)
        prices = np.where(is_book, self.last_mid[b], fundamental[m])
        fresh = ~is_book | (ts_ms - self.last_mid_ms[b] <= stale_ms)
        w = np.where(fresh, weights, 0.0)
        value = rule(prices, w, band)
        index[m] = value if np.isfinite(value) else (self.index[m] if np.isfinite(self.index[m]) else fundamental[m])
