"""The makers' phase on the kit's World: ladders around the index, withdrawal when volatility spikes, requoting."""

from __future__ import annotations

import numpy as np
import pytest

from kit import BTC, HIVE, crowded_long_world
from perpstress.mechanisms.adl import AdlRecord
from perpstress.mechanisms.agents.makers import MakersPhase
from perpstress.mechanisms.market_makers import post_ladder, quote_shape, settle, skew_lots, update_state
from perpstress.state.clock import Clock


def test_every_maker_quotes_both_sides_around_its_index_and_the_book_is_not_crossed() -> None:
    kit = crowded_long_world()
    w = kit.world
    bid, ask = w.books.best_bid_ask()
    assert np.isnan(bid).all()
    assert np.isnan(ask).all()
    kit.quote()
    bid, ask = w.books.best_bid_ask()
    for m in (BTC, HIVE):
        assert bid[m] < w.index_now[m] < ask[m]
        assert (ask[m] - bid[m]) / w.index_now[m] < 0.01  # calm: a tight spread
        owners = {owner for *_, owner in w.books.rows(m)}
        assert owners == {int(a) for a in w.maker_ids if w.positions.market[a] == m}
    assert not w.books.is_crossed()


def test_makers_withdraw_when_realised_volatility_is_far_above_their_reference() -> None:
    kit = crowded_long_world()
    w = kit.world
    phase = kit.quote()
    assert all(s.active for s in phase.state)
    w.log_returns[BTC, :] = 0.05  # 5 % a second on every step of the window
    phase(kit.clock(1))
    btc_makers = [i for i, a in enumerate(phase.maker_ids) if w.positions.market[a] == BTC]
    assert not any(phase.state[i].active for i in btc_makers)
    assert w.books.rows(BTC) == []  # their ladders are cancelled
    assert w.books.rows(HIVE) != []  # the calm market keeps its makers


def test_after_a_jump_makers_requote_their_asks_around_the_new_index_and_the_book_never_crosses() -> None:
    kit = crowded_long_world()
    w = kit.world
    phase = kit.quote()
    _, ask_before = w.books.best_bid_ask()
    kit.move(0.01)  # the index jumps up 1 %, far past the spread
    phase(kit.clock(1))
    bid, ask = w.books.best_bid_ask()
    assert ask[BTC] > w.index_now[BTC] > ask_before[BTC]
    # each maker replaces its bids first, while the other side still holds the old asks: a new bid that would
    # cross them is not posted (the book refuses crossing orders), so the bid side is empty for this step
    assert np.isnan(bid[BTC]) or bid[BTC] < ask[BTC]
    assert not w.books.is_crossed()
    phase(kit.clock(2))  # next step the asks are already up: the bids come back below the index
    bid, ask = w.books.best_bid_ask()
    assert bid[BTC] < w.index_now[BTC] < ask[BTC]


class PerMakerPhase(MakersPhase):
    """The phase as it ran before its loop was compiled: per maker in Python, :func:`update_state`, the requote
    test, :func:`quote_shape` and :func:`post_ladder` (the reference the compiled phase is held to)."""

    def __call__(self, clock: Clock) -> None:
        w = self.world
        if not hasattr(self, "states"):
            self.states = self.state
            self.last = [(np.nan,) * 7] * len(self.maker_ids)
            self.laid = [0.0] * len(self.maker_ids)
        rec = self.adl_record
        if len(rec.account) > self.adl_seen:
            hit = np.asarray(rec.account[self.adl_seen :], dtype=np.int64)
            np.add.at(self.adl_lots, hit, np.asarray(rec.lots[self.adl_seen :], dtype=float))
            self.adl_seen = len(rec.account)
        window = w.scenario.makers.vol_window_s if w.scenario.makers else 60.0
        self.adl_lots *= 0.5 ** (clock.step_s / window)
        vol = np.sqrt(np.mean(w.log_returns**2, axis=1) / clock.step_s)
        last = self.last
        pos, mk = w.positions, w.markets
        for i, a in enumerate(self.maker_ids):
            m = int(pos.market[a])
            cfg = self.cfg[m]
            mark = mk.mark[m]
            held_lots = float(pos.size_lots[a] - self.start_lots[i])
            inventory = float((pos.size_lots[a] - self.start_lots[i]) * mk.lot_size[m] * mark)
            self.laid[i] = settle(cfg, self.laid[i], held_lots, clock.step_s)
            skewed = skew_lots(cfg, self.laid[i], held_lots) * mk.lot_size[m] * mark
            equity = self.accounting.unit_equity(int(a), -1)
            held = abs(float(pos.size_lots[a]))
            adl_share = self.adl_lots[a] / max(held + self.adl_lots[a], 1.0)
            old = self.states[i]
            f0, v0, i0, ap0, r0, rf0, s0 = last[i]
            swept = abs(inventory - i0) / cfg.depth_usd if w.maker_filled[a] and not np.isnan(i0) else 0.0
            state = update_state(cfg, old, vol[m], equity, adl_share, clock.step_s, swept)
            self.states[i] = state
            fair = float(w.fundamental[m] if w.is_spot[m] else w.index_now[m])
            if (cfg.requote_bps > 0 and not w.maker_filled[a] and state.active == old.active
                    and abs(fair - f0) <= cfg.requote_bps * 1e-4 * f0 and abs(vol[m] - v0) <= 0.1 * max(v0, cfg.vol_ref)
                    and abs(inventory - i0) <= 0.02 * cfg.inventory_limit_usd and abs(w.appetite - ap0) <= 0.01
                    and abs(state.ramp - r0) <= 0.02 and abs(state.refill - rf0) <= 0.02
                    and abs(skewed - s0) <= 0.02 * cfg.inventory_limit_usd):  # fmt: skip
                continue
            w.maker_filled[a] = False
            last[i] = (fair, float(vol[m]), inventory, w.appetite, state.ramp, state.refill, skewed)
            shape = quote_shape(cfg, state, fair, vol[m], inventory, w.appetite, skewed)
            if shape is None:
                w.books.cancel_owner_in(m, int(a))
            else:
                b = w.books
                post_ladder(b.price, b.lots, b.owner, b.count, m, int(a), shape.mid, shape.half, shape.spacing,
                            shape.levels, shape.side_usd, shape.bid_scale, shape.ask_scale,
                            float(mk.tick_size[m]), float(mk.lot_size[m]))  # fmt: skip


@pytest.mark.parametrize("permanent", [1.0, 0.6])
@pytest.mark.parametrize("requote_bps", [0.0, 3.0])
def test_the_compiled_phase_posts_the_same_books_and_states_as_the_per_maker_loop(
    requote_bps: float, permanent: float
) -> None:
    kits = [crowded_long_world(), crowded_long_world()]
    phases: list[MakersPhase] = []
    for kit, cls in zip(kits, (MakersPhase, PerMakerPhase), strict=True):
        phase = cls(kit.world, kit.accounting, AdlRecord())
        update = {"requote_bps": requote_bps, "return_half_life_s": 5.0, "sweep_size_cut": 0.5,
                  "refill_half_life_s": 3.0, "inventory_skew_bps": 40.0, "inventory_skew_permanent": permanent,
                  "inventory_skew_half_life_s": 4.0}  # fmt: skip
        phase.cfg = [c.model_copy(update=update) for c in phase.cfg]
        phases.append(phase)
    makers = kits[0].makers
    kept = 0
    for step in range(40):
        before = phases[0].last_quote.copy()
        for kit, phase in zip(kits, phases, strict=True):  # the same world moves for both
            w = kit.world
            kit.move(0.0002 * np.sin(step / 3) + (0.01 if step > 30 else 0.0))
            w.log_returns[:, :] = 1e-4 * (1 + 0.01 * np.sin(step))
            w.log_returns[BTC, :] = 0.05 if 10 <= step < 14 else w.log_returns[BTC, :]  # a spike, then calm
            w.appetite = 0.0 if step == 20 else 1.0 - 0.002 * step
            if step % 5 == 4:
                a = makers[step % len(makers)]
                w.positions.size_lots[a] += 300 * (step % 3 - 1)  # a fill: inventory moves, sweeping part of a side
                w.maker_filled[a] = True
            if step == 25:
                w.accounts.wallet[makers[0]] -= 1e9  # a loss past the limit
                phase.adl_record.account.append(int(makers[1]))  # an ADL fill against another
                phase.adl_record.lots.append(10**6)
            phase(kit.clock(step))
        kept += int(np.sum(np.all(phases[0].last_quote == before, axis=1)))
        a, b = (kit.world.books for kit in kits)
        for x, y in ((a.price, b.price), (a.lots, b.lots), (a.owner, b.owner), (a.count, b.count)):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(kits[0].world.maker_filled, kits[1].world.maker_filled)
        assert phases[0].state == phases[1].states  # type: ignore[attr-defined]
        np.testing.assert_array_equal(phases[0].last_quote, np.array(phases[1].last))  # type: ignore[attr-defined]
        np.testing.assert_array_equal(phases[0].settled, np.array(phases[1].laid))  # type: ignore[attr-defined]
    assert (kept > 0) == (requote_bps > 0)  # with requote_bps some makers kept their ladders some steps
    assert min(s.refill for s in phases[1].states) < 1.0  # type: ignore[attr-defined]  # a sweep cut a size
