"""Noise takers: market orders of a lognormal size arriving as a Poisson process per market.

Rule (``[takers]``, :class:`perpstress.config.agents.TakerConfig`): per market and step a Poisson number of orders
at the market's rate; each for ``median_usd * exp(sigma * N(0, 1))`` of notional at mark (at least one lot), a sell
with probability ``0.5 + sell_bias * (1 - appetite) - buy_bias``, limited 2 % past mark. One noise account per
market takes them (exempt from liquidation). The phase starts the step: it clears the last-trade prices first.
Draws come from the run's ``takers`` stream only, in market order, then order by order: count, size, side.
Left out: order-flow autocorrelation, informed flow, limit orders.

The step's numbers are drawn first, in one compiled call (nothing an order does changes what the next one draws),
then one compiled pass (:func:`takers_step`) sends them through the books and settles both sides as
:meth:`perpstress.mechanisms.execution.BookExecution.taker_trade` does. With ``engine.record_trades`` on, the
orders go through :class:`~perpstress.mechanisms.execution.BookExecution` one by one, which records the fills.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.mechanisms.accounting import settle_maker_fills
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.price_kernels import numpy_sum
from perpstress.state.clock import Clock
from perpstress.state.orderbook import _match
from perpstress.state.world import World

POISSON_MULT_BELOW = 10.0
"""NumPy draws a Poisson count of a mean below this by multiplying uniforms (``random_poisson_mult``); numba's
``Generator.poisson`` is that same loop. The compiled draw is used only where every market's mean is below it."""


def _draw_step_py(rng, lam):  # type: ignore[no-untyped-def]
    """A step's numbers from the ``takers`` stream, in the phase's order: each market's order count (Poisson of
    mean ``lam[m]``, as ``rng.poisson(lam)`` draws them, market by market), then order by order a standard normal
    (the size's) and a uniform (the side's). Returns ``(counts, z, u)``."""
    n = lam.shape[0]
    counts = np.empty(n, np.int64)
    total = 0
    for m in range(n):
        counts[m] = rng.poisson(lam[m])
        total += counts[m]
    z = np.empty(total)
    u = np.empty(total)
    for i in range(total):
        z[i] = rng.standard_normal()
        u[i] = rng.random()
    return counts, z, u


draw_step = njit(cache=True)(_draw_step_py)
"""Compiled: see :func:`_draw_step_py` (numba's ``Generator`` methods draw NumPy's numbers; for a mean of
:data:`POISSON_MULT_BELOW` or more, or a stream that is not a NumPy ``Generator`` (a test's recorder), the phase
draws through the plain twin)."""


def _takers_step_py(  # type: ignore[no-untyped-def]
    counts, size_factor, u, median_usd, buy_bias, sell_bias, appetite, mark, lot_size, tick_size, market_venue,
    noise_ids, taker_fee, maker_fee, price, lots, owner, count, fill_owner, fill_tick, fill_lots, fill_price,
    fill_value, pos_market, size_lots, entry_price, wallet, long_lots, maker_filled, fee_pool, last_trade, volume_usd,
):  # fmt: skip
    """Every order of the step, market by market (``counts[m]`` each): its size ``median_usd[m] * size_factor[j]``
    (``exp(sigma * z)``, computed by NumPy), a sell when ``u[j]`` is below ``0.5 + sell_bias[m] * (1 - appetite) -
    buy_bias[m]``, at least one lot, limited 2 % past mark; matched IOC against the book (:func:`_match`), the
    makers' side settled (:func:`settle_maker_fills`), the market's last trade and volume set, and the noise
    account's side booked as :meth:`perpstress.mechanisms.accounting.Accounting.trade` of its cross position at
    the fills' average price, less the taker fee into the venue's pool. The same arithmetic in the same order as
    :meth:`perpstress.mechanisms.execution.BookExecution.taker_trade`, ``np.sum`` spelt out by :func:`numpy_sum`."""
    j = 0
    for m in range(counts.shape[0]):
        for _ in range(counts[m]):
            usd = median_usd[m] * size_factor[j]
            p_sell = 0.5 + sell_bias[m] * (1.0 - appetite) - buy_bias[m]
            side = -1 if u[j] < p_sell else 1
            j += 1
            mk = mark[m]
            n = int(usd / mk / lot_size[m])
            want = side * (n if n > 1 else 1)
            limit_price = mk * (1 + side * 0.02)
            tick = tick_size[m]
            up = int(np.floor(limit_price / tick + 1e-9))
            limit = up if want > 0 else int(np.ceil(limit_price / tick - 1e-9))
            k = _match(price, lots, owner, count, m, want, limit, False, fill_owner, fill_tick, fill_lots)
            if k == 0:
                continue
            venue = market_venue[m]
            sign = 1 if want > 0 else -1
            lot = lot_size[m]
            total = 0
            for i in range(k):
                fill_price[i] = fill_tick[i] * tick
                fill_value[i] = fill_price[i] * fill_lots[i]
                total += fill_lots[i]
            settle_maker_fills(fill_owner[:k], fill_price[:k], fill_lots[:k], sign, lot, maker_fee[venue], venue,
                               pos_market, lot_size, size_lots, entry_price, wallet, long_lots, maker_filled,
                               fee_pool)  # fmt: skip
            last_trade[m] = fill_price[k - 1]
            value = numpy_sum(fill_value, k)
            volume_usd[m] += value * lot
            average = value / total
            filled = sign * total
            a = noise_ids[m]  # the noise account's one cross position has the account's id
            old = size_lots[a]
            pm = pos_market[a]
            if old == 0 or (old > 0) == (filled > 0):
                new = old + filled
                entry_price[a] = (old * entry_price[a] + filled * average) / new if new != 0 else 0.0
                long_lots[pm] += max(new, 0) - max(old, 0)
                size_lots[a] = new
            else:
                closing = -old if abs(filled) >= abs(old) else filled
                realised = (-closing * lot_size[pm]) * (average - entry_price[a])
                new = old + closing
                long_lots[pm] += max(new, 0) - max(old, 0)
                size_lots[a] = new
                wallet[a] += realised
                rest = filled - closing
                if rest != 0:
                    long_lots[pm] += max(rest, 0) - max(new, 0)
                    size_lots[a] = rest
                    entry_price[a] = average
            fee = taker_fee[venue] * abs(filled) * lot_size[m] * average
            wallet[a] += -fee
            fee_pool[venue] += fee


takers_step = njit(cache=True)(_takers_step_py)
"""Compiled: see :func:`_takers_step_py`. It calls :func:`perpstress.state.orderbook._match`,
:func:`perpstress.mechanisms.accounting.settle_maker_fills` and :func:`numpy_sum`; numba's cache does not see a
change to a callee in another module, so after editing those clear ``__pycache__`` before trusting a run."""


class TakersPhase:
    def __init__(self, world: World, execution: BookExecution, rng: np.random.Generator) -> None:
        """``rng``: the run's ``takers`` stream (``kernel.streams.get("takers")``)."""
        self.world = world
        self.execution = execution
        self.rng = rng
        self.flow = [world.scenario.takers.for_market(k) for k in world.market_keys]
        """Per market: (rate_per_s, median_usd, buy_bias, sell_bias_after_shock), fixed for the run."""
        self.rates = np.array([f[0] for f in self.flow])
        self._median_usd = np.array([f[1] for f in self.flow], dtype=np.float64)
        self._buy_bias = np.array([f[2] for f in self.flow], dtype=np.float64)
        self._sell_bias = np.array([f[3] for f in self.flow], dtype=np.float64)
        fills = 2 * world.books.price.shape[2]
        self._fills = (np.zeros(fills, np.int64), np.zeros(fills, np.int64), np.zeros(fills, np.int64),
                       np.zeros(fills), np.zeros(fills))  # fmt: skip
        """Scratch of one order's fills: owner, tick, lots, price, price x lots."""

    def __call__(self, clock: Clock) -> None:
        w = self.world
        cfg = w.scenario.takers
        rng = self.rng
        w.last_trade[:] = np.nan
        lam = self.rates * clock.step_s
        if isinstance(rng, np.random.Generator) and lam.size and lam.max() < POISSON_MULT_BELOW:
            counts, z, u = draw_step(rng, lam)
        else:
            counts, z, u = _draw_step_py(rng, lam)  # type: ignore[no-untyped-call]
        if z.size == 0:
            return
        size_factor = np.exp(cfg.sigma * z)
        if w.scenario.engine.record_trades:
            self._one_by_one(counts, size_factor, u)
            return
        ex = self.execution
        pos = w.positions
        takers_step(counts, size_factor, u, self._median_usd, self._buy_bias, self._sell_bias, float(w.appetite),
                    w.markets.mark, w.markets.lot_size, w.markets.tick_size, w.markets.venue, w.noise_ids,
                    w.taker_fee, w.maker_fee, w.books.price, w.books.lots, w.books.owner, w.books.count,
                    *self._fills, pos.market, pos.size_lots, pos.entry_price, w.accounts.wallet,
                    ex.accounting.long_lots, w.maker_filled, w.ledger.fee_pool, w.last_trade,
                    w.volume_usd)  # fmt: skip

    def _one_by_one(self, counts: np.ndarray, size_factor: np.ndarray, u: np.ndarray) -> None:
        """The step's orders through :meth:`BookExecution.taker_trade`, one by one (which records the fills)."""
        w = self.world
        j = 0
        for m in np.flatnonzero(counts):
            _, median_usd, buy_bias, sell_bias = self.flow[m]
            for _ in range(int(counts[m])):
                usd = median_usd * float(size_factor[j])
                p_sell = 0.5 + sell_bias * (1.0 - w.appetite) - buy_bias
                side = -1 if u[j] < p_sell else 1
                j += 1
                mark = float(w.markets.mark[m])
                lots = side * max(1, int(usd / mark / w.markets.lot_size[m]))
                self.execution.taker_trade(int(w.noise_ids[m]), int(m), lots, mark * (1 + side * 0.02))
