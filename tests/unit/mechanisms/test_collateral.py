"""Collateral valuation: each method's price, the floor, revaluation into wallets, sales and conversion."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.config.venue import CollateralMethod, CollateralRule
from perpstress.mechanisms.collateral import CollateralHoldings, CollateralPair

FUNDAMENTAL = np.array([1.0, 2_000.0])  # USDE, ETH
MID = np.array([0.65, np.nan])  # the venue's own USDE book printed 0.65
LAST = np.array([np.nan, np.nan])


def holdings(rule: CollateralRule, underlying: int = -1, book: int = 0) -> CollateralHoldings:
    pair = CollateralPair(venue=0, asset="X", rule=rule, spot_market=book, asset_path=0, underlying_path=underlying)
    return CollateralHoldings([pair], np.array([3]), np.array([0]), np.array([100.0]))


@pytest.mark.parametrize(
    ("rule", "underlying", "price"),
    [
        (CollateralRule(method=CollateralMethod.INDEX), -1, 1.0),
        (CollateralRule(method=CollateralMethod.OWN_BOOK, spot_symbol="X/USDT"), -1, 0.65),
        (CollateralRule(method=CollateralMethod.CONVERSION_RATE, underlying="ETH", rate=1.08), 1, 2_160.0),
        (
            CollateralRule(
                method=CollateralMethod.MIX, spot_symbol="X/USDT", underlying="ETH", rate=1.08, book_weight=0.2
            ),
            1,
            0.2 * 0.65 + 0.8 * 2_160.0,
        ),
        (CollateralRule(method=CollateralMethod.OWN_BOOK, spot_symbol="X/USDT", price_floor=0.9), -1, 0.9),
    ],
)
def test_each_method_prices_as_documented(rule: CollateralRule, underlying: int, price: float) -> None:
    h = holdings(rule, underlying)
    h.prices(FUNDAMENTAL, MID, LAST)
    assert h.price[0] == pytest.approx(price)


def test_revaluation_moves_the_wallet_by_the_haircut_value_change() -> None:
    rule = CollateralRule(method=CollateralMethod.OWN_BOOK, spot_symbol="X/USDT", haircut=0.1)
    h = holdings(rule)
    wallet = np.zeros(5)
    h.prices(FUNDAMENTAL, np.array([1.0, np.nan]), LAST)
    h.revalue(wallet)
    assert wallet[3] == pytest.approx(90.0)
    h.prices(FUNDAMENTAL, MID, LAST)
    moved = h.revalue(wallet)
    assert list(moved) == [3]
    assert wallet[3] == pytest.approx(100 * 0.65 * 0.9)
    assert h.shortfall_at_reference(3) == pytest.approx(100 * (1.0 - 0.65) * 0.9)


def test_a_sale_swaps_value_for_cash_and_conversion_keeps_the_wallet() -> None:
    rule = CollateralRule(method=CollateralMethod.INDEX, haircut=0.1)
    h = holdings(rule, book=-1)
    wallet = np.zeros(5)
    h.prices(FUNDAMENTAL, MID, LAST)
    h.revalue(wallet)
    h.sold(0, 40.0, 40.0 * 0.95, wallet)
    assert wallet[3] == pytest.approx(90.0 - 36.0 + 38.0)
    assert h.quantity[0] == pytest.approx(60.0)
    before = wallet[3]
    usd = h.convert_off_book(0)
    assert usd == pytest.approx(54.0)
    assert wallet[3] == before
    assert h.value[0] == 0.0
    assert h.units_by_asset() == {"X": pytest.approx(60.0)}  # converted units are still accounted for


def several_pairs() -> CollateralHoldings:
    """USDe off its own book (market 0), wBETH and BNSOL mixed from their books (markets 1, 2) and the staking rate
    times ETH and SOL (paths 1 and 3), on one venue; one holder each (accounts 3, 5, 6)."""
    usde = CollateralRule(method=CollateralMethod.OWN_BOOK, spot_symbol="USDE/USDT", haircut=0.1)
    wbeth = CollateralRule(method=CollateralMethod.MIX, spot_symbol="WBETH/USDT", underlying="ETH", rate=1.08,
                           book_weight=0.2, haircut=0.05)  # fmt: skip
    bnsol = CollateralRule(method=CollateralMethod.MIX, spot_symbol="BNSOL/USDT", underlying="SOL", rate=1.072,
                           book_weight=0.3, haircut=0.1)  # fmt: skip
    pairs = [
        CollateralPair(venue=0, asset="USDE", rule=usde, spot_market=0, asset_path=0, underlying_path=-1),
        CollateralPair(venue=0, asset="WBETH", rule=wbeth, spot_market=1, asset_path=2, underlying_path=1),
        CollateralPair(venue=0, asset="BNSOL", rule=bnsol, spot_market=2, asset_path=4, underlying_path=3),
    ]
    return CollateralHoldings(pairs, np.array([3, 5, 6]), np.array([0, 1, 2]), np.array([1_000.0, 2.0, 10.0]))


PATHS = np.array([1.0, 4_000.0, 4_320.0, 200.0, 214.4])  # USDE, ETH, WBETH (= 1.08 ETH), SOL, BNSOL (= 1.072 SOL)


def test_several_book_priced_assets_each_price_off_their_own_book_and_underlying() -> None:
    h = several_pairs()
    h.prices(PATHS, np.array([1.0, 430.0, 34.9]), np.full(3, np.nan))
    assert h.price[0] == pytest.approx(1.0)
    assert h.price[1] == pytest.approx(0.2 * 430.0 + 0.8 * 1.08 * 4_000.0)  # the book at -90 % moves it 18 %
    assert h.price[2] == pytest.approx(0.3 * 34.9 + 0.7 * 1.072 * 200.0)
    np.testing.assert_allclose(h.reference, [1.0, 4_320.0, 214.4])
    np.testing.assert_allclose(h.book_price, [1.0, 430.0, 34.9])
    np.testing.assert_allclose(h.haircut_price(), h.price * np.array([0.9, 0.95, 0.9]))


def test_only_the_holders_of_a_pair_whose_price_moved_are_revalued() -> None:
    h = several_pairs()
    wallet = np.zeros(8)
    h.prices(PATHS, np.array([1.0, 4_320.0, 214.4]), np.full(3, np.nan))
    assert sorted(h.revalue(wallet)) == [3, 5, 6]
    np.testing.assert_allclose(wallet[[3, 5, 6]], [900.0, 2 * 4_320.0 * 0.95, 10 * 214.4 * 0.9])
    h.prices(PATHS, np.array([1.0, 2_000.0, np.nan]), np.array([np.nan, np.nan, np.nan]))  # wBETH's book falls;
    assert list(h.revalue(wallet)) == [5]  # BNSOL's is empty with no trade: its last book price stands
    assert wallet[5] == pytest.approx(2 * (0.2 * 2_000.0 + 0.8 * 4_320.0) * 0.95)
    assert h.book_price[2] == pytest.approx(214.4)
    assert h.shortfall_at_reference(5) == pytest.approx(2 * 0.2 * (4_320.0 - 2_000.0) * 0.95)
    assert h.shortfall_at_reference(6) == pytest.approx(0.0)
    h.prices(PATHS, np.array([1.0, np.nan, np.nan]), np.array([np.nan, 1_500.0, np.nan]))  # no bid: the last trade
    assert h.book_price[1] == 1_500.0
    assert h.min_price[1] == pytest.approx(0.2 * 1_500.0 + 0.8 * 4_320.0)
