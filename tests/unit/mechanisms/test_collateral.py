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
