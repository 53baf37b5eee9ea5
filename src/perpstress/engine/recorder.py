"""The record phase's time series: per step and market, index, mark, last trade, best bid and ask, depth within
1 % of the book's own mid, open interest (funds' long inventory included), funding rate and the venue's insurance
fund equity; per step and collateral pair, the margin price and the reference price. A crossed book stops the run.

Depth is measured within 1 % of the book's own mid (as Binance's bookDepth archive measures it); a one-sided book
measures from its best price, an empty one from the mark. Spot rows have no open interest or funding (NaN).
"""

from __future__ import annotations

import numpy as np

from perpstress.mechanisms.accounting import Accounting
from perpstress.state.clock import Clock
from perpstress.state.portfolio import F64
from perpstress.state.world import World

SERIES = ("index", "mark", "last", "best_bid", "best_ask", "depth_bid_1pct_usd", "depth_ask_1pct_usd",
          "open_interest_usd", "funding_rate", "insurance_fund_usd")  # fmt: skip
"""The per-market time series, in the order of the timeseries table's columns."""


class Recorder:
    def __init__(self, world: World, accounting: Accounting, funding_rate: F64) -> None:
        """``funding_rate``: the funding phase's rate per market (updated in place)."""
        self.world = world
        self.accounting = accounting
        self.funding_rate = funding_rate
        steps, n_m = world.scenario.steps, world.markets.n
        self.ts: dict[str, np.ndarray] = {name: np.full((steps, n_m), np.nan) for name in SERIES}
        self.collateral_ts = np.full((steps, len(world.collateral.pairs), 3), np.nan)
        """Per step and collateral pair: the venue's margin price, the reference (fundamental) price and the price
        of the venue's own spot book of the asset (NaN without one)."""

    def __call__(self, clock: Clock) -> None:
        w = self.world
        t = clock.step
        mk = w.markets
        if w.books.is_crossed():
            raise AssertionError(f"a book is crossed after step {t}")
        bid, ask = w.books.best_bid_ask()
        ts = self.ts
        ts["index"][t] = np.where(w.is_spot, w.fundamental, w.index_now)
        ts["mark"][t] = mk.mark
        ts["last"][t] = w.last_trade
        ts["best_bid"][t] = bid
        ts["best_ask"][t] = ask
        # depth within 1 % of the book's own mid (as Binance's bookDepth archive measures it); a one-sided book
        # measures from its best price, an empty one from the mark
        centre = np.where(np.isnan(bid), ask, np.where(np.isnan(ask), bid, 0.5 * (bid + ask)))
        centre = np.where(np.isnan(centre), mk.mark, centre)
        w.books.depth_all(0.01, centre, ts["depth_bid_1pct_usd"][t], ts["depth_ask_1pct_usd"][t])
        longs = self.accounting.long_lots
        fund_long = np.maximum(w.funds.inventory, 0).sum(axis=0) / mk.lot_size
        ts["open_interest_usd"][t] = np.where(w.is_spot, np.nan, (longs + fund_long) * mk.lot_size * mk.mark)
        ts["funding_rate"][t] = np.where(w.is_spot, np.nan, self.funding_rate)
        if w.collateral.pairs:
            self.collateral_ts[t, :, 0] = w.collateral.price
            self.collateral_ts[t, :, 1] = w.collateral.reference
            self.collateral_ts[t, :, 2] = w.collateral.book_price
        equity = np.array([w.funds.equity(f, mk.mark) for f in range(len(w.venues))])
        ts["insurance_fund_usd"][t] = equity[mk.venue]
