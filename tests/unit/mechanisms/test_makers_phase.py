"""The makers' phase on the kit's World: ladders around the index, withdrawal when volatility spikes, requoting."""

from __future__ import annotations

import numpy as np

from kit import BTC, HIVE, crowded_long_world


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
