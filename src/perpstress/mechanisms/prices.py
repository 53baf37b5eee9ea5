"""Mark prices each step, per market, by its venue's method (rules in :mod:`perpstress.rules.mark`).

The engine keeps what the methods need between steps: a ring of basis samples for the moving averages
(Binance 30 s, Bybit 5 min, OKX), Hyperliquid's irregular EMAs (150 s of ``mid - oracle``, 30 s of the book
median), the last trade, and the previous mark (Hyperliquid's ADL price). Inputs come as arrays over markets, so
the engine does not depend on how books are stored. Marks update on each venue's ``update_interval_s``; between
updates the previous mark holds.

Hyperliquid's third input (the median of other venues' perp mids) is the median of the other simulated venues'
mids for the same asset when there are any, else missing (the 4-input fallback then applies).
"""

from __future__ import annotations

import numpy as np

from perpstress.config.venue import MarkMethod, VenueConfig
from perpstress.rules import mark as rules
from perpstress.state.portfolio import F64


class MarkEngine:
    """Computes ``mark`` for every market each step; ``previous`` holds the mark before the last update."""

    def __init__(self, venues: list[VenueConfig], market_venue: list[int], step_s: float) -> None:
        n = len(market_venue)
        self.step_s = step_s
        vs = [venues[v] for v in market_venue]
        self.method = [v.mark.method for v in vs]
        self._method_code = np.array(self.method, dtype=object)
        self.update_every = np.array([max(1, round(v.mark.update_interval_s / step_s)) for v in vs])
        self.sample_every = np.array([max(1, round(v.mark.basis_sample_interval_s / step_s)) for v in vs])
        window = [v.mark.basis_window_s or v.mark.basis_sample_interval_s for v in vs]
        self.window = np.array(
            [max(1, round(w / v.mark.basis_sample_interval_s)) for w, v in zip(window, vs, strict=True)]
        )
        self.tau = np.array([v.mark.ema_time_constant_s or 150.0 for v in vs])
        self.funding_interval_s = np.array([v.funding.interval_hours * 3600.0 for v in vs])
        width = int(self.window.max()) if n else 1
        self._ring = np.zeros((n, width))
        self._ring_n = np.zeros(n, dtype=np.int64)
        self._ring_i = np.zeros(n, dtype=np.int64)
        self._ring_sum = np.zeros(n)
        self._ema_basis = np.zeros((n, 2))  # numerator, denominator
        self._ema_book = np.zeros((n, 2))
        self.mark = np.full(n, np.nan)
        self.previous = np.full(n, np.nan)
        self.last_trade = np.full(n, np.nan)

    def step(
        self,
        step: int,
        index: F64,
        best_bid: F64,
        best_ask: F64,
        last_trade: F64,
        funding_rate: F64,
        seconds_to_funding: F64,
        peer_mid: F64,
        sample: bool = True,
    ) -> F64:
        """Advance one step and return the marks. NaN book inputs mean an empty side; the index then decides.

        ``sample=False`` re-evaluates the marks within a step (after liquidation orders moved the book) without
        taking new moving-average samples."""
        traded = ~np.isnan(last_trade)
        self.last_trade[traded] = last_trade[traded]
        mid = 0.5 * (best_bid + best_ask)
        basis = np.where(np.isnan(mid), 0.0, mid - index)
        take = (step % self.sample_every == 0) & sample
        rows = np.flatnonzero(take)
        if rows.size:  # one sample per market into its ring; the ring's sum is kept as it goes
            slot = self._ring_i[rows]
            full = self._ring_n[rows] >= self.window[rows]
            self._ring_sum[rows] -= np.where(full, self._ring[rows, slot], 0.0)
            self._ring[rows, slot] = basis[rows]
            self._ring_sum[rows] += basis[rows]
            self._ring_i[rows] = (slot + 1) % self.window[rows]
            self._ring_n[rows] = np.minimum(self._ring_n[rows] + 1, self.window[rows])
        ma = np.where(self._ring_n > 0, self._ring_sum / np.maximum(self._ring_n, 1), 0.0)
        book_med = rules.median_of_three(best_bid, best_ask, self.last_trade)
        num, den = rules.ema_update(self._ema_basis[:, 0], self._ema_basis[:, 1], basis, self.step_s, self.tau)
        self._ema_basis[:, 0], self._ema_basis[:, 1] = num, den
        bnum, bden = rules.ema_update(
            self._ema_book[:, 0], self._ema_book[:, 1], np.where(np.isnan(book_med), index, book_med), self.step_s, 30.0
        )
        self._ema_book[:, 0], self._ema_book[:, 1] = bnum, bden
        due = (step % self.update_every == 0) | np.isnan(self.mark)
        new = self.mark.copy()
        # the index-based methods, vectorised over their markets: P1 = funding-basis price, P2 = index + MA(basis)
        p1 = rules.funding_basis_price(index, funding_rate, seconds_to_funding, self.funding_interval_s)
        p2 = index + ma
        last = np.where(np.isnan(self.last_trade), index, self.last_trade)
        for method, value in (
            (MarkMethod.ORACLE, index),
            (MarkMethod.FAIR_PRICE, p1),
            (MarkMethod.INDEX_PLUS_BASIS_MA, p2),
            (MarkMethod.MEDIAN_OF_THREE, np.median(np.stack([p1, p2, last]), axis=0)),
        ):
            sel = due & (self._method_code == method)
            new[sel] = value[sel]
        for m in np.flatnonzero(due & (self._method_code == MarkMethod.HYPERLIQUID_MEDIAN)):
            quotes = (best_bid[m], best_ask[m], self.last_trade[m])
            emas = (num[m] / den[m], bnum[m] / bden[m])
            new[m] = self._mark_one(int(m), index[m], ma[m], funding_rate[m], seconds_to_funding[m], quotes,
                                    peer_mid[m], *emas)  # fmt: skip
        changed = due & (new != self.mark)
        self.previous[changed] = self.mark[changed]
        first = np.isnan(self.previous)
        self.previous[first] = new[first]
        self.mark = new
        return self.mark

    def _mark_one(
        self, m: int, index: float, ma: float, rate: float, t_to_f: float, quotes: tuple[float, float, float],
        peer: float, ema_basis: float, ema_book: float,
    ) -> float:  # fmt: skip
        method = self.method[m]
        if method is MarkMethod.ORACLE:
            return index
        p1 = float(rules.funding_basis_price(index, rate, t_to_f, self.funding_interval_s[m]))
        if method is MarkMethod.FAIR_PRICE:
            return p1
        p2 = index + ma
        if method is MarkMethod.INDEX_PLUS_BASIS_MA:
            return p2
        if method is MarkMethod.MEDIAN_OF_THREE:
            last = quotes[2]
            return float(rules.median_of_three(p1, p2, index if np.isnan(last) else last))
        return float(rules.hyperliquid_mark(index, ema_basis, *quotes, peer, ema_book))
