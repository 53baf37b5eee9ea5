"""The compiled makers' settlement gives, bit for bit, what :meth:`Accounting.trade` and ``credit`` give fill by fill
(the path it replaced): positions opened, added to, reduced, closed and flipped, fees to the venue's pool."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.mechanisms.accounting import Accounting, settle_maker_fills
from perpstress.rules.margin import TierTable
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

MAKERS = 4  # accounts 0-1 quote market 0, accounts 2-3 market 1; a maker's position index is its account index
LOT = (0.001, 10.0)
MAKER_RATE = 0.0002


def build(sizes: list[int], entries: list[float], wallets: list[float]) -> Accounting:
    table = TierTable.from_rates([0.0], [np.inf], [0.005], [100.0])
    markets = Markets.from_tables([0, 0], list(LOT), [0.1, 0.0001], [table, table])
    acc = np.arange(MAKERS, dtype=np.int32)
    start, count = group_by_account(MAKERS, acc)
    accounts = Accounts(np.zeros(MAKERS, np.int32), np.array(wallets), start, count)
    market = np.array([0, 0, 1, 1], np.int32)
    positions = Positions(acc, market, np.array(sizes, np.int64), np.array(entries), np.full(MAKERS, np.nan))
    return Accounting(markets, accounts, positions)


fill = st.tuples(st.integers(0, 1), st.floats(50.0, 150.0), st.integers(1, 400))  # maker of the market, price, lots
order = st.tuples(st.integers(0, 1), st.sampled_from([1, -1]), st.lists(fill, min_size=1, max_size=6))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-500, 500), min_size=MAKERS, max_size=MAKERS),
    st.lists(st.floats(50.0, 150.0), min_size=MAKERS, max_size=MAKERS),
    st.lists(order, min_size=1, max_size=12),
)
def test_compiled_settlement_equals_trade_and_credit_fill_by_fill(
    sizes: list[int], entries: list[float], orders: list[tuple[int, int, list[tuple[int, float, int]]]]
) -> None:
    wallets = [1e4, 2e4, 3e4, 4e4]
    entries = [e if s else 0.0 for s, e in zip(sizes, entries, strict=True)]
    ours, ref = build(sizes, entries, wallets), build(sizes, entries, wallets)
    pool_ours, pool_ref = np.zeros(1), np.zeros(1)
    filled_ours, filled_ref = np.zeros(MAKERS, bool), np.zeros(MAKERS, bool)
    for market, sign, fills in orders:
        owners = np.array([2 * market + k for k, _, _ in fills], np.int64)
        prices = np.array([p for _, p, _ in fills])
        lots = np.array([n for _, _, n in fills], np.int64)
        pos = ours.positions
        settle_maker_fills(owners, prices, lots, sign, LOT[market], MAKER_RATE, 0, pos.market, ours.markets.lot_size,
                           pos.size_lots, pos.entry_price, ours.accounts.wallet, ours.long_lots, filled_ours,
                           pool_ours)  # fmt: skip
        for o, price, n in zip(owners, prices, lots, strict=True):  # the Python path, as BookExecution had it
            filled_ref[int(o)] = True
            ref.trade(int(o), -1, int(o), -sign * int(n), float(price))
            fee = MAKER_RATE * n * ref.markets.lot_size[market] * price
            ref.credit(int(o), -1, -fee)
            pool_ref[0] += fee
    assert np.array_equal(ours.positions.size_lots, ref.positions.size_lots)
    assert np.array_equal(ours.positions.entry_price, ref.positions.entry_price)
    assert np.array_equal(ours.accounts.wallet, ref.accounts.wallet)
    assert np.array_equal(ours.long_lots, ref.long_lots)
    assert np.array_equal(pool_ours, pool_ref)
    assert np.array_equal(filled_ours, filled_ref)
    # open interest kept current: total long lots per market
    pos = ours.positions
    assert np.array_equal(ours.long_lots, np.bincount(pos.market, np.maximum(pos.size_lots, 0), 2).astype(np.int64))
