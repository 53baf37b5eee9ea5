"""Order books under random ladders and taker orders: never crossed, lots conserved, limits and FoK respected,
price-time priority, and the compiled kernels equal to their plain-Python reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.state import orderbook as ob
from perpstress.state.orderbook import ASK, BID, OrderBooks


def fresh() -> OrderBooks:
    return OrderBooks(2, 64, np.array([0.5, 0.01]), np.array([0.001, 1.0]))


ladder = st.tuples(
    st.integers(0, 1),  # market
    st.integers(0, 1),  # side
    st.integers(0, 3),  # owner
    st.lists(st.tuples(st.integers(-40, 40), st.integers(1, 50)), max_size=8),  # (offset ticks, lots)
)
taker = st.tuples(st.integers(0, 1), st.integers(-120, 120).filter(bool), st.integers(-60, 60), st.booleans())


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.one_of(ladder.map(lambda x: ("post", x)), taker.map(lambda x: ("take", x))), max_size=40))
def test_books_stay_sound(ops) -> None:
    books = fresh()
    mirror = fresh()  # the same operations through the plain-Python kernels
    for kind, op in ops:
        if kind == "post":
            m, side, who, levels = op
            mid = 1000
            ticks = np.array([mid - 1 - abs(d) if side == BID else mid + 1 + abs(d) for d, _ in levels], np.int64)
            sizes = np.array([q for _, q in levels], np.int64)
            books_before = books.count.copy()
            ob._replace_ladder(books.price, books.lots, books.owner, books.count, m, side, who, ticks, sizes)
            ob._replace_ladder_py(mirror.price, mirror.lots, mirror.owner, mirror.count, m, side, who, ticks, sizes)
            assert books.count[m, side] <= books_before[m, side] + len(levels)
        else:
            m, want, limit_off, fok = op
            limit = 1000 + limit_off
            side = ASK if want > 0 else BID
            resting_before = int(books.lots[m, side, : books.count[m, side]].sum())
            out = [np.zeros(128, np.int64) for _ in range(3)]
            k = ob._match(books.price, books.lots, books.owner, books.count, m, want, limit, fok, *out)
            out_py = [np.zeros(128, np.int64) for _ in range(3)]
            k_py = ob._match_py(mirror.price, mirror.lots, mirror.owner, mirror.count, m, want, limit, fok, *out_py)
            assert k == k_py
            for a, b in zip(out, out_py, strict=True):
                np.testing.assert_array_equal(a[:k], b[:k])
            filled = int(out[2][:k].sum())
            resting_after = int(books.lots[m, side, : books.count[m, side]].sum())
            assert filled + resting_after == resting_before  # lots conserved
            assert filled <= abs(want)
            if fok:
                assert filled in (0, abs(want))
            if k:  # never beyond the limit, and best prices first
                ticks = out[1][:k]
                assert np.all(ticks <= limit) if want > 0 else np.all(ticks >= limit)
                assert np.all(np.diff(ticks) >= 0) if want > 0 else np.all(np.diff(ticks) <= 0)
        assert not books.is_crossed()
        for arr in ("price", "lots", "owner", "count"):
            np.testing.assert_array_equal(getattr(books, arr), getattr(mirror, arr))
        reference = np.array([1000.0, 1003.0]) * books.tick_size  # the compiled all-market depth = the per-market one
        out_bid, out_ask = np.zeros(2), np.zeros(2)
        books.depth_all(0.002, reference, out_bid, out_ask)
        for m in range(2):
            assert out_bid[m] == pytest.approx(books.depth_within(m, BID, 0.002, reference[m]), rel=1e-12, abs=1e-12)
            assert out_ask[m] == pytest.approx(books.depth_within(m, ASK, 0.002, reference[m]), rel=1e-12, abs=1e-12)
        for m in range(2):  # sorted best-first on both sides
            bids = books.price[m, BID, : books.count[m, BID]]
            asks = books.price[m, ASK, : books.count[m, ASK]]
            assert np.all(np.diff(bids) <= 0)
            assert np.all(np.diff(asks) >= 0)


def test_price_time_priority_and_owner_of_each_fill() -> None:
    books = fresh()
    books.replace_ladder(0, ASK, 1, np.array([101.0, 100.5]), np.array([0.002, 0.003]))
    books.replace_ladder(0, ASK, 2, np.array([100.5]), np.array([0.004]))
    owners, ticks, lots = books.match(0, 6, 101.0, False)
    # 100.5 first: owner 1 arrived first there (3 lots), then owner 2 (3 of its 4); 101 untouched.
    assert list(owners) == [1, 2]
    assert list(lots) == [3, 3]
    assert list(ticks * 0.5) == [100.5, 100.5]
    assert books.rows(0) == [("ask", 100.5, 0.001, 2), ("ask", 101.0, 0.002, 1)]


def test_fill_or_kill_fills_nothing_when_short() -> None:
    books = fresh()
    books.replace_ladder(0, BID, 1, np.array([99.0, 98.0]), np.array([0.002, 0.002]))
    assert books.match(0, -5, 98.0, True)[2].size == 0
    assert books.count[0, BID] == 2
    assert books.match(0, -4, 98.0, True)[2].sum() == 4


def test_post_only_refuses_crossing_orders() -> None:
    books = fresh()
    books.replace_ladder(0, ASK, 1, np.array([100.0]), np.array([0.001]))
    assert books.replace_ladder(0, BID, 2, np.array([100.0, 99.5]), np.array([0.001, 0.001])) == 1
    assert not books.is_crossed()


def test_depth_and_impact_price() -> None:
    books = fresh()
    books.replace_ladder(0, ASK, 1, np.array([100.0, 101.0, 103.0]), np.array([1.0, 1.0, 1.0]))
    assert books.depth_within(0, ASK, 0.01, 100.0) == pytest.approx(201.0)
    # 150 USD: 1 at 100, then 50 USD at 101 -> 150 / (1 + 50/101)
    assert books.impact_price(0, ASK, 150.0) == pytest.approx(150.0 / (1 + 50 / 101))
    assert np.isnan(books.impact_price(0, ASK, 1e6))
