"""The prices phase: index from the spot books, collateral revalued, marks, and the return the makers' volatility
reads.

Order within the phase: the index (:class:`~perpstress.mechanisms.indices.IndexEngine`, only for markets with a
simulated constituent; otherwise the exogenous phase set it to the fundamental value), then collateral (every pair
priced by its venue's rule and its holders revalued; holders of a pair that fell past their bands' allowance are
re-banded; a holder whose position closed holds none: it converted at the close), then marks
(:class:`~perpstress.mechanisms.prices.MarkEngine` by each venue's rule; Hyperliquid's third input is the median of
other venues' perpetual mids of the same asset; a market without a mark takes its index). A spot book's own price is
its mid, else its last trade, else its previous price. The cascade calls the collateral and mark steps again between
liquidation rounds (without sampling the mark's moving averages).

The books' quotes, the peers' medians, the marks and their publication are compiled passes over all markets
(:mod:`perpstress.mechanisms.price_kernels`); the books are read once per step (nothing in the phase trades).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perpstress.mechanisms.funding import FundingPhase
from perpstress.mechanisms.indices import IndexEngine
from perpstress.mechanisms.price_kernels import book_quotes, peer_medians, publish_marks
from perpstress.mechanisms.prices import MARK_RULES, MarkEngine
from perpstress.state.clock import Clock
from perpstress.state.world import CROWD, World


class PricesPhase:
    def __init__(self, world: World, index_engine: IndexEngine, mark_engine: MarkEngine, funding: FundingPhase,
                 reband: Callable[[np.ndarray], None]) -> None:  # fmt: skip
        self.world = world
        self.index_engine = index_engine
        self.mark_engine = mark_engine
        self.funding = funding
        self._reband = reband
        w = world
        peers = [
            (m, np.flatnonzero((w.asset_of == w.asset_of[m]) & (w.markets.venue != w.markets.venue[m])
                               & ~w.is_spot))
            for m in range(w.n_perpetual)
            if MARK_RULES[w.venues[w.markets.venue[m]].mark.method].uses_peer_mids
        ]  # fmt: skip
        self.peers = [(m, same) for m, same in peers if same.size]
        """Hyperliquid markets and the other venues' perpetual markets of the same asset."""
        self._peer_rows = np.array([m for m, _ in self.peers], dtype=np.int64)
        self._peer_start = np.cumsum([0] + [same.size for _, same in self.peers]).astype(np.int64)
        self._peer_members = np.concatenate([np.zeros(0, np.int64)] + [same for _, same in self.peers])
        self._peer_scratch = np.empty(max([same.size for _, same in self.peers], default=1))
        self.prev_mark = w.markets.mark.copy()

    def __call__(self, clock: Clock) -> None:
        w = self.world
        quotes = self.quotes()
        if self.index_engine.endogenous:
            w.index_now = self.index_engine.step(clock.ts_ms, w.fundamental, quotes[2])
        self.revalue_collateral(quotes[2])
        self.marks(clock, sample=True, quotes=quotes)
        r = np.log(w.markets.mark / self.prev_mark)
        w.log_returns[:, clock.step % w.log_returns.shape[1]] = r
        self.prev_mark = w.markets.mark.copy()

    def quotes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every book's best bid, best ask (NaN: an empty side) and mid."""
        b = self.world.books
        n = b.n_markets
        bid, ask, mid = np.empty(n), np.empty(n), np.empty(n)
        book_quotes(b.price, b.count, b.tick_size, bid, ask, mid)
        return bid, ask, mid

    def marks(self, clock: Clock, sample: bool,
              quotes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:  # fmt: skip
        """Every market's mark by its venue's rule (``quotes``: this moment's :meth:`quotes`, read if not given)."""
        w = self.world
        bid, ask, mid = self.quotes() if quotes is None else quotes
        peer = np.empty(w.markets.n)  # Hyperliquid's third input: other venues' perp mids of the same asset
        peer_medians(mid, self._peer_rows, self._peer_start, self._peer_members, peer, self._peer_scratch)
        to_funding = self.funding.seconds_to_settlement(clock.ts_ms)
        marks = self.mark_engine.step(clock.step, w.index_now, bid, ask, w.last_trade, self.funding.rate,
                                      to_funding, peer, sample=sample)  # fmt: skip
        publish_marks(marks, w.index_now, mid, w.last_trade, self.prev_mark, w.n_perpetual, w.markets.mark)

    def revalue_collateral(self, mid: np.ndarray | None = None) -> None:
        """Price every collateral pair and revalue its holders; holders of a pair that fell past their bands'
        allowance are re-banded (and so checked this step when a band is crossed). ``mid``: the books' mids now
        (read if not given)."""
        w = self.world
        if not w.collateral.pairs:
            return
        hold = w.collateral
        hold.prices(w.paths.index[w.step], self.quotes()[2] if mid is None else mid, w.last_trade)
        hold.revalue(w.accounts.wallet)
        rebanded = hold.holders_of(hold.fallen_pairs(w.scenario.engine.collateral_band_cushion))
        crowd = rebanded[w.kind[rebanded] == CROWD]
        if crowd.size:
            self._reband(np.sort(crowd))
