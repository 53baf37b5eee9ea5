"""Noise takers: market orders of a lognormal size arriving as a Poisson process per market.

Rule (``[takers]``, :class:`perpstress.config.agents.TakerConfig`): per market and step a Poisson number of orders
at the market's rate; each for ``median_usd * exp(sigma * N(0, 1))`` of notional at mark (at least one lot), a sell
with probability ``0.5 + sell_bias * (1 - appetite) - buy_bias``, limited 2 % past mark. One noise account per
market takes them (exempt from liquidation). The phase starts the step: it clears the last-trade prices first.
Draws come from the run's ``takers`` stream only, in market order, then order by order: count, size, side.
Left out: order-flow autocorrelation, informed flow, limit orders.
"""

from __future__ import annotations

import numpy as np

from perpstress.mechanisms.execution import BookExecution
from perpstress.state.clock import Clock
from perpstress.state.world import World


class TakersPhase:
    def __init__(self, world: World, execution: BookExecution, rng: np.random.Generator) -> None:
        """``rng``: the run's ``takers`` stream (``kernel.streams.get("takers")``)."""
        self.world = world
        self.execution = execution
        self.rng = rng
        self.flow = [world.scenario.takers.for_market(k) for k in world.market_keys]
        """Per market: (rate_per_s, median_usd, buy_bias, sell_bias_after_shock), fixed for the run."""
        self.rates = np.array([f[0] for f in self.flow])

    def __call__(self, clock: Clock) -> None:
        w = self.world
        cfg = w.scenario.takers
        rng = self.rng
        w.last_trade[:] = np.nan
        flow = self.flow
        counts = rng.poisson(self.rates * clock.step_s, size=w.markets.n)
        for m in np.flatnonzero(counts):
            _, median_usd, buy_bias, sell_bias = flow[m]
            for _ in range(int(counts[m])):
                usd = median_usd * float(np.exp(cfg.sigma * rng.standard_normal()))
                p_sell = 0.5 + sell_bias * (1.0 - w.appetite) - buy_bias
                side = -1 if rng.random() < p_sell else 1
                mark = float(w.markets.mark[m])
                lots = side * max(1, int(usd / mark / w.markets.lot_size[m]))
                self.execution.taker_trade(int(w.noise_ids[m]), int(m), lots, mark * (1 + side * 0.02))
