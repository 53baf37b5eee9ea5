"""ADL on a hand-made book: each venue's rule hits the accounts its definition says, at its price."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.calculator import load_venue
from perpstress.config.venue import ProRataAdl, RankedQueueAdl
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlEngine, round_to_lots
from perpstress.mechanisms.liquidation import AdlRequest
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

MARK = 90.0
# account 0: a bankrupt long of 10 lots (entry 100, wallet 5: bankruptcy at 99.5, far above the mark of 90).
# accounts 1-4: shorts. Profits at 90: 1 -> 20 (2 lots from 100), 2 -> 50 (10 lots from 95), 3 -> 30 (3 lots from 100),
# 4 -> -10 (10 lots from 89: a loser). Wallets set leverage: 1 high, 2 low, 3 medium.
LOTS = [10, -2, -10, -3, -10]
ENTRY = [100.0, 100.0, 95.0, 100.0, 89.0]
WALLET = [5.0, 5.0, 500.0, 50.0, 100.0]


def build(venue_name: str, adl=None):  # type: ignore[no-untyped-def]
    venue = load_venue(venue_name)
    if adl is not None:
        venue = venue.model_copy(update={"adl": adl})
    markets = Markets.from_tables([0], [1.0], [0.01], [venue.perpetuals[next(iter(venue.perpetuals))].tier_table()])
    markets.mark[:] = MARK
    acc = np.arange(5, dtype=np.int32)
    start, count = group_by_account(5, acc)
    accounts = Accounts(np.zeros(5, np.int32), np.array(WALLET), start, count)
    positions = Positions(acc, np.zeros(5, np.int32), np.array(LOTS, np.int64), np.array(ENTRY), np.full(5, np.nan))
    accounting = Accounting(markets, accounts, positions)
    return AdlEngine([venue], accounting, np.random.default_rng(0)), accounting


def request(accounting: Accounting) -> AdlRequest:
    return AdlRequest(0, 0, 0, 0, 10, accounting.bankruptcy_price(0, -1, 0))


def value(accounting: Accounting) -> float:
    pos = accounting.positions
    return float(accounting.accounts.wallet.sum() + (pos.size_lots * (MARK - pos.entry_price)).sum())


def run(venue_name: str, adl=None, previous: float = MARK, fund_empty: bool = False):  # type: ignore[no-untyped-def]
    engine, accounting = build(venue_name, adl)
    before = value(accounting)
    req = request(accounting)
    left = engine.execute(0, req, np.array([previous]), np.array([MARK]), fund_empty)
    return engine, accounting, req, left, before


def test_binance_queue_by_leverage_pnl_at_the_bankruptcy_price() -> None:
    engine, acc, req, left, before = run("binance")
    assert req.bankruptcy_price == pytest.approx(99.5)
    assert left == 0
    hit = dict(zip(engine.record.account, engine.record.lots, strict=True))
    # Leverage-PnL = PnL/wallet x MM/equity: account 1 (20/5 on a thin wallet) ranks first, then 3, then 2.
    assert list(hit) == [1, 3, 2]
    assert hit == {1: 2, 3: 3, 2: 5}
    assert all(p == pytest.approx(99.5) for p in engine.record.price)
    assert acc.accounts.wallet[0] == pytest.approx(0.0, abs=1e-9)  # the bankrupt account ends at exactly zero
    assert value(acc) == pytest.approx(before)  # ADL at bankruptcy moves money, creates none
    assert acc.positions.size_lots[4] == -10  # the losing short is never touched
    assert acc.positions.size_lots.sum() == sum(LOTS)  # longs and shorts shrink by the same lots
    # Each winner lost (bankruptcy - mark) per unit against a close at mark.
    np.testing.assert_allclose(engine.record.loss_vs_mark_usd, np.array([2, 3, 5]) * (99.5 - MARK))
    # Each winner's PnL on the closed lots, 99.5 against its entry: shorts from 100 gain 0.5 a unit, the short from
    # 95 (in profit at the mark of 90) realises a loss of 4.5 a unit at the bankruptcy price.
    np.testing.assert_allclose(engine.record.winner_pnl_usd, [2 * 0.5, 3 * 0.5, 5 * -4.5])


def test_hyperliquid_closes_at_the_previous_mark() -> None:
    engine, acc, _, _, _ = run("hyperliquid", previous=91.0)
    assert set(engine.record.price) == {91.0}
    assert acc.accounts.wallet[0] < 0  # closing at a mark below bankruptcy leaves a gap for the vault


def test_okx_uses_mark_until_the_fund_is_empty() -> None:
    engine, _, _, _, _ = run("okx")
    assert set(engine.record.price) == {MARK}
    engine, _, req, _, _ = run("okx", fund_empty=True)
    assert engine.record.price == pytest.approx([req.bankruptcy_price] * len(engine.record.price))


def test_wealth_pro_rata_spreads_by_profit() -> None:
    engine, acc, _, left, _ = run("binance", ProRataAdl(rule="wealth_pro_rata", price="bankruptcy"))
    hit = dict(zip(engine.record.account, engine.record.lots, strict=True))
    # Profits 20 : 50 : 30 of 10 lots -> 2, 5, 3 (account 1 holds exactly 2).
    assert hit == {1: 2, 2: 5, 3: 3}
    assert left == 0
    assert acc.positions.size_lots.sum() == sum(LOTS)


def test_capped_pro_rata_leaves_what_the_caps_cannot_take() -> None:
    engine, _, _, left, _ = run("binance", ProRataAdl(rule="capped_pro_rata", max_haircut=0.5, price="bankruptcy"))
    assert all(n <= 0.5 * abs(LOTS[a]) for a, n in zip(engine.record.account, engine.record.lots, strict=True))
    assert left == 10 - (1 + 5 + 1)  # caps 1, 5 and 1 (half of 2, 10 and 3, in whole lots)


def test_dydx_scan_can_hit_a_losing_position() -> None:
    engine, _, _, left, _ = run("dydx")
    assert left == 0
    assert sum(engine.record.lots) == 10
    # The scan takes opposite positions in id order from a random start, winners or not: with this seed the
    # sequence starts somewhere in 1..4 and wraps.
    order = engine.record.account
    assert order == sorted(order, key=lambda a: (a - order[0]) % 4)


def test_queue_order_is_deterministic_for_a_seed() -> None:
    a = run("dydx")[0].record.account
    b = run("dydx")[0].record.account
    assert a == b


def test_round_to_lots_keeps_the_total_and_the_caps() -> None:
    lots = round_to_lots(np.array([2.6, 2.6, 4.8]), np.array([2, 5, 10]), 10)
    assert lots.sum() == 10
    assert np.all(lots <= [2, 5, 10])
    np.testing.assert_array_equal(lots, [2, 3, 5])  # floors 2, 2, 4; the 0.8 and 0.6 remainders get one each


def test_ranked_queue_config_type() -> None:
    assert isinstance(load_venue("binance").adl, RankedQueueAdl)


def test_a_round_walks_one_queue_across_its_requests() -> None:
    # Two requests of 3 and 4 lots against Binance's queue (1, then 3, then 2): the first takes account 1's 2 lots
    # and 1 of account 3's; the second continues with account 3's other 2, then 2 of account 2's.
    engine, acc = build("binance")
    bp = acc.bankruptcy_price(0, -1, 0)
    reqs = [AdlRequest(0, 0, 0, 0, 3, bp), AdlRequest(0, 0, 0, 0, 4, bp)]
    left = engine.execute_batch(0, reqs, np.array([MARK]), np.array([MARK]), False)
    assert left == 0
    assert list(zip(engine.record.account, engine.record.lots, strict=True)) == [(1, 2), (3, 1), (3, 2), (2, 2)]
    assert acc.positions.size_lots.sum() == sum(LOTS)
