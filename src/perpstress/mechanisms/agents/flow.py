"""The crowd's flow during the run: dip buyers, momentum shorts and the squeeze open (and cover) leveraged positions.

Rule (``[flow]``, :class:`perpstress.config.flow.CrowdFlowConfig`, whose docstring states the three rules). Each
step, before anything else trades on it, every flow market's mark (last step's) enters a ring buffer;
:func:`flow_signals` keeps the recent peak and trough with two monotone queues (``O(1)`` per market and step,
amortised) and writes the three measures and the rules' Poisson rates that follow from them; the counts, then per order
a standard normal for its size and one for its leverage, come from the run's ``flow`` stream only (in rule order,
then market order, then order by order), and only in steps where some rate is positive: a calm step draws nothing.
:func:`plan_orders` turns the draws into orders (market, kind, lots, leverage capped by the tier at the notional).

Each opening order takes the market's next dormant account (a pool allocated at build, one position per account in
that market: they are crowd accounts, so the trigger index, liquidation, ADL, funding, money conservation and open
interest count them as any other). The order is an IOC market order limited ``limit_fraction`` past mark through
the books (:meth:`~perpstress.mechanisms.execution.BookExecution.taker_trade`); what fills is the position, and the
account brings its initial margin at its leverage plus the taker fee from outside (an external inflow). Nothing
fills: the account stays dormant for the next order. A squeeze order that covers buys back the market's oldest open
flow short whole (a cursor over the pool: each account is passed once), paying the taker fee out of what equity is
left; a short bought back past bankruptcy (its venue's liquidation could not close it, say on an empty book) has its
gap settled by the fund, then bad debt, as a crowd stop's. An order that finds its market's pool used
up is dropped and counted (``pool_full``). A step's cost grows with the orders placed and the flow markets, never with
the pool.

With ``hold_median_s``, each opened position gets a closing time (its holding time from the ``flow_hold`` stream, one
draw per position opened, so they take nothing from the flow's own stream); a heap of closing times is
popped at the start of each step, and each position still open is closed whole like a cover (see
:meth:`CrowdFlowPhase.close_due`).

Left out, plainly: flow accounts hold no stop and no top-up reserve, never add to or reduce a position except the
squeeze's covers and the closes at the end of their holding time, and are cross-margined; the flow does not react
to other venues' prices, funding or its own P&L.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
from numba import njit

from perpstress.config.flow import FlowRule
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.state.clock import Clock
from perpstress.state.portfolio import F64, I64
from perpstress.state.world import World

DIP, MOMENTUM, SQUEEZE = 0, 1, 2
"""Order kinds, in the order their counts are drawn."""
RULE_NAMES = ("dip", "momentum", "squeeze")


def _window_extreme_py(hist: F64, queue: I64, ends: I64, step: int, x: float, sign: float, recent_steps: int) -> float:
    """One flow market's monotone queue of steps (circular, ``len(hist)`` long, head and tail counters ``ends``):
    push step ``step``, whose mark ``x`` is already in ``hist``, after dropping the queued steps whose marks it
    matches or beats (``sign = 1``: keeps the largest first, ``-1``: the smallest), drop the steps older than
    ``recent_steps``, and return the extreme mark of the window (this step's included)."""
    n_l = hist.shape[0]
    head, tail = ends[0], ends[1]
    while tail > head and sign * hist[queue[(tail - 1) % n_l] % n_l] <= sign * x:
        tail -= 1
    queue[tail % n_l] = step
    tail += 1
    while queue[head % n_l] <= step - recent_steps:
        head += 1
    ends[0], ends[1] = head, tail
    return float(hist[queue[head % n_l] % n_l])


window_extreme = njit(cache=True)(_window_extreme_py)
"""Compiled: see :func:`_window_extreme_py`."""


def _flow_signals_py(
    step: int, mark: F64, markets: I64, hist: F64, peak_q: I64, peak_ends: I64, trough_q: I64, trough_ends: I64,
    recent_steps: int, lag_steps: int, rules: F64, multiple: F64, scale: float, measures: F64, rates: F64,
) -> bool:  # fmt: skip
    """Step ``step``'s marks of the flow markets (``mark[markets[j]]``) into the ring buffer ``hist[j, step % L]``,
    the measures per flow market into ``measures[kind, j]`` and the rules' rates into ``rates[kind, j]``; returns
    whether any rate is positive.

    Measures: the dip ``1 - mark / peak``, the momentum ``1 - mark / mark(step - lag_steps)`` (the first step's mark
    before then), the squeeze ``mark / trough - 1`` (0 unless the recent fall ``1 - trough / peak`` is positive) and
    that fall in ``measures[3, j]``. Peak and trough are the largest and smallest marks of the last ``recent_steps``
    steps, this one included, kept in monotone queues of steps (``peak_q[j]``, ``trough_q[j]``, circular, ``L``
    long) whose head and tail counters are ``*_ends[j] = (head, tail)`` (:func:`window_extreme`).

    Rates: ``rules[kind] = (threshold, rate_per_s, max_multiple, after_fall)`` (a rate of 0 for an absent rule);
    where the measure is at or above the threshold (and, for the squeeze, the fall at or above ``after_fall``) the
    rate is ``rate_per_s * min(measure / threshold, max_multiple) * multiple[j] * scale``, else 0."""
    n_l = hist.shape[1]
    live = False
    for j in range(markets.shape[0]):
        x = mark[markets[j]]
        hist[j, step % n_l] = x
        peak = window_extreme(hist[j], peak_q[j], peak_ends[j], step, x, 1.0, recent_steps)
        trough = window_extreme(hist[j], trough_q[j], trough_ends[j], step, x, -1.0, recent_steps)
        back = step - lag_steps if step > lag_steps else 0
        measures[DIP, j] = 1.0 - x / peak
        measures[MOMENTUM, j] = 1.0 - x / hist[j, back % n_l]
        fall = 1.0 - trough / peak
        measures[SQUEEZE, j] = x / trough - 1.0 if fall > 0 else 0.0
        measures[3, j] = fall
        for kind in range(3):
            threshold, rate, most = rules[kind, 0], rules[kind, 1], rules[kind, 2]
            m = measures[kind, j]
            if rate > 0 and m >= threshold and (kind != SQUEEZE or fall >= rules[kind, 3]):
                r = m / threshold
                rates[kind, j] = rate * (r if r < most else most) * multiple[j] * scale
                if rates[kind, j] > 0:
                    live = True
            else:
                rates[kind, j] = 0.0
    return live


flow_signals = njit(cache=True)(_flow_signals_py)
"""Compiled: see :func:`_flow_signals_py`."""


def _plan_orders_py(
    counts: I64, factors: F64, markets: I64, mark: F64, lot_size: F64, tier_cap: F64, tier_max_leverage: F64,
    median_usd: F64, leverage_median: float, out_j: I64, out_kind: I64, out_lots: I64, out_leverage: F64,
) -> int:  # fmt: skip
    """The step's orders from their counts ``counts[kind, j]`` (kind by kind, then flow market by flow market, then
    order by order, the draws' order) and log-normal factors ``factors[order] = (exp(sigma * z0), exp(leverage_sigma
    * z1))`` (computed by NumPy): flow market ``j``, kind, signed lots ``max(1, int(median_usd[j] * factor0 / mark
    / lot))`` (long for the dip and the squeeze, short for momentum) and leverage ``max(1, min(leverage_median *
    factor1, the tier's maximum leverage at the notional))``, the tier found by ``np.searchsorted(caps, notional,
    side="left")``. Returns how many orders were written."""
    k = 0
    for kind in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            m = markets[j]
            for _ in range(counts[kind, j]):
                usd = median_usd[j] * factors[k, 0]
                n = int(usd / mark[m] / lot_size[m])
                if n < 1:
                    n = 1
                notional = n * lot_size[m] * mark[m]
                t = np.searchsorted(tier_cap[m], notional, side="left")
                lev = leverage_median * factors[k, 1]
                cap = tier_max_leverage[m, t]
                if lev > cap:
                    lev = cap
                if lev < 1.0:
                    lev = 1.0
                out_j[k] = j
                out_kind[k] = kind
                out_lots[k] = -n if kind == MOMENTUM else n
                out_leverage[k] = lev
                k += 1
    return k


plan_orders = njit(cache=True)(_plan_orders_py)
"""Compiled: see :func:`_plan_orders_py`."""


class CrowdFlowPhase:
    """The flow phase: signals, draws, orders through the books, and the flow accounts' new trigger bands."""

    def __init__(self, world: World, execution: BookExecution, liquidation: LiquidationEngine,
                 rng: np.random.Generator, scale: float, reband: Any,
                 hold_rng: np.random.Generator | None = None) -> None:  # fmt: skip
        """``liquidation``: settles the gap of a cover or close past bankruptcy; ``rng``: the run's ``flow`` stream;
        ``reband``: the crowd's band update for the accounts touched; ``hold_rng``: the ``flow_hold`` stream (needed
        with ``flow.hold_median_s``)."""
        self.world = world
        cfg = self.config = world.scenario.flow
        self.execution = execution
        self.liquidation = liquidation
        self.rng = rng
        self.scale = scale
        self.reband = reband
        self.keys = list(cfg.markets)
        ids = {k: i for i, k in enumerate(world.market_keys)}
        self.markets = np.array([ids[k] for k in self.keys], dtype=np.int64)
        self.multiple = np.array([cfg.markets[k].rate_multiple for k in self.keys])
        self.median_usd = np.array([(cfg.markets[k].median_usd or cfg.median_usd) / scale for k in self.keys])
        crowd = world.scenario.population or world.scenario.crowd
        self.leverage_median = cfg.leverage_median or crowd.leverage_median
        self.leverage_sigma = crowd.leverage_sigma if cfg.leverage_sigma is None else cfg.leverage_sigma
        step_s = world.scenario.step_ms / 1000.0
        self.recent_steps = max(1, round(cfg.recent_window_s / step_s))
        self.start_step = round(cfg.start_s / step_s)
        """Steps before this one draw no order (``flow.start_s``)."""
        self.lag_steps = max(1, round(cfg.momentum.window_s / step_s)) if cfg.momentum is not None else 1
        n, n_l = self.markets.size, max(self.recent_steps, self.lag_steps) + 1
        self.hist = np.zeros((n, n_l))
        self.peak_q = np.zeros((n, n_l), np.int64)
        self.trough_q = np.zeros((n, n_l), np.int64)
        self.peak_ends = np.zeros((n, 2), np.int64)
        self.trough_ends = np.zeros((n, 2), np.int64)
        self.measures = np.zeros((4, n))
        self.rates = np.zeros((3, n))
        rules: tuple[FlowRule | None, ...] = (cfg.dip, cfg.momentum, cfg.squeeze)
        self.rules = np.array([(1.0, 0.0, 1.0, 0.0) if r is None else
                               (r.threshold, r.rate_per_s, r.max_multiple, getattr(r, "after_fall", 0.0))
                               for r in rules])  # fmt: skip
        """Per kind: (threshold, rate_per_s, max_multiple, after_fall); an absent rule has rate 0."""
        self.pool_start = world.flow_pool_start
        self.pool_size = world.flow_pool_size
        self.used = np.zeros(n, np.int64)
        """Per flow market: pool accounts opened so far (the next one is ``pool_start + used``)."""
        self.cover_cursor = np.zeros(n, np.int64)
        """Per flow market: pool accounts before this one are no open short (the squeeze's oldest open short)."""
        self.opened = np.zeros((3, n), np.int64)
        self.opened_usd = np.zeros((3, n))
        self.covered = np.zeros(n, np.int64)
        self.covered_usd = np.zeros(n)
        self.unfilled = np.zeros(n, np.int64)
        self.pool_full = np.zeros(n, np.int64)
        """Per flow market: orders dropped because its pool was used up."""
        self.orders = 0
        self.step_s = step_s
        self.hold_rng = hold_rng
        if cfg.hold_median_s is not None and hold_rng is None:
            raise ValueError("flow.hold_median_s needs the flow_hold stream")
        self.due: list[tuple[int, int, int]] = []
        """Open flow positions' closing times: a heap of (step, account, flow market)."""
        self.closed = np.zeros(n, np.int64)
        self.closed_usd = np.zeros(n)
        self.close_retries = 0
        """Closes that found no fill and wait a minute to try again."""
        self.step = 0

    def __call__(self, clock: Clock) -> None:
        w = self.world
        self.step = clock.step
        active = flow_signals(clock.step, w.markets.mark, self.markets, self.hist, self.peak_q, self.peak_ends,
                              self.trough_q, self.trough_ends, self.recent_steps, self.lag_steps, self.rules,
                              self.multiple, float(self.scale), self.measures, self.rates)  # fmt: skip
        if self.due and self.due[0][0] <= clock.step:
            self.close_due(clock.step)
        if not active:
            return
        if clock.step < self.start_step:
            return  # the measures move on; nothing is drawn yet
        counts = self.rng.poisson(self.rates * clock.step_s).astype(np.int64)
        total = int(counts.sum())
        if total == 0:
            return
        z = self.rng.standard_normal((total, 2))
        factors = np.exp(z * np.array([self.config.sigma, self.leverage_sigma]))
        out_j, out_kind, out_lots = (np.zeros(total, np.int64) for _ in range(3))
        out_leverage = np.zeros(total)
        mk = w.markets
        plan_orders(counts, factors, self.markets, mk.mark, mk.lot_size, mk.tier_cap, mk.tier_max_leverage,
                    self.median_usd, self.leverage_median, out_j, out_kind, out_lots, out_leverage)  # fmt: skip
        self.orders += total
        touched: list[int] = []
        covers = self.config.squeeze is not None and self.config.squeeze.covers
        for j, kind, lots, lev in zip(out_j.tolist(), out_kind.tolist(), out_lots.tolist(), out_leverage.tolist(),
                                      strict=True):  # fmt: skip
            if kind == SQUEEZE and covers and self.cover(j, touched):
                continue
            self.open(j, kind, lots, lev, touched)
        if touched:
            self.reband(np.unique(np.array(touched, dtype=np.int64)))

    def open(self, j: int, kind: int, lots: int, leverage: float, touched: list[int]) -> None:
        """A new position of ``lots`` in flow market ``j`` from its next dormant account (see the module docstring)."""
        if self.used[j] == self.pool_size[j]:
            self.pool_full[j] += 1
            return
        w = self.world
        m = int(self.markets[j])
        a = int(self.pool_start[j] + self.used[j])
        mark = float(w.markets.mark[m])
        side = 1 if lots > 0 else -1
        fill = self.execution.taker_trade(a, m, lots, mark * (1 + side * self.config.limit_fraction))
        if fill.lots == 0:
            self.unfilled[j] += 1
            return
        notional = abs(fill.lots) * float(w.markets.lot_size[m]) * fill.average_price
        deposit = notional / leverage + w.taker_fee[int(w.markets.venue[m])] * notional
        w.accounts.wallet[a] += deposit
        w.ledger.external_in += deposit
        self.used[j] += 1
        self.opened[kind, j] += 1
        self.opened_usd[kind, j] += notional
        touched.append(a)
        cfg = self.config
        if cfg.hold_median_s is not None:
            assert self.hold_rng is not None
            hold_s = cfg.hold_median_s * float(np.exp(cfg.hold_sigma * self.hold_rng.standard_normal()))
            heapq.heappush(self.due, (self.step + max(1, round(hold_s / self.step_s)), a, j))

    def close_due(self, step: int) -> None:
        """Close, whole, every flow position whose holding time has passed (in closing-time order, then account),
        as a cover closes (:meth:`close_whole`). A position already closed (liquidated, ADL'd, covered) is passed;
        one that finds no fill, or part of one, tries again a minute later."""
        size = self.world.positions.size_lots
        touched: list[int] = []
        retry = max(1, round(60.0 / self.step_s))
        while self.due and self.due[0][0] <= step:
            _, a, j = heapq.heappop(self.due)
            if size[a] == 0:
                continue
            filled_usd = self.close_whole(a, int(self.markets[j]))
            if size[a] != 0:
                heapq.heappush(self.due, (step + retry, a, j))
            if filled_usd == 0.0:
                self.close_retries += 1
                continue
            if size[a] == 0:
                self.closed[j] += 1
            self.closed_usd[j] += filled_usd
            touched.append(a)
        if touched:
            self.reband(np.unique(np.array(touched, dtype=np.int64)))

    def cover(self, j: int, touched: list[int]) -> bool:
        """Buy back flow market ``j``'s oldest open flow short whole; False when none is open. The taker fee comes
        out of what equity the close leaves, and a short bought back past bankruptcy (one its venue's liquidation
        could not close) has its gap settled, fund then bad debt, as a crowd stop's."""
        w = self.world
        size = w.positions.size_lots
        start, end = int(self.pool_start[j]), int(self.pool_start[j] + self.used[j])
        c = start + int(self.cover_cursor[j])
        while c < end and size[c] >= 0:
            c += 1
        self.cover_cursor[j] = c - start
        if c == end:
            return False
        filled_usd = self.close_whole(c, int(self.markets[j]))
        if filled_usd == 0.0:
            self.unfilled[j] += 1
            return True
        self.covered[j] += 1
        self.covered_usd[j] += filled_usd
        touched.append(c)
        return True

    def close_whole(self, a: int, m: int) -> float:
        """An IOC order closing flow account ``a``'s whole position in market ``m``, limited ``limit_fraction`` past
        mark, the taker fee out of what equity the close leaves; a close past bankruptcy (a position its venue's
        liquidation could not close) has its gap settled, fund then bad debt, as a crowd stop's. Returns the USD
        notional filled (0 when nothing filled)."""
        w = self.world
        lots = -int(w.positions.size_lots[a])
        limit = float(w.markets.mark[m]) * (1 + (1 if lots > 0 else -1) * self.config.limit_fraction)
        fill = self.execution.taker_trade(a, m, lots, limit, fee_within_equity=True)
        if fill.lots == 0:
            return 0.0
        self.liquidation.settle_gap(int(w.markets.venue[m]), a, -1)
        return abs(fill.lots) * float(w.markets.lot_size[m]) * fill.average_price

    def summary(self, liquidated: set[int], adl_hit: set[int]) -> dict[str, Any]:
        """Totals for summary.json: accounts in the pools, orders, opened by rule (count and USD), covers, orders
        that found no fill or a full pool, positions closed at the end of their holding time (count, USD, and closes
        that found no fill and tried again), and how many flow accounts were liquidated or hit by ADL."""
        pool = [set(range(int(s), int(s + u))) for s, u in zip(self.pool_start, self.used, strict=True)]
        used = set().union(*pool) if pool else set()
        return {
            "pool_accounts": int(self.pool_size.sum()),
            "orders": int(self.orders),
            "opened": {name: int(self.opened[k].sum()) for k, name in enumerate(RULE_NAMES)},
            "opened_usd": {name: float(self.opened_usd[k].sum()) for k, name in enumerate(RULE_NAMES)},
            "covered": int(self.covered.sum()),
            "covered_usd": float(self.covered_usd.sum()),
            "closed": int(self.closed.sum()),
            "closed_usd": float(self.closed_usd.sum()),
            "close_retries": int(self.close_retries),
            "unfilled": int(self.unfilled.sum()),
            "pool_full": int(self.pool_full.sum()),
            "liquidated_accounts": len(used & liquidated),
            "adl_hit_accounts": len(used & adl_hit),
            "by_market": {key: self._market_summary(j, pool[j], liquidated) for j, key in enumerate(self.keys)},
        }

    def _market_summary(self, j: int, used: set[int], liquidated: set[int]) -> dict[str, int]:
        return {"pool_accounts": int(self.pool_size[j]), "opened": int(self.opened[:, j].sum()),
                "pool_full": int(self.pool_full[j]), "liquidated_accounts": len(used & liquidated)}  # fmt: skip
