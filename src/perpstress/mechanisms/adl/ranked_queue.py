"""Ranked queue ADL (Binance, Bybit, OKX, Bitget, BitMEX, Hyperliquid): close the profitable opposite positions in
score order until the bankrupt size is covered.

Source: shared/reference/exchange-rules.md sections 6.2 (ranking formulas) and 6.3 (execution price); the score
formulas are :mod:`perpstress.rules.adl`'s.

- Candidates are the other accounts' positions in the same market on the opposite side, in profit at mark.
- Scores by ``RankedQueueAdl.ranking`` (:data:`RANKINGS`): ``pnl_leverage`` (BitMEX/OKX: PnL% x effective
  leverage, the bankruptcy price from the unit's equity), ``binance_leverage_pnl`` (``max(0, UPnL)/max(1, WB) x
  MM/(WB + UPnL)``), ``hyperliquid`` (mark/entry x notional / account value; entry/mark for shorts).
- A liquidation round's requests are ranked once per (market, side) and walked across in order (a queue snapshot
  per round, as venues publish their ADL ranking periodically); a lone request (:meth:`RankedQueue.execute`)
  allocates the queue on its own.
- Both sides close at ``price`` (bankruptcy, mark, previous mark or index); OKX's ``price_when_fund_empty``
  (bankruptcy) once the fund is nearly empty. A close at a price other than bankruptcy leaves the bankrupt unit a
  gap for the fund (or bad debt).

Not modelled: the venues' published indicator bands (the percentile is exact here), Bybit's exact formula
(assumed BitMEX-style), maker/taker fees on ADL fills, and cancelling the winners' open orders.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perpstress.config.venue import AdlRanking, RankedQueueAdl
from perpstress.mechanisms.adl import kernels
from perpstress.mechanisms.adl.base import AdlBook, AdlPrices, AdlRequest, AllocatingRule, price_of
from perpstress.rules import adl as rules
from perpstress.state.portfolio import F64


def _score_inputs(book: AdlBook, cand: np.ndarray) -> tuple[F64, F64, F64, F64, F64, F64, F64, F64]:
    acc = book.accounting
    pos, mk = acc.positions, acc.markets
    m = pos.market[cand]
    mark = mk.mark[m]
    base = pos.size_lots[cand] * mk.lot_size[m]
    entry = pos.entry_price[cand]
    upnl = base * (mark - entry)
    equity, requirement, collateral = book.units(cand)
    side = np.sign(base)
    return mark, base, entry, upnl, equity, requirement, collateral, side


def pnl_leverage_scores(book: AdlBook, cand: np.ndarray) -> F64:
    """BitMEX/OKX: PnL% x effective leverage, the bankruptcy price ``mark - equity / base`` (mark when equity <= 0)."""
    mark, base, entry, _, equity, _, _, side = _score_inputs(book, cand)
    bp = np.where(equity > 0, mark - equity / base, mark)
    return rules.pnl_leverage_score(side, entry, mark, bp)


def binance_leverage_pnl_scores(book: AdlBook, cand: np.ndarray) -> F64:
    """Binance: leverage PnL from the unit's unrealised PnL, wallet (collateral) and maintenance requirement."""
    _, _, _, upnl, _, requirement, collateral, _ = _score_inputs(book, cand)
    return rules.binance_leverage_pnl(upnl, collateral, requirement)


def hyperliquid_scores(book: AdlBook, cand: np.ndarray) -> F64:
    """Hyperliquid: (mark/entry) x notional / account value."""
    mark, base, entry, _, equity, _, _, side = _score_inputs(book, cand)
    return rules.hyperliquid_score(side, entry, mark, np.abs(base) * mark, equity)


RANKINGS: dict[AdlRanking, Callable[[AdlBook, np.ndarray], F64]] = {
    AdlRanking.PNL_LEVERAGE: pnl_leverage_scores,
    AdlRanking.BINANCE_LEVERAGE_PNL: binance_leverage_pnl_scores,
    AdlRanking.HYPERLIQUID: hyperliquid_scores,
}
"""Each ``AdlRanking``'s score of candidate positions (higher: deleveraged first)."""


class RankedQueue(AllocatingRule):
    """Close profitable opposite positions in score order at the venue's price until the bankrupt size is covered."""

    queues_per_round = True

    def __init__(self, config: RankedQueueAdl, book: AdlBook, rng: np.random.Generator) -> None:
        super().__init__(book)
        self.config = config
        self.scores = RANKINGS[config.ranking]

    def price(self, request: AdlRequest, mark: float, prices: AdlPrices) -> float:
        cfg = self.config
        rule = cfg.price_when_fund_empty if prices.fund_empty and cfg.price_when_fund_empty is not None else cfg.price
        return price_of(rule, request, mark, prices)

    def allocate(self, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray, np.ndarray]:
        sequence = rules.queue_order(self.scores(self.book, cand), np.ones(cand.size, bool))
        take, _ = rules.allocate_queue(want, sizes, sequence)
        return take, sizes, sequence

    def execute_round(self, ts_ms: int, market: int, side: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        m = market
        acc = self.book.accounting
        pos = acc.positions
        bankrupt = np.array([r.account for r in requests], dtype=np.int64)
        cand = self.book.candidates(m, side, profitable=True)
        if cand.size:
            cand = cand[self.book.accounts.outside(pos.account[cand], bankrupt)]
        if cand.size == 0:
            return sum(abs(r.lots) for r in requests)
        order = cand[rules.queue_order(self.scores(self.book, cand), np.ones(cand.size, bool))]
        if self.book.compiled:
            return self._walk_compiled(ts_ms, m, side, requests, prices, np.ascontiguousarray(order, dtype=np.int64))
        left = 0
        cursor = 0
        for req in requests:
            want = abs(req.lots)
            price = self.price(req, float(acc.markets.mark[m]), prices)
            while want > 0 and cursor < order.size:
                p = int(order[cursor])
                n = int(min(abs(pos.size_lots[p]), want))
                if n > 0:
                    self.book.fill(ts_ms, req, p, n, side, price)
                    want -= n
                if pos.size_lots[p] == 0:
                    cursor += 1
            left += want
        return left

    def _walk_compiled(self, ts_ms: int, m: int, side: int, requests: list[AdlRequest], prices: AdlPrices,
                       order: np.ndarray) -> int:  # fmt: skip
        """The queue walk of :meth:`execute_round` by :func:`~perpstress.mechanisms.adl.kernels.walk_queue`: the
        same fills, records and state."""
        acc = self.book.accounting
        pos, mk, accounts = acc.positions, acc.markets, acc.accounts
        mark = float(mk.mark[m])
        req_position = np.array([r.position for r in requests], dtype=np.int64)
        req_lots = np.array([r.lots for r in requests], dtype=np.int64)
        req_price = np.array([self.price(r, mark, prices) for r in requests], dtype=np.float64)
        out_i = np.zeros((order.size + len(requests), 3), dtype=np.int64)
        out_f = np.zeros((order.size + len(requests), 3), dtype=np.float64)
        counts = np.zeros(1, dtype=np.int64)
        left = kernels.walk_queue(order, req_position, req_lots, req_price, side, m, pos.account,
                                  (pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
                                  (accounts.pos_start, accounts.pos_count, accounts.wallet), (mk.mark, mk.lot_size),
                                  acc.long_lots, out_i, out_f, counts)  # fmt: skip
        k = int(counts[0])
        rec = self.book.record
        which = out_i[:k, kernels.A_REQUEST].tolist()
        rec.ts_ms.extend([ts_ms] * k)
        rec.venue.extend([requests[r].venue for r in which])
        rec.market.extend([m] * k)
        rec.bankrupt_account.extend([requests[r].account for r in which])
        rec.account.extend(out_i[:k, kernels.A_WINNER].tolist())
        rec.side.extend([-side] * k)
        rec.lots.extend(out_i[:k, kernels.A_LOTS].tolist())
        rec.price.extend(req_price[which].tolist())
        rec.mark.extend([mark] * k)
        rec.notional_usd.extend(out_f[:k, kernels.B_NOTIONAL].tolist())
        rec.loss_vs_mark_usd.extend(out_f[:k, kernels.B_LOSS].tolist())
        rec.winner_pnl_usd.extend(out_f[:k, kernels.B_PNL].tolist())
        return int(left)

    def rank_percentile(self, m: int, position: int, side: int, sample: int) -> float | None:
        cand = self.book.candidates(m, -side, profitable=True)
        if position not in set(cand.tolist()):
            return None
        if cand.size > sample:
            cand = np.union1d(cand[:: cand.size // sample], [position])
        scores = self.scores(self.book, cand)
        own = scores[int(np.flatnonzero(cand == position)[0])]
        return float((scores < own).sum() / max(cand.size - 1, 1))
