"""The market makers' phase: every maker updates its state and requotes its ladder (rules in
:mod:`perpstress.mechanisms.market_makers`).

Per step, before any taker trades: the ADL fills since the last step are added to each maker's ADL exposure (lots
ADL'd against it, decaying with half-life ``makers.vol_window_s``); then each maker, in account order, updates its
withdraw / return state from its market's realised volatility (the World's recent mark log-returns), its equity
and its ADL share, and posts a new ladder around its fair value: the fundamental value for a spot book, the venue's
index for a perpetual. A maker's inventory is what it has taken on since the start (its start position stands for
the hedged book of the other side).

With ``requote_bps`` set, a maker that was not filled keeps its previous ladder while nothing it watches has moved
(fair value within ``requote_bps``, volatility within 10 %, inventory within 2 % of its limit, appetite within
0.01, the return ramp within 0.02).
"""

from __future__ import annotations

import numpy as np

from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlRecord
from perpstress.mechanisms.market_makers import MakerState, post_ladder, quote_shape, update_state
from perpstress.state.clock import Clock
from perpstress.state.world import World


class MakersPhase:
    """Every maker's state and quotes, one step at a time."""

    def __init__(self, world: World, accounting: Accounting, adl_record: AdlRecord) -> None:
        self.world = world
        self.accounting = accounting
        self.adl_record = adl_record
        mk_cfg = world.scenario.makers
        assert mk_cfg is not None, "a run needs a [makers] section"
        self.maker_ids = world.maker_ids
        maker_market = world.positions.market[self.maker_ids]
        self.cfg = [mk_cfg.for_market(k) for k in world.market_keys]
        """Per market: its makers' configuration."""
        self.state = [MakerState(peak_equity=self.cfg[m].capital_usd) for m in maker_market]
        self.start_lots = world.positions.size_lots[self.maker_ids].copy()
        self.last_quote = [(np.nan, np.nan, np.nan, np.nan, np.nan)] * len(self.maker_ids)
        """Per maker: (fair value, vol, inventory, appetite, ramp) its book ladder was posted at."""
        self.adl_lots = np.zeros(world.accounts.n)
        """ADL'd lots against each maker, decaying with the volatility window: the maker's recent ADL exposure."""
        self.adl_seen = 0

    def __call__(self, clock: Clock) -> None:
        w = self.world
        rec = self.adl_record
        if len(rec.account) > self.adl_seen:  # ADL fills since the last step, against whom
            hit = np.asarray(rec.account[self.adl_seen :], dtype=np.int64)
            np.add.at(self.adl_lots, hit, np.asarray(rec.lots[self.adl_seen :], dtype=float))
            self.adl_seen = len(rec.account)
        window = w.scenario.makers.vol_window_s if w.scenario.makers else 60.0
        self.adl_lots *= 0.5 ** (clock.step_s / window)
        vol = np.sqrt(np.mean(w.log_returns**2, axis=1) / clock.step_s)  # realised vol per market
        last = self.last_quote
        pos, mk = w.positions, w.markets
        for i, a in enumerate(self.maker_ids):
            m = int(pos.market[a])
            cfg = self.cfg[m]
            mark = mk.mark[m]
            # the position a maker starts with stands for the hedged book of the other side; its quoting risk is
            # what it has taken on since
            inventory = float((pos.size_lots[a] - self.start_lots[i]) * mk.lot_size[m] * mark)
            equity = self.accounting.unit_equity(int(a), -1)
            held = abs(float(pos.size_lots[a]))
            adl_share = self.adl_lots[a] / max(held + self.adl_lots[a], 1.0)
            old = self.state[i]
            state = update_state(cfg, old, vol[m], equity, adl_share, clock.step_s)
            self.state[i] = state
            fair = float(w.fundamental[m] if w.is_spot[m] else w.index_now[m])
            if cfg.requote_bps > 0 and not w.maker_filled[a] and state.active == old.active:
                # requote only when something a maker watches has moved (its fills, fair value, vol, inventory,
                # appetite, the return ramp): the book keeps its previous ladder otherwise
                f0, v0, i0, ap0, r0 = last[i]
                if (abs(fair - f0) <= cfg.requote_bps * 1e-4 * f0 and abs(vol[m] - v0) <= 0.1 * max(v0, cfg.vol_ref)
                        and abs(inventory - i0) <= 0.02 * cfg.inventory_limit_usd and abs(w.appetite - ap0) <= 0.01
                        and abs(state.ramp - r0) <= 0.02):  # fmt: skip
                    continue
            w.maker_filled[a] = False
            last[i] = (fair, float(vol[m]), inventory, w.appetite, state.ramp)
            shape = quote_shape(cfg, state, fair, vol[m], inventory, w.appetite)
            if shape is None:
                w.books.cancel_owner_in(m, int(a))
            else:
                b = w.books
                post_ladder(b.price, b.lots, b.owner, b.count, m, int(a), shape.mid, shape.half, shape.spacing,
                            shape.levels, shape.side_usd, shape.bid_scale, shape.ask_scale,
                            float(mk.tick_size[m]), float(mk.lot_size[m]))  # fmt: skip
