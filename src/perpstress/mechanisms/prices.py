"""Mark prices each step, per market, by its venue's method (rules in :mod:`perpstress.rules.mark`).

The engine keeps what the methods need between steps: a ring of basis samples for the moving averages
(Binance 30 s, Bybit 5 min, OKX), Hyperliquid's irregular EMAs (150 s of ``mid - oracle``, 30 s of the book
median), the last trade, and the previous mark (Hyperliquid's ADL price). Inputs come as arrays over markets, so
the engine does not depend on how books are stored. Marks update on each venue's ``update_interval_s``; between
updates the previous mark holds.

Hyperliquid's third input (the median of other venues' perp mids) is the median of the other simulated venues'
mids for the same asset when there are any, else missing (the 4-input fallback then applies).

Methods (:data:`MARK_RULES`, keyed by ``MarkMethod``; each venue's rule is looked up once, at build, and run over
its markets; shared/reference/exchange-rules.md section 1):

- ``median_of_three``, :class:`MedianOfThreeMark` (Binance 1.1, Bybit 1.2; Bitget by assumption, its formula
  unconfirmed, 1.8): the median of the funding-basis price ``P1 = I (1 + F t_to_funding / interval)``,
  ``P2 = index + MA(basis)`` and the last trade (the index when nothing traded).
- ``index_plus_basis_ma``, :class:`IndexPlusBasisMark` (OKX 1.3): ``P2``.
- ``fair_price``, :class:`FairPriceMark` (BitMEX 1.4): ``P1``.
- ``hyperliquid_median``, :class:`HyperliquidMedianMark` (Hyperliquid 1.5): the median of the oracle plus the
  150-s EMA of ``mid - oracle``, the book median (bid, ask, last) and the peers' median mid, with the 30-s EMA of
  the book median added when one input is missing (:func:`perpstress.rules.mark.hyperliquid_mark`). It is the one
  rule that reads the peers (:attr:`MarkRule.uses_peer_mids`).
- ``oracle``, :class:`OracleMark` (dYdX 1.6, Drift 1.7): the index.

Not modelled: the venues' fallbacks for abnormal sources (Binance's discount of abnormal spot ticks, Bybit's
fallback rules), Hyperliquid's weights (3, 2, 2, 1, 1) of the external perp mids (a plain median of the simulated
peers), Drift's strict oracle price and oracle guard rails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from perpstress.config.venue import MarkMethod, VenueConfig
from perpstress.mechanisms.price_kernels import MARK_CODE, mark_step
from perpstress.rules import mark as rules
from perpstress.state.portfolio import F64, I64


@dataclass(frozen=True)
class MarkInputs:
    """One step's inputs to the mark rules, per market (NaN book inputs: an empty side)."""

    index: F64
    p1: F64
    """Funding-basis price: the index plus the funding basis to the next settlement."""
    p2: F64
    """The index plus the moving average of the basis (``mid - index``)."""
    last: F64
    """The last trade, the index where nothing has traded."""
    best_bid: F64
    best_ask: F64
    last_trade: F64
    """The last trade, NaN where nothing has traded."""
    peer_mid: F64
    """Median mid of the other simulated venues' perps on the same asset (NaN: none)."""
    ema_basis: tuple[F64, F64]
    """Hyperliquid: numerator and denominator of the 150-s EMA of ``mid - oracle``."""
    ema_book: tuple[F64, F64]
    """Hyperliquid: numerator and denominator of the 30-s EMA of the book median."""


class MarkRule(Protocol):
    """One mark method, run over the markets ``rows`` that are due an update."""

    uses_peer_mids: ClassVar[bool]
    """The rule reads the other venues' mids of the same asset (the engine must supply ``peer_mid``)."""

    def mark(self, rows: I64, inputs: MarkInputs) -> F64: ...


class OracleMark:
    """The index (the oracle on oracle venues)."""

    uses_peer_mids: ClassVar[bool] = False

    def mark(self, rows: I64, inputs: MarkInputs) -> F64:
        return inputs.index[rows]


class FairPriceMark:
    """``P1``: the funding-basis price."""

    uses_peer_mids: ClassVar[bool] = False

    def mark(self, rows: I64, inputs: MarkInputs) -> F64:
        return inputs.p1[rows]


class IndexPlusBasisMark:
    """``P2``: the index plus the basis moving average."""

    uses_peer_mids: ClassVar[bool] = False

    def mark(self, rows: I64, inputs: MarkInputs) -> F64:
        return inputs.p2[rows]


class MedianOfThreeMark:
    """The median of ``P1``, ``P2`` and the last trade."""

    uses_peer_mids: ClassVar[bool] = False

    def mark(self, rows: I64, inputs: MarkInputs) -> F64:
        return np.asarray(np.median(np.stack([inputs.p1[rows], inputs.p2[rows], inputs.last[rows]]), axis=0))


class HyperliquidMedianMark:
    """Hyperliquid's median of the oracle-plus-EMA, the book median and the peers' mid, market by market."""

    uses_peer_mids: ClassVar[bool] = True

    def mark(self, rows: I64, inputs: MarkInputs) -> F64:
        out = np.empty(rows.size)
        (num, den), (bnum, bden) = inputs.ema_basis, inputs.ema_book
        for k, m in enumerate(rows):
            quotes = (inputs.best_bid[m], inputs.best_ask[m], inputs.last_trade[m])
            out[k] = float(rules.hyperliquid_mark(inputs.index[m], num[m] / den[m], *quotes, inputs.peer_mid[m],
                                                  bnum[m] / bden[m]))  # fmt: skip
        return out


MARK_RULES: dict[MarkMethod, type[MarkRule]] = {
    MarkMethod.ORACLE: OracleMark,
    MarkMethod.FAIR_PRICE: FairPriceMark,
    MarkMethod.INDEX_PLUS_BASIS_MA: IndexPlusBasisMark,
    MarkMethod.MEDIAN_OF_THREE: MedianOfThreeMark,
    MarkMethod.HYPERLIQUID_MEDIAN: HyperliquidMedianMark,
}
"""The rule of each ``MarkMethod``."""


class MarkEngine:
    """Computes ``mark`` for every market each step; ``previous`` holds the mark before the last update.

    One compiled pass per step (:func:`perpstress.mechanisms.price_kernels.mark_step`) runs each market's rule of
    :data:`MARK_RULES` with the same values as the rule classes; the EMAs' decays per step are computed once."""

    def __init__(self, venues: list[VenueConfig], market_venue: list[int], step_s: float) -> None:
        n = len(market_venue)
        self.step_s = step_s
        vs = [venues[v] for v in market_venue]
        self.method = [v.mark.method for v in vs]
        self._code = np.array([MARK_CODE[method] for method in self.method], dtype=np.int64)
        """Per market: its rule's code in the kernel."""
        self.uses_peer_mids = np.array([MARK_RULES[method].uses_peer_mids for method in self.method], dtype=bool)
        """Per market: its venue's rule reads the other venues' mids of the same asset."""
        self.update_every = np.array([max(1, round(v.mark.update_interval_s / step_s)) for v in vs], dtype=np.int64)
        self.sample_every = np.array([max(1, round(v.mark.basis_sample_interval_s / step_s)) for v in vs],
                                     dtype=np.int64)  # fmt: skip
        window = [v.mark.basis_window_s or v.mark.basis_sample_interval_s for v in vs]
        self.window = np.array(
            [max(1, round(w / v.mark.basis_sample_interval_s)) for w, v in zip(window, vs, strict=True)],
            dtype=np.int64,
        )
        self.tau = np.array([v.mark.ema_time_constant_s or 150.0 for v in vs])
        self.funding_interval_s = np.array([v.funding.interval_hours * 3600.0 for v in vs])
        self._decay_basis = np.broadcast_to(rules.ema_decay(step_s, self.tau), (n,)).astype(np.float64)
        """Per market: the 150-s EMA's decay over one step (:func:`perpstress.rules.mark.ema_decay`)."""
        self._decay_book = float(rules.ema_decay(step_s, 30.0))
        """The 30-s EMA's decay over one step."""
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
        """Advance one step and return the marks (``mark``, updated in place). NaN book inputs mean an empty side;
        the index then decides.

        ``sample=False`` re-evaluates the marks within a step (after liquidation orders moved the book) without
        taking new moving-average samples."""
        f64 = np.float64
        mark_step(step, sample, f64(self.step_s), index, best_bid, best_ask, last_trade,
                  np.asarray(funding_rate, dtype=f64), np.asarray(seconds_to_funding, dtype=f64), peer_mid, self._code,
                  self.sample_every, self.update_every, self.window, self.funding_interval_s, self._decay_basis,
                  self._decay_book, self._ring, self._ring_n, self._ring_i, self._ring_sum, self._ema_basis,
                  self._ema_book, self.last_trade, self.mark, self.previous)  # fmt: skip
        return self.mark
