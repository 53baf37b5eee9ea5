"""The funds' unwind (:func:`perpstress.mechanisms.fund_unwind.unwind_funds`), compiled and plain, against the Python
loop of :class:`~perpstress.mechanisms.fund_unwind.FundsPhase` over ``BookExecution`` and ``InsuranceFunds`` (the
reference), bit for bit: books, makers' positions and wallets, fee pools, last trades, volumes, open interest, the
funds' balances, inventories, entries, cost adjustments, bad debt and the equity each fund records.

Worlds are small and random: one or two funds (a venue each), one to four markets of either venue with marks from a
cent to 100,000, makers quoting ladders (some sides empty, some far from mark) around mark, funds holding long or
short inventory from under a lot to thousands of lots, entries and cost adjustments either side of mark and balances
from deep to below zero, so that unwinds fill in full, in part or not at all, close or flip an inventory, and some
funds end below zero (bad debt). Several steps run one after another, as the phase runs them.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from kit import flat
from perpstress.calculator import load_venue
from perpstress.mechanisms import fund_unwind as fu
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.fund_unwind import _unwind_funds_py, unwind_funds
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.state.ledger import Ledger
from perpstress.state.orderbook import ASK, BID, OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

TABLES = [p.tier_table() for p in load_venue("binance").perpetuals.values()]


@st.composite
def fund_worlds(draw: st.DrawFn) -> SimpleNamespace:
    """A World-like namespace with what the funds phase reads and writes."""
    n_f = draw(st.integers(1, 2))
    n_m = draw(st.integers(1, 4))
    venue = np.array([draw(st.integers(0, n_f - 1)) for _ in range(n_m)], np.int32)
    marks = np.array([10.0 ** draw(st.floats(-2.0, 5.0)) for _ in range(n_m)])
    tick = 10.0 ** np.floor(np.log10(marks)) * 1e-4
    lot = np.array([10.0 ** np.round(np.log10(draw(st.floats(1.0, 200.0)) / m)) for m in marks])
    tables = [draw(st.sampled_from(TABLES)) for _ in range(n_m)]
    markets = Markets.from_tables(list(venue), list(lot), list(tick), tables)
    markets.mark[:] = marks
    n_makers = draw(st.integers(1, 5))
    maker_market = [draw(st.integers(0, n_m - 1)) for _ in range(n_makers)]
    size = [draw(st.integers(-3000, 3000)) for _ in range(n_makers)]
    entry = [float(marks[m] * (1 + draw(st.floats(-0.1, 0.1)))) for m in maker_market]
    acc_ids = np.arange(n_makers, dtype=np.int32)
    start, count = group_by_account(n_makers, acc_ids)
    accounts = Accounts(venue[maker_market].astype(np.int32), np.array([1e6] * n_makers), start, count)
    positions = Positions(acc_ids, np.array(maker_market, np.int32), np.array(size, np.int64), np.array(entry),
                          np.full(n_makers, np.nan))  # fmt: skip
    books = OrderBooks(n_m, 24, markets.tick_size, markets.lot_size)
    for a, m in enumerate(maker_market):
        for side in (BID, ASK):
            steps = draw(st.lists(st.floats(0.0001, 0.008) | st.floats(0.005, 0.2), min_size=0, max_size=4))
            px = np.array([marks[m] * (1 - s if side == BID else 1 + s) for s in steps])
            q = np.array([draw(st.integers(1, 4000)) * lot[m] for _ in steps])
            books.replace_ladder(m, side, a, px, q)
    limits = [FundLimits(adl_drawdown_fraction=0.1, drawdown_window_ms=draw(st.sampled_from([2_000, 10**9])))
              for _ in range(n_f)]  # fmt: skip
    funds = InsuranceFunds.create([10.0 ** draw(st.floats(0.0, 7.0)) for _ in range(n_f)], n_m, limits)
    for f in range(n_f):
        for m in range(n_m):
            if draw(st.booleans()):
                held = draw(st.integers(-5000, 5000)) * lot[m] * draw(st.sampled_from([1.0, 0.3, 1.7, 0.001]))
                funds.take_over(f, m, held, float(marks[m] * (1 + draw(st.floats(-0.3, 0.3)))))
                if draw(st.booleans()):  # a second takeover: a cost adjustment, or a flip
                    more = draw(st.integers(-3000, 3000)) * lot[m]
                    funds.take_over(f, m, more, float(marks[m] * (1 + draw(st.floats(-0.3, 0.3)))))
        funds.balance[f] *= draw(st.sampled_from([1.0, 0.01, -0.5]))
    frac = draw(st.sampled_from([0.001, 0.05, 1.0]))
    return SimpleNamespace(
        scenario=SimpleNamespace(engine=SimpleNamespace(record_trades=False, fund_unwind_fraction=frac)),
        venues=list(range(n_f)),
        markets=markets,
        accounts=accounts,
        positions=positions,
        books=books,
        funds=funds,
        ledger=Ledger(np.zeros(n_f), np.zeros(n_f)),
        maker_fee=np.array([draw(st.sampled_from([-0.0001, 0.0, 0.0002])) for _ in range(n_f)]),
        taker_fee=np.full(n_f, 0.0005),
        maker_filled=np.zeros(n_makers, bool),
        last_trade=np.full(n_m, np.nan),
        volume_usd=np.zeros(n_m),
        keeper_ids=np.zeros(0, np.int64),
        now_ms=1_000,
        trades={},
        steps=draw(st.integers(1, 4)),
        drift=draw(st.sampled_from([1.0, 0.97, 1.03])),
    )  # fmt: skip


def run(world: SimpleNamespace, compiled: bool) -> list[Any]:
    """The funds phase for ``world.steps`` steps (marks drifting between them) on a copy of ``world``; returns every
    array it may write, the funds' recorded minimum equity and drawdown history, as bytes and exact values."""
    w = copy.deepcopy(world)
    accounting = Accounting(w.markets, w.accounts, w.positions)
    phase = fu.FundsPhase(w, BookExecution(w, accounting))  # type: ignore[arg-type]
    phase.compiled = compiled
    for step in range(w.steps):
        w.now_ms = 1_000 * (step + 1)
        phase(SimpleNamespace(ts_ms=w.now_ms))  # type: ignore[arg-type]
        w.markets.mark *= w.drift
    f, p, a, b = w.funds, w.positions, w.accounts, w.books
    arrays = [p.size_lots, p.entry_price, a.wallet, f.balance, f.inventory, f.entry_price, f.cost_adjustment,
              f.min_equity, w.ledger.bad_debt, w.ledger.fee_pool, w.maker_filled, w.last_trade, w.volume_usd,
              accounting.long_lots, b.price, b.lots, b.owner, b.count]  # fmt: skip
    history = [[(t, float(e).hex()) for t, e in h] for h in f._history]
    return [x.tobytes() for x in arrays] + [history]


def twin_checked(*args: Any) -> None:
    """The plain twin in the kernel's place, on the phase's arguments, asserted to leave them exactly as the compiled
    kernel leaves a copy of them."""
    mine = copy.deepcopy(args)
    unwind_funds(*mine)
    _unwind_funds_py(*args)
    assert flat(args) == flat(mine)


@settings(max_examples=200, deadline=None)
@given(world=fund_worlds())
def test_unwind_funds_equals_the_python_loop_and_its_twin(world: SimpleNamespace) -> None:
    reference = run(world, compiled=False)
    assert run(world, compiled=True) == reference
    kernel = fu.unwind_funds
    try:
        fu.unwind_funds = twin_checked
        twin = run(world, compiled=True)
    finally:
        fu.unwind_funds = kernel
    assert twin == reference
    start = copy.deepcopy(world.funds)
    event(f"inventory moved: {reference[4] != start.inventory.tobytes()}, "
          f"bad debt: {reference[8] != np.zeros(len(world.venues)).tobytes()}")  # fmt: skip


def test_a_long_inventory_sells_its_fraction_into_the_bid_and_books_the_fill() -> None:
    """Worked case: a fund long 100 lots of a 1-unit lot at entry 100 unwinds 10 % into a bid of 5 @ 99.5, 20 @ 99
    and 50 @ 98.5 (limit 1 % below mark 100: 99.0): 10 lots sell, 5 at 99.5 and 5 at 99, average 99.25; the fund
    realises 10 * (99.25 - 100) = -7.5 and keeps 90 lots; the maker is long 10."""
    markets = Markets.from_tables([0], [1.0], [0.5], [TABLES[0]])
    markets.mark[:] = 100.0
    start, count = group_by_account(1, np.zeros(1, np.int32))
    world = SimpleNamespace(
        scenario=SimpleNamespace(engine=SimpleNamespace(record_trades=False, fund_unwind_fraction=0.1)),
        venues=[0], markets=markets, accounts=Accounts(np.zeros(1, np.int32), np.array([1e6]), start, count),
        positions=Positions(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int64), np.zeros(1),
                            np.full(1, np.nan)),
        books=OrderBooks(1, 8, markets.tick_size, markets.lot_size),
        funds=InsuranceFunds.create([1_000.0], 1, [FundLimits()]), ledger=Ledger(np.zeros(1), np.zeros(1)),
        maker_fee=np.zeros(1), taker_fee=np.zeros(1), maker_filled=np.zeros(1, bool), last_trade=np.full(1, np.nan),
        volume_usd=np.zeros(1), keeper_ids=np.zeros(0, np.int64), now_ms=1_000, trades={},
    )  # fmt: skip
    world.books.replace_ladder(0, BID, 0, np.array([99.5, 99.0, 98.5]), np.array([5.0, 20.0, 50.0]))
    world.funds.take_over(0, 0, 100.0, 100.0)
    accounting = Accounting(world.markets, world.accounts, world.positions)
    fu.FundsPhase(world, BookExecution(world, accounting))(SimpleNamespace(ts_ms=1_000))  # type: ignore[arg-type]
    assert world.funds.inventory[0, 0] == 90.0
    assert world.funds.balance[0] == 1_000.0 - 7.5
    assert world.positions.size_lots[0] == 10
    assert world.books.rows(0) == [("bid", 99.0, 15.0, 0), ("bid", 98.5, 50.0, 0)]
    assert world.funds.min_equity[0] == 1_000.0 - 7.5
