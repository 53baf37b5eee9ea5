"""The market makers' phase: every maker updates its state and requotes its ladder (rules in
:mod:`perpstress.mechanisms.market_makers`).

Per step, before any taker trades: the ADL fills since the last step are added to each maker's ADL exposure (lots
ADL'd against it, decaying with half-life ``makers.vol_window_s``); then each maker, in account order, updates its
withdraw / return state from its market's realised volatility (the World's recent mark log-returns), its equity
and its ADL share, and posts a new ladder around its fair value: the venue's index for a perpetual; for a spot book
the fundamental value, or with ``spot_fair_value = "perpetual_mark"`` the mark of the venue's perpetual in the same
asset (its last value: the marks of this step are published after the makers quote). With
``spot_anchor_half_life_s`` the spot market outside the scenario's venues pulls that fair value back towards the
fundamental value: each step it is ``(1 - a) * mark + a * fundamental`` with ``a = 1 - 0.5 ** (step / half_life)``,
so a gap between the venues' books and the fundamental, which the books carry from step to step (the perpetual's
makers quote around an index of these spot books), closes with that half-life. A maker's inventory is what
it has taken on since the start (its start position stands for the hedged book of the other side).

With ``requote_bps`` set, a maker that was not filled keeps its previous ladder while nothing it watches has moved
(fair value within ``requote_bps``, volatility within 10 %, inventory and the inventory its quotes are skewed
against within 2 % of its limit, appetite within 0.01, the return ramp and the refill within 0.02).
"""

from __future__ import annotations

import numpy as np

from perpstress.config.agents import SpotFairValue
from perpstress.mechanisms.accounting import Accounting, settle_maker_fills
from perpstress.mechanisms.adl import AdlRecord
from perpstress.mechanisms.market_makers import C_SETTLE_DECAY, MakerState, maker_config_table, makers_step
from perpstress.state.clock import Clock
from perpstress.state.world import World


class MakersPhase:
    """Every maker's state and quotes, one step at a time: the per-maker loop runs compiled
    (:func:`perpstress.mechanisms.market_makers.makers_step`) over the state kept as arrays."""

    def __init__(self, world: World, accounting: Accounting, adl_record: AdlRecord) -> None:
        self.world = world
        self.accounting = accounting
        self.adl_record = adl_record
        mk_cfg = world.scenario.makers
        assert mk_cfg is not None, "a run needs a [makers] section"
        self.maker_ids = np.asarray(world.maker_ids, dtype=np.int64)
        maker_market = world.positions.market[self.maker_ids]
        self.cfg = [mk_cfg.for_market(k) for k in world.market_keys]
        """Per market: its makers' configuration."""
        self.active = np.ones(len(self.maker_ids), dtype=bool)
        self.ramp = np.ones(len(self.maker_ids))
        """Fraction of full size restored after a withdrawal (0 just back, 1 fully back)."""
        self.peak_equity = np.array([self.cfg[m].capital_usd for m in maker_market], dtype=float)
        self.start_lots = world.positions.size_lots[self.maker_ids].copy()
        self.refill = np.ones(len(self.maker_ids))
        """Fraction of full size refilled after fills swept the ladder."""
        self.settled = np.zeros(len(self.maker_ids))
        """Per maker: the inventory (lots) it has had time to lay off (``market_makers.settle``)."""
        self.last_quote = np.full((len(self.maker_ids), 7), np.nan)
        """Per maker: (fair value, vol, inventory, appetite, ramp, refill, skewed inventory) of its last ladder."""
        self.adl_lots = np.zeros(world.accounts.n)
        """ADL'd lots against each maker, decaying with the volatility window: the maker's recent ADL exposure."""
        self.adl_seen = 0
        self.lay_off = bool(mk_cfg.lay_off)
        """Makers lay their inventory off outside the venues (``makers.lay_off``), to the markets' absorbers."""
        self._maker_market = maker_market.astype(np.int64)
        self._unused = np.zeros(world.accounts.n if self.lay_off else 0, dtype=np.bool_)
        self._table_step_s = np.nan
        self._table, self._levels = maker_config_table(self.cfg, 1.0)
        perp_of = {(int(world.markets.venue[m]), world.market_base[m]): m for m in range(world.n_perpetual)}
        follow = [
            perp_of.get((int(world.markets.venue[m]), world.market_base[m]), -1)
            if world.is_spot[m] and self.cfg[m].spot_fair_value is SpotFairValue.PERPETUAL_MARK
            else -1
            for m in range(len(world.market_keys))
        ]
        self.follows = np.array(follow, dtype=np.int64)
        """Per market: the perpetual whose mark its makers quote around, -1 for none."""
        self._following = np.flatnonzero(self.follows >= 0)
        self._anchor_half_life = np.array([self.cfg[m].spot_anchor_half_life_s or np.inf for m in self._following])
        """Per following market: the half-life of the pull towards the fundamental value (inf: none)."""
        self._anchor = np.zeros(self._following.size)
        """Per following market: the share of its fair value taken from the fundamental value this step."""

    def lay_off_inventory(self, fair: np.ndarray) -> None:
        """Each maker lays off the share ``1 - C_SETTLE_DECAY`` of its inventory (what it took on since the start,
        whole lots) outside the venues. Its start position stands for a book hedged elsewhere, so the lay-off first
        reduces its position on the venue, as far as that position is on the inventory's side (traded at its
        market's fair value with the market's absorber: no fee, no book, no last trade), and the rest unwinds the
        hedge outside (the start position moves towards the position: no trade on the venue). A position is never
        grown or flipped, so a maker liquidated to flat is not re-opened. Money and open interest are kept: what
        the maker realises, the absorber's new position owes."""
        w = self.world
        pos, mk = w.positions, w.markets
        mm = self._maker_market
        size = pos.size_lots[self.maker_ids]
        held = size - self.start_lots
        share = np.trunc(np.abs(held) * (1.0 - self._table[mm, C_SETTLE_DECAY])).astype(np.int64)
        side = np.sign(held)
        on_venue = np.where(np.sign(size) == side, np.minimum(share, np.abs(size)), 0)
        self.start_lots += side * (share - on_venue)  # the hedge outside unwound: no trade here
        lots = (side * on_venue).astype(np.int64)
        moving = np.flatnonzero(lots)
        if moving.size == 0:
            return
        makers, lots, market = self.maker_ids[moving], lots[moving], mm[moving]
        price = fair[market].astype(np.float64)
        unused = self._unused  # not a book fill: the makers' requote test sees the change in inventory
        for owners, sign in ((makers, 1), (w.absorber_ids[market], -1)):
            settle_maker_fills(owners, price, lots, sign, 1.0, 0.0, 0, pos.market, mk.lot_size,
                               pos.size_lots, pos.entry_price, w.accounts.wallet, self.accounting.long_lots, unused,
                               w.ledger.fee_pool)  # fmt: skip
        np.add.at(w.laid_off_lots, makers, -lots)

    @property
    def state(self) -> list[MakerState]:
        """Per maker, its state as a :class:`MakerState` (a copy)."""
        return [
            MakerState(active=bool(a), ramp=float(r), peak_equity=float(p), refill=float(f))
            for a, r, p, f in zip(self.active, self.ramp, self.peak_equity, self.refill, strict=True)
        ]

    def __call__(self, clock: Clock) -> None:
        w = self.world
        rec = self.adl_record
        if len(rec.account) > self.adl_seen:  # ADL fills since the last step, against whom
            hit = np.asarray(rec.account[self.adl_seen :], dtype=np.int64)
            np.add.at(self.adl_lots, hit, np.asarray(rec.lots[self.adl_seen :], dtype=float))
            self.adl_seen = len(rec.account)
        window = w.scenario.makers.vol_window_s if w.scenario.makers else 60.0
        self.adl_lots[self.maker_ids] *= 0.5 ** (clock.step_s / window)  # only makers' entries are read
        vol = np.sqrt(np.mean(w.log_returns**2, axis=1) / clock.step_s)  # realised vol per market
        if clock.step_s != self._table_step_s:
            self._table, self._levels = maker_config_table(self.cfg, clock.step_s)
            self._anchor = 1.0 - 0.5 ** (clock.step_s / self._anchor_half_life)
            self._table_step_s = clock.step_s
        fair = np.where(w.is_spot, w.fundamental, w.index_now).astype(np.float64)
        if self._following.size:
            mark = w.markets.mark[self.follows[self._following]]
            if self._anchor.any():
                fund = w.fundamental[self._following]
                mark = np.where(self._anchor > 0, (1.0 - self._anchor) * mark + self._anchor * fund, mark)
            fair[self._following] = mark
        pos, mk, b = w.positions, w.markets, w.books
        acc = w.accounts
        if self.lay_off:
            self.lay_off_inventory(fair)
        makers_step(b.price, b.lots, b.owner, b.count, self.maker_ids, self.start_lots, self.active, self.ramp,
                    self.peak_equity, self.refill, self.settled, self.last_quote, w.maker_filled, pos.market,
                    pos.size_lots, pos.entry_price, pos.isolated_margin, acc.pos_start, acc.pos_count, acc.wallet,
                    mk.lot_size, mk.tick_size, mk.mark, self.adl_lots, vol, fair, float(w.appetite), self._table,
                    self._levels)  # fmt: skip
