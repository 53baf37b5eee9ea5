"""Worked examples from the venues' own documentation, each with its page.

Where a venue states numbers, the test reproduces them; where it states only a formula, the test checks our
implementation against that formula written out independently.
"""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.calculator import load_venue
from perpstress.rules.adl import binance_leverage_pnl, pnl_leverage_score, queue_order
from perpstress.rules.liquidation import bankruptcy_price, liquidation_price
from perpstress.rules.margin import TierTable, maintenance_margin

BINANCE_BTC = load_venue("binance").perpetuals["BTCUSDT"].tier_table()


def single_tier(mmr: float, max_leverage: float) -> TierTable:
    return TierTable.from_rates([0.0], [1e12], [mmr], [max_leverage])


def test_issue_example_binance_btcusdt_isolated_long() -> None:
    # perpstress issue 2: size 1.5, entry 100,000, collateral 12,000 -> liq ~92,369.48, bankruptcy 92,000.
    # Binance one-way formula (exchange-rules.md 4.2): LP = (WB + cum - Q*EP) / (Q*MMR - Q), tier 1 MMR 0.4 %.
    assert float(liquidation_price(BINANCE_BTC, 1, 1.5, 100_000, 12_000)) == pytest.approx(92_369.48, abs=0.01)
    assert float(bankruptcy_price(1, 1.5, 100_000, 12_000)) == pytest.approx(92_000.0)


def test_binance_btcusdt_maintenance_amounts_follow_continuity() -> None:
    # exchange-rules.md 3.2: cum 0 / 300 / 1,500 / 12,000 / 132,000 / 482,000 / 2,982,000.
    np.testing.assert_allclose(BINANCE_BTC.maintenance_amount, [0, 300, 1_500, 12_000, 132_000, 482_000, 2_982_000])


def test_old_binance_btcusdt_bracket_fixture_is_reproduced() -> None:
    # A captured 125x leverageBracket payload (boolean404/heikin-ashi-trading-bot
    # json/fapiPrivate_get_leverage_bracket.py): floors and MMRs give exactly its cum values.
    floors = [0, 50e3, 250e3, 3e6, 20e6, 40e6, 100e6, 120e6, 200e6]
    mmr = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25]
    table = TierTable.from_rates(floors, [*floors[1:], 1e12], mmr, [125, 100, 50, 20, 10, 5, 4, 3, 2])
    expected = [0, 50, 1_300, 46_300, 546_300, 2_546_300, 5_046_300, 8_046_300, 28_046_300]
    np.testing.assert_allclose(table.maintenance_amount, expected)


def test_binance_coin_m_maintenance_amount_example() -> None:
    # https://www.binance.com/es/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46 : level 5 starts at 50 BTC with MMR 5 %
    # after 2.5 %, the previous maintenance amount is 0.56 BTC -> 50 * (5 % - 2.5 %) + 0.56 = 1.81 BTC.
    # Lower levels chosen so that the amount before level 5 is the page's 0.56 (28 * (2.5 % - 0.5 %)).
    table = TierTable.from_rates([0, 28, 50], [28, 50, 100], [0.005, 0.025, 0.05], [125, 25, 10])
    assert table.maintenance_amount[1] == pytest.approx(0.56)
    assert table.maintenance_amount[2] == pytest.approx(1.81)


def test_bybit_usdt_isolated_liquidation_price_example() -> None:
    # https://testnet.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract : long 1 BTC at 20,000,
    # 50x, MMR 0.5 %: IM 400, MM 100, LP = EP - (IM - MM)/Q = 19,700.
    q, ep, im = 1.0, 20_000.0, 20_000.0 / 50
    mm_at_entry = q * ep * 0.005
    assert ep - (im - mm_at_entry) / q == pytest.approx(19_700.0)
    # Bybit evaluates MM at the entry value; perpstress liquidates when the balance at mark falls below MM *at mark*,
    # so its liquidation price is where those meet: (IM - Q*EP) / (Q*MMR - Q) = 19,698.49 (1.5 below Bybit's).
    ours = float(liquidation_price(single_tier(0.005, 100), 1, q, ep, im))
    assert ours == pytest.approx((im - q * ep) / (q * 0.005 - q))
    assert ours == pytest.approx(19_698.49, abs=0.01)
    balance = im + q * (ours - ep)
    assert balance == pytest.approx(0.005 * q * ours)


def test_bybit_bankruptcy_price_example() -> None:
    # Bybit "Bankruptcy Price (USDT Contract)": long at 10,000, 50x -> BP = EP * (1 - 1/50) = 9,800; short 10,200.
    assert float(bankruptcy_price(1, 1.0, 10_000, 10_000 / 50)) == pytest.approx(9_800.0)
    assert float(bankruptcy_price(-1, 1.0, 10_000, 10_000 / 50)) == pytest.approx(10_200.0)


@pytest.mark.parametrize("side", [1, -1])
def test_hyperliquid_liquidation_price_formula(side: int) -> None:
    # dzmbs/hyperliquid-docs docs/trading/liquidations.md: liq = price - side * margin_available / Q / (1 - l*side),
    # l = MMR at the liquidation price, margin_available = isolated margin - MM at the current price.
    table = load_venue("hyperliquid").perpetuals["BTC"].tier_table()  # 40x: MMR 1.25 %
    q, price, margin = 1.0, 100_000.0, 10_000.0
    l = 0.0125  # noqa: E741
    available = margin - l * q * price
    documented = price - side * available / q / (1 - l * side)
    assert float(liquidation_price(table, side, q, price, margin)) == pytest.approx(documented, rel=1e-12)
    assert documented == pytest.approx(91_139.24 if side > 0 else 108_641.98, abs=0.01)


def test_bitmex_adl_ranking_and_effective_leverage() -> None:
    # https://www.bitmex.com/app/autoDeleveraging : PnL% x EffLev, EffLev = |mark value| / (mark - bankrupt value).
    # Linear illustration: entry 10,000, mark 11,000, bankrupt 9,000 -> EffLev 5.5, PnL 10 %, rank 0.55.
    assert float(pnl_leverage_score(1, 10_000, 11_000, 9_000)) == pytest.approx(0.55)
    # Losing positions divide by leverage: -10 % at EffLev 5 ranks -0.02, below any winner.
    assert float(pnl_leverage_score(1, 10_000, 9_000, 7_200)) == pytest.approx(-0.1 / 5)


def test_bitmex_adl_example_deleverages_the_top_ranked() -> None:
    # https://www.bitmex.com/app/autoDeleveragingExamples : six longs (10, 10, 20, 30, 20, 10 contracts) with ranks
    # 3, 6, 1, 4, 5, 2; a short of 20 is liquidated: account 2 (rank 6) closes all 10, account 5 (rank 5) 10 of 20.
    sizes = np.array([10.0, 10, 20, 30, 20, 10])
    scores = np.array([3.0, 6, 1, 4, 5, 2])
    order = queue_order(scores, np.ones(6, bool))
    remaining, closed = 20.0, np.zeros(6)
    for i in order:
        closed[i] = min(sizes[i], remaining)
        remaining -= closed[i]
    np.testing.assert_allclose(closed, [0, 10, 0, 0, 10, 0])


def test_binance_leverage_pnl_formula() -> None:
    # https://dev.binance.vision/t/how-to-caculating-leverage-pnl-quantile/17801 :
    # PnL% = max(0, UPnL)/max(1, WB); margin ratio = MM/(WB + UPnL); score = product, 0 when equity <= 0.
    assert float(binance_leverage_pnl(500.0, 1_000.0, 30.0)) == pytest.approx(0.5 * 30 / 1_500)
    assert float(binance_leverage_pnl(-200.0, 1_000.0, 30.0)) == 0.0
    assert float(binance_leverage_pnl(100.0, 0.5, 30.0)) == pytest.approx(100.0 * 30 / 100.5)  # max(1, WB)
    assert float(binance_leverage_pnl(-2_000.0, 1_000.0, 30.0)) == 0.0


def test_maintenance_margin_is_continuous_at_every_binance_boundary() -> None:
    caps = BINANCE_BTC.cap[:-1]
    below = maintenance_margin(BINANCE_BTC, caps)
    above = maintenance_margin(BINANCE_BTC, caps * (1 + 1e-12))
    np.testing.assert_allclose(below, above, rtol=1e-9)
