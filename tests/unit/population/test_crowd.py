"""The simple crowd generator: exact side totals, leverage within the tiers, scale changes accounts not notional."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.calculator import load_venue
from perpstress.config.population import CrowdConfig, CrowdMarket
from perpstress.population.crowd import generate_crowd
from perpstress.rules.margin import max_leverage

VENUE = load_venue("binance")
TABLES = [VENUE.perpetuals["BTCUSDT"].tier_table(), VENUE.perpetuals["HIVEUSDT"].tier_table()]
IDS = {"binance:BTCUSDT": 0, "binance:HIVEUSDT": 1}
PRICE = np.array([100_000.0, 0.25])
LOT = np.array([0.001, 1.0])
CONFIG = CrowdConfig(
    markets={
        "binance:BTCUSDT": CrowdMarket(notional_usd=5e8, long_share=0.8, accounts=4000),
        "binance:HIVEUSDT": CrowdMarket(notional_usd=2e6, long_share=0.6, accounts=500),
    },
    leverage_median=25,
)


def crowd(seed: int = 1, scale: float = 1.0):
    return generate_crowd(CONFIG, IDS, PRICE, LOT, TABLES, np.random.default_rng(seed), scale)


@pytest.mark.parametrize("scale", [1.0, 0.05])
def test_side_totals_are_exact_to_a_lot(scale: float) -> None:
    c = crowd(scale=scale)
    for key, m in IDS.items():
        cm = CONFIG.markets[key]
        sel = c.market == m
        lots = c.size_lots[sel]
        for sign, share in ((1, cm.long_share), (-1, 1 - cm.long_share)):
            total = np.abs(lots[np.sign(lots) == sign]).sum() * LOT[m] * PRICE[m]
            assert total == pytest.approx(cm.notional_usd * share, abs=LOT[m] * PRICE[m])


def test_scale_changes_accounts_not_notional() -> None:
    full, small = crowd(scale=1.0), crowd(scale=0.1)
    assert small.market.size == pytest.approx(full.market.size / 10, rel=0.01)
    gross = lambda c: (np.abs(c.size_lots[c.market == 0]) * LOT[0] * PRICE[0]).sum()  # noqa: E731
    assert gross(small) == pytest.approx(gross(full), rel=1e-6)


def test_leverage_never_exceeds_the_tier() -> None:
    c = crowd()
    for m in (0, 1):
        sel = c.market == m
        notional = np.abs(c.size_lots[sel]) * LOT[m] * c.entry_price[sel]
        lev = notional / c.margin[sel]
        assert np.all(lev <= max_leverage(TABLES[m], notional) * (1 + 1e-9))
        assert np.all(lev >= 1 - 1e-9)


def test_same_seed_same_crowd() -> None:
    a, b = crowd(7), crowd(7)
    for field in ("size_lots", "entry_price", "margin", "stop_price", "topup_reserve"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(crowd(8).entry_price, a.entry_price)


def test_stops_sit_on_the_losing_side() -> None:
    c = crowd()
    has = ~np.isnan(c.stop_price)
    side = np.sign(c.size_lots[has])
    assert has.mean() == pytest.approx(CONFIG.stop_share, abs=0.03)
    assert np.all(side * (c.stop_price[has] - c.entry_price[has]) < 0)
