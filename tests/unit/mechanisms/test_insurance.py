"""Insurance funds: takeover limits, payments within caps, inventory accounting, drawdown triggers."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds


def test_binance_takeover_limit_is_a_fraction_of_the_fund() -> None:
    # Binance: net taken-over notional per market at most 100 % of the fund (exchange-rules.md section 5).
    funds = InsuranceFunds.create([1_000_000.0], 1, [FundLimits(max_takeover_notional_fraction=1.0)])
    assert funds.can_take_over(0, 0, 9.0, 100_000.0)  # $900k
    funds.take_over(0, 0, 9.0, 100_000.0)
    assert not funds.can_take_over(0, 0, 2.0, 100_000.0)  # would reach $1.1M
    assert funds.can_take_over(0, 0, -2.0, 100_000.0)  # reducing is always within the limit


def test_inventory_is_valued_at_what_it_cost() -> None:
    funds = InsuranceFunds.create([100.0], 1, [FundLimits()])
    funds.take_over(0, 0, 2.0, 90.0)
    funds.take_over(0, 0, 2.0, 110.0)  # 4 units that cost 400 in all: worth 380 at 95
    mark = np.array([95.0])
    assert funds.inventory[0, 0] == pytest.approx(4.0)
    assert funds.equity(0, mark) == pytest.approx(100.0 - 20.0)
    # Taking over moves no cash; adding keeps the first entry and books the difference as a cost adjustment.
    assert funds.balance[0] == pytest.approx(100.0)
    assert funds.entry_price[0, 0] == pytest.approx(90.0)
    assert funds.cost_adjustment[0, 0] == pytest.approx(-40.0)
    realised = funds.unwind(0, 0, -3.0, 95.0)  # at the average cost of 100: 3 x (95 - 100)
    assert realised == pytest.approx(-15.0)
    assert funds.balance[0] == pytest.approx(85.0)
    assert funds.equity(0, mark) == pytest.approx(80.0)  # selling at mark changes nothing in value
    assert funds.inventory[0, 0] == pytest.approx(1.0)
    funds.unwind(0, 0, -1.0, 100.0)  # selling above mark gains the difference
    assert funds.equity(0, mark) == pytest.approx(85.0)
    assert funds.inventory[0, 0] == 0.0


def test_drift_claim_cap_limits_payments_per_market() -> None:
    funds = InsuranceFunds.create([1_000_000.0], 2, [FundLimits(per_market_claim_cap_usd=100_000.0)])
    assert funds.pay(0, 0, 70_000.0) == pytest.approx(70_000.0)
    assert funds.pay(0, 0, 70_000.0) == pytest.approx(30_000.0)  # the cap of market 0 binds
    assert funds.pay(0, 1, 70_000.0) == pytest.approx(70_000.0)  # market 1 has its own
    assert funds.balance[0] == pytest.approx(830_000.0)


def test_payments_never_exceed_the_balance() -> None:
    funds = InsuranceFunds.create([50.0], 1, [FundLimits()])
    assert funds.pay(0, 0, 80.0) == pytest.approx(50.0)
    assert funds.balance[0] == 0.0
    assert not funds.can_take_over(0, 0, 1.0, 1.0)


def test_drawdown_trigger_uses_the_peak_within_the_window() -> None:
    # OKX: ADL when the fund falls 30 % below its 8-hour peak.
    hour = 3_600_000
    funds = InsuranceFunds.create([100.0], 1, [FundLimits(adl_drawdown_fraction=0.3, drawdown_window_ms=8 * hour)])
    mark = np.array([1.0])
    funds.observe(0, 0, mark)
    funds.pay(0, 0, 25.0)
    funds.observe(0, hour, mark)
    assert not funds.drawdown_triggered(0, mark)  # 25 % below the peak of 100
    funds.pay(0, 0, 6.0)
    funds.observe(0, 2 * hour, mark)
    assert funds.drawdown_triggered(0, mark)  # 31 % below
    funds.observe(0, 9 * hour, mark)  # the peak of 100 left the window; 69 is the new peak
    assert not funds.drawdown_triggered(0, mark)
    assert funds.min_equity[0] == pytest.approx(69.0)
