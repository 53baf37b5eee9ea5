"""Each perpetual's spot index from its venue's constituents (rules in :mod:`perpstress.rules.index`).

A constituent that is a simulated venue with a spot book of the market's base asset contributes that book's mid
(the last two-sided mid while the book is one-sided or empty; weight 0 once that is older than the venue's
``stale_after_s``). A constituent that is not simulated (Coinbase, Kraken ... or any venue without such a book)
contributes the asset's exogenous fundamental value: the rest of the market, which the shock moves. A market whose
constituents are all external has the fundamental value as index, exactly as before spot books were simulated.
"""

from __future__ import annotations

import numpy as np

from perpstress.config.venue import IndexMethod, VenueConfig
from perpstress.rules import index as rules
from perpstress.state.portfolio import F64


class IndexEngine:
    def __init__(self, venues: list[VenueConfig], market_venue: list[int], market_base: list[str],
                 perpetual: np.ndarray, spot_book_of: dict[tuple[int, str], int], step_ms: int) -> None:  # fmt: skip
        """``spot_book_of[(venue, asset)]`` is the market row of a simulated spot book."""
        names = {v.name: i for i, v in enumerate(venues)}
        self.n = len(market_venue)
        self.step_ms = step_ms
        self._plan: list[tuple[int, IndexMethod, float, np.ndarray, np.ndarray, float]] = []
        for m in np.flatnonzero(perpetual):
            cfg = venues[market_venue[m]].index
            books, weights = [], []
            for source, w in cfg.constituents.items():
                vi = names.get(source)
                books.append(spot_book_of.get((vi, market_base[m]), -1) if vi is not None else -1)
                weights.append(w)
            if max(books) >= 0:
                self._plan.append((int(m), cfg.method, cfg.band(market_base[m]), np.array(books), np.array(weights),
                                   cfg.stale_after_s * 1000.0))  # fmt: skip
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
        for m, method, band, books, weights, stale_ms in self._plan:
            is_book = books >= 0
            b = np.where(is_book, books, 0)
            prices = np.where(is_book, self.last_mid[b], fundamental[m])
            fresh = ~is_book | (ts_ms - self.last_mid_ms[b] <= stale_ms)
            w = np.where(fresh, weights, 0.0)
            if method is IndexMethod.WEIGHTED_MEAN:
                value = rules.weighted_mean_index(prices, w, band)
            elif method is IndexMethod.WEIGHTED_MEDIAN:
                value = rules.weighted_median_index(prices, w)
            else:
                value = rules.median_index(prices, w)
            index[m] = (
                value if np.isfinite(value) else (self.index[m] if np.isfinite(self.index[m]) else fundamental[m])
            )
        self.index = index
        return index
