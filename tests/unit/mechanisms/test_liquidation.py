"""Liquidation procedures on small hand-made books: who ends with what, and money is conserved."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.calculator import load_venue
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import Fill, LiquidationEngine
from perpstress.state.ledger import Ledger
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account


class LadderBook:
    """One market's resting bids and asks as (price, lots); fills walk the ladder; one maker takes every fill."""

    def __init__(self, bids: list[tuple[float, int]], asks: list[tuple[float, int]]) -> None:
        self.bids = sorted(bids, reverse=True)
        self.asks = sorted(asks)
        self.maker_lots = 0
        self.maker_cash = 0.0  # quote paid (-) or received (+) by the maker, at lot size 1 base unit per lot

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill:
        levels = self.bids if lots < 0 else self.asks
        ok = (lambda p: p >= limit_price) if lots < 0 else (lambda p: p <= limit_price)
        want = abs(lots)
        available = sum(q for p, q in levels if ok(p))
        if fill_or_kill and available < want:
            return Fill(0, float("nan"))
        filled, cost = 0, 0.0
        for i, (p, q) in enumerate(levels):
            if filled == want or not ok(p):
                break
            take = min(q, want - filled)
            filled += take
            cost += take * p
            levels[i] = (p, q - take)
        levels[:] = [(p, q) for p, q in levels if q > 0]
        signed = filled if lots > 0 else -filled
        self.maker_lots -= signed
        self.maker_cash += cost if lots > 0 else -cost
        return Fill(signed, cost / filled if filled else float("nan"))


def world(venue_name: str, symbol: str, lots: int, entry: float, collateral: float, mark: float, fund: float,
          book: LadderBook, isolated: bool = False):  # fmt: skip
    venue = load_venue(venue_name)
    table = venue.perpetuals[symbol].tier_table()
    markets = Markets.from_tables([0], [1.0], [0.01], [table])
    markets.mark[:] = mark
    acc = np.array([0], dtype=np.int32)
    start, count = group_by_account(1, acc)
    accounts = Accounts(np.array([0], np.int32), np.array([0.0 if isolated else collateral]), start, count)
    positions = Positions(acc, np.array([0], np.int32), np.array([lots], np.int64), np.array([entry]),
                          np.array([collateral if isolated else np.nan]))  # fmt: skip
    limits = FundLimits(max_takeover_notional_fraction=venue.insurance_fund.max_takeover_notional_fraction)
    funds = InsuranceFunds.create([fund], 1, [limits])
    ledger = Ledger(np.zeros(1), np.zeros(1))
    engine = LiquidationEngine([venue], markets, accounts, positions, funds, book, ledger)
    return engine


def total_value(engine: LiquidationEngine, book: LadderBook) -> float:
    """Everyone's cash plus positions at mark, less recorded bad debt (paid out to winners, funded by no one)."""
    mark = float(engine.markets.mark[0])
    pos = engine.positions
    iso = np.nan_to_num(pos.isolated_margin)
    accounts = engine.accounts.wallet.sum() + iso.sum() + (pos.size_lots * (mark - pos.entry_price)).sum()
    maker = book.maker_cash + book.maker_lots * mark
    return float(accounts + engine.funds.equity(0, engine.markets.mark) + maker - engine.ledger.bad_debt.sum())


def test_binance_ioc_fills_and_the_fee_goes_to_the_fund() -> None:
    # Long 10 BTC at 100,000 with 60,000: below maintenance at 94,500 (MM ~ 37.8k vs balance 5k... see numbers).
    book = LadderBook(bids=[(94_400.0, 5), (94_300.0, 5)], asks=[])
    engine = world("binance", "BTCUSDT", 10, 100_000.0, 60_000.0, 94_500.0, 1e6, book)
    before = total_value(engine, book)
    assert engine.liquidate(0, 0, [(0, -1)]) == []
    assert engine.positions.size_lots[0] == 0
    realised = 5 * (94_400 - 100_000) + 5 * (94_300 - 100_000)
    # The clearance fee (1.25 % of 943,500) is capped by what the account has left, so it creates no debt.
    fee = min(0.0125 * (5 * 94_400 + 5 * 94_300), 60_000 + realised)
    assert fee == pytest.approx(3_500.0)
    assert engine.accounts.wallet[0] == pytest.approx(60_000 + realised - fee)
    assert engine.funds.balance[0] == pytest.approx(1e6 + fee)
    assert total_value(engine, book) == pytest.approx(before)


def test_binance_thin_book_leaves_the_rest_to_the_fund_at_bankruptcy() -> None:
    book = LadderBook(bids=[(94_400.0, 4), (80_000.0, 100)], asks=[])  # 80,000 is beyond the IOC's 5 % limit
    engine = world("binance", "BTCUSDT", 10, 100_000.0, 60_000.0, 94_500.0, 1e7, book)
    before = total_value(engine, book)
    engine.liquidate(0, 0, [(0, -1)])
    wallet_after_ioc = 60_000 + 4 * (94_400 - 100_000)
    equity = wallet_after_ioc + 6 * (94_500 - 100_000)
    fee = min(0.0125 * 4 * 94_400, equity)  # capped by the equity left
    bp = 100_000 - (wallet_after_ioc - fee) / 6  # the remaining 6 BTC close at zero equity
    assert engine.funds.inventory[0, 0] == pytest.approx(6.0)
    assert engine.funds.entry_price[0, 0] == pytest.approx(bp)
    assert engine.accounts.wallet[0] == pytest.approx(0.0, abs=1e-6)
    assert total_value(engine, book) == pytest.approx(before)
    assert engine.record.kind == ["book", "takeover"]


def test_binance_takeover_limit_sends_the_rest_to_adl() -> None:
    book = LadderBook(bids=[], asks=[])
    engine = world("binance", "BTCUSDT", 10, 100_000.0, 60_000.0, 94_500.0, 500_000.0, book)  # fund < notional
    requests = engine.liquidate(0, 0, [(0, -1)])
    assert len(requests) == 1
    assert requests[0].lots == 10
    assert requests[0].bankruptcy_price == pytest.approx(100_000 - 60_000 / 10)
    assert engine.positions.size_lots[0] == 10  # still open until ADL closes it


def test_gap_beyond_bankruptcy_is_paid_by_the_fund_then_bad_debt() -> None:
    # Isolated long 10 @ 100,000 with 20,000 margin (bankruptcy 98,000); the book only bids 96,000 (within 5 %).
    for fund, expect_bad in ((1e6, 0.0), (5_000.0, 15_000.0)):
        book = LadderBook(bids=[(96_000.0, 10)], asks=[])
        engine = world("binance", "BTCUSDT", 10, 100_000.0, 20_000.0, 97_000.0, fund, book, isolated=True)
        before = total_value(engine, book)
        engine.liquidate(0, 0, [(0, 0)])
        assert engine.positions.isolated_margin[0] == pytest.approx(0.0, abs=1e-6)
        assert engine.ledger.bad_debt[0] == pytest.approx(expect_bad)
        assert engine.funds.balance[0] == pytest.approx(max(fund - 20_000.0, 0.0))
        assert total_value(engine, book) == pytest.approx(before)


def test_hyperliquid_backstop_takes_positions_and_equity_below_two_thirds() -> None:
    # BTC MMR 1.25 %: long 10 @ 100,000 with 60,000; at 94,500 equity 5,000 < 2/3 x 11,812.5.
    book = LadderBook(bids=[(94_400.0, 100)], asks=[])
    engine = world("hyperliquid", "BTC", 10, 100_000.0, 60_000.0, 94_500.0, 3e8, book)
    before = total_value(engine, book)
    engine.liquidate(0, 0, [(0, -1)])
    assert engine.funds.inventory[0, 0] == pytest.approx(10.0)
    assert engine.funds.entry_price[0, 0] == pytest.approx(94_500.0)
    assert engine.funds.balance[0] == pytest.approx(3e8 + 5_000.0)
    assert engine.accounts.wallet[0] == pytest.approx(0.0)
    assert book.maker_lots == 0  # nothing went through the book
    assert total_value(engine, book) == pytest.approx(before)


def test_hyperliquid_market_order_is_a_fifth_above_100k_then_cools_down() -> None:
    # At 99,000 the long's equity is 50,000 against MM 12,375: above 2/3 of it -> market orders, no fee.
    book = LadderBook(bids=[(98_990.0, 100)], asks=[])
    engine = world("hyperliquid", "BTC", 10, 100_000.0, 60_000.0, 99_000.0, 3e8, book)
    engine.liquidate(0, 0, [(0, -1)])
    assert engine.positions.size_lots[0] == 8  # 20 % of a $990k position
    engine.liquidate(10_000, 0, [(0, -1)])  # within the 30-s cooldown: the whole rest
    assert engine.positions.size_lots[0] == 0
    assert engine.funds.balance[0] == pytest.approx(3e8)  # no clearance fee on Hyperliquid


def test_okx_steps_down_two_tiers_instead_of_closing() -> None:
    # OKX BTC stand-in tiers: caps 24M, 26.4M, 40M, 60M ... A $50M position (tier index 3) is cut to 26.4M.
    book = LadderBook(bids=[(100_000.0, 1_000)], asks=[])
    engine = world("okx", "BTC-USDT-SWAP", 500, 100_000.0, 1e6, 100_000.0, 4e8, book)
    engine.liquidate(0, 0, [(0, -1)])
    assert engine.positions.size_lots[0] == 264
    assert engine.funds.inventory[0, 0] == 0.0


def test_okx_lowest_tiers_are_taken_over_whole() -> None:
    book = LadderBook(bids=[(100_000.0, 1_000)], asks=[])
    engine = world("okx", "BTC-USDT-SWAP", 10, 100_000.0, 5_000.0, 100_000.0, 4e8, book)
    engine.liquidate(0, 0, [(0, -1)])
    assert engine.positions.size_lots[0] == 0
    assert engine.funds.inventory[0, 0] == pytest.approx(10.0)
    assert book.maker_lots == 0


def test_dydx_liquidates_a_tenth_at_the_fillable_price_and_charges_the_fee() -> None:
    # dYdX BTC-USD: IMF 5 %, MMF 3 %. Long 10 @ 100,000 with 62,000; oracle 95,000: TNC 12,000, TMMR 28,500,
    # ABR = 1 - 12,000/28,500 = 0.5789, fillable = 95,000 * (1 - 0.5789 * 1.5 * 0.03) = 92,525.
    # 10 % of $950k is $95k (under the $100k block cap): 1 BTC.
    book = LadderBook(bids=[(94_000.0, 100)], asks=[])
    engine = world("dydx", "BTC-USD", 10, 100_000.0, 62_000.0, 95_000.0, 1e7, book)
    before = total_value(engine, book)
    assert engine.liquidate(0, 0, [(0, -1)]) == []
    assert engine.positions.size_lots[0] == 9
    bp = 100_000 - 62_000 / 10  # 93,800
    fee = min((94_000 - bp) * 1, 0.015 * 94_000)  # better than bankruptcy by 200: the fee is that 200
    assert engine.funds.balance[0] == pytest.approx(1e7 + fee)
    assert total_value(engine, book) == pytest.approx(before)


def test_dydx_fund_pays_a_fill_below_bankruptcy_and_no_fill_with_negative_tnc_deleverages() -> None:
    book = LadderBook(bids=[(92_600.0, 100)], asks=[])  # inside the fillable price, below bankruptcy (93,800)
    engine = world("dydx", "BTC-USD", 10, 100_000.0, 62_000.0, 95_000.0, 1e7, book)
    engine.liquidate(0, 0, [(0, -1)])
    assert engine.funds.balance[0] == pytest.approx(1e7 - (93_800 - 92_600))
    empty = world("dydx", "BTC-USD", 10, 100_000.0, 62_000.0, 93_000.0, 1e7, LadderBook([], []))  # TNC < 0
    requests = empty.liquidate(0, 0, [(0, -1)])
    assert [(r.lots, r.bankruptcy_price) for r in requests] == [(10, pytest.approx(93_800.0))]


def drift_world(user_collateral: float, oracle: float, fund: float, other_lots: int = 0):  # type: ignore[no-untyped-def]
    """Account 0: a long of 10 BTC-PERP at 100,000; account 1: the keeper; account 2: a short of ``other_lots``
    (someone who shares a socialised loss)."""
    venue = load_venue("drift")
    markets = Markets.from_tables([0], [1.0], [0.01], [venue.perpetuals["BTC-PERP"].tier_table_for_size(10)])
    markets.mark[:] = oracle
    acc = np.arange(3, dtype=np.int32)
    start, count = group_by_account(3, acc)
    accounts = Accounts(np.zeros(3, np.int32), np.array([user_collateral, 0.0, 1e6]), start, count)
    positions = Positions(acc, np.zeros(3, np.int32), np.array([10, 0, -other_lots], np.int64),
                          np.array([100_000.0, oracle, oracle]), np.full(3, np.nan))  # fmt: skip
    limits = FundLimits(per_market_claim_cap_usd=venue.insurance_fund.per_market_claim_cap_usd)
    funds = InsuranceFunds.create([fund], 1, [limits])
    engine = LiquidationEngine([venue], markets, accounts, positions, funds, LadderBook([], []),
                               Ledger(np.zeros(1), np.zeros(1)), keepers={0: 1})  # fmt: skip
    return engine


def drift_value(engine: LiquidationEngine) -> float:
    pos, mark = engine.positions, float(engine.markets.mark[0])
    return float(engine.accounts.wallet.sum() + (pos.size_lots * (mark - pos.entry_price)).sum()
                 + engine.funds.equity(0, engine.markets.mark) - engine.ledger.bad_debt.sum())  # fmt: skip


def test_drift_keeper_takes_a_ramping_share_at_oracle_less_its_fee() -> None:
    engine = drift_world(user_collateral=9_000.0, oracle=95_000.0, fund=1e6)
    before = drift_value(engine)
    engine.liquidate(0, 0, [(0, -1)])
    # initial_fraction 10 %: 1 of 10 BTC at 95,000 x (1 - 1 %) = 94,050; the keeper now holds it.
    assert engine.positions.size_lots[0] == 9
    assert engine.positions.size_lots[1] == 1
    assert engine.positions.entry_price[1] == pytest.approx(94_050.0)
    engine.liquidate(300_000, 0, [(0, -1)])  # five minutes later the ramp allows 10 % + 50 %
    assert engine.positions.size_lots[0] == 9 - int(9 * 0.6)
    assert drift_value(engine) == pytest.approx(before)
    assert engine.record.kind == ["keeper", "keeper"]


def test_drift_socialises_what_the_fund_cannot_pay() -> None:
    # A long bankrupt at the keeper's price (93,060 against 96,000 of bankruptcy); the fund holds 5,000 and pays it;
    # the rest is charged to the open positions.
    engine = drift_world(user_collateral=40_000.0, oracle=95_000.0, fund=5_000.0, other_lots=30)
    engine.accounting.positions.size_lots[1] = 0
    engine.positions.entry_price[0] = 100_000.0
    engine.markets.mark[:] = 94_000.0
    before = drift_value(engine)
    engine.liquidation_started[0] = 0  # started an hour ago: the ramp allows the whole position
    engine.liquidate(3_600_000, 0, [(0, -1)])
    assert engine.positions.size_lots[0] == 0
    assert engine.funds.balance[0] == pytest.approx(0.0)
    assert engine.ledger.bad_debt[0] == 0.0
    loss = engine.socialised_usd[0]
    assert loss == pytest.approx(10 * (100_000 - 93_060) - 40_000 - 5_000)
    # Every open position pays by size: the keeper now holds 10, the short 30 -> 1/4 and 3/4 of the loss.
    assert engine.accounts.wallet[1] == pytest.approx(-loss * 10 / 40)
    assert engine.accounts.wallet[2] == pytest.approx(1e6 - loss * 30 / 40)
    assert drift_value(engine) == pytest.approx(before)


def test_okx_fund_past_its_drawdown_threshold_sends_takeovers_to_adl() -> None:
    book = LadderBook(bids=[], asks=[])
    engine = world("okx", "BTC-USDT-SWAP", 10, 100_000.0, 5_000.0, 100_000.0, 4e8, book)
    engine.funds.limits[0].adl_drawdown_fraction = 0.3
    engine.funds.limits[0].drawdown_window_ms = 8 * 3_600_000
    engine.funds.observe(0, 0, engine.markets.mark)
    engine.funds.pay(0, 0, 0.31 * 4e8)  # 31 % below its 8-hour peak
    requests = engine.liquidate(1, 0, [(0, -1)])
    assert [r.lots for r in requests] == [10]
    assert engine.funds.inventory[0, 0] == 0.0
