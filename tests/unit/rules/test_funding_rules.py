"""Funding formulas per venue (shared/reference/exchange-rules.md section 2), with the documented numbers."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.rules import funding


def test_premium_is_zero_while_the_index_sits_inside_the_impact_spread() -> None:
    assert float(funding.premium_index(99.9, 100.1, 100.0)) == 0.0
    assert float(funding.premium_index(100.2, 100.4, 100.0)) == pytest.approx(0.002)  # bid above index
    assert float(funding.premium_index(99.6, 99.8, 100.0)) == pytest.approx(-0.002)  # ask below index


@pytest.mark.parametrize("premium", [-0.0004, 0.0, 0.0001, 0.0006])
def test_interest_clamp_pins_small_premiums_to_the_interest_rate(premium: float) -> None:
    # F = P + clamp(0.01 % - P, -0.05 %, +0.05 %): any P in [-0.04 %, 0.06 %] gives exactly 0.01 %.
    assert float(funding.premium_interest_clamp(premium)) == pytest.approx(0.0001)


def test_interest_clamp_passes_large_premiums_through() -> None:
    assert float(funding.premium_interest_clamp(0.003)) == pytest.approx(0.003 - 0.0005)
    assert float(funding.premium_interest_clamp(-0.003)) == pytest.approx(-0.003 + 0.0005)


def test_bybit_linear_weights_sum_to_115440_over_eight_hours() -> None:
    # Bybit: 480 minute samples weighted 1..480; sum of weights 115,440.
    samples = np.zeros(480)
    samples[-1] = 1.0
    assert float(funding.linear_weighted_average(samples)) == pytest.approx(480 / 115_440)


def test_binance_rate_is_scaled_to_the_interval_and_capped_by_mmr() -> None:
    samples = np.full(5760, 0.001)  # 0.1 % premium all interval
    eight = float(funding.binance_funding_rate(samples, 8.0, 0.004, 0.75))
    assert eight == pytest.approx(0.001 - 0.0005)
    four = float(funding.binance_funding_rate(samples, 4.0, 0.004, 0.75))
    assert four == pytest.approx(eight / 2)
    capped = float(funding.binance_funding_rate(np.full(10, 0.05), 8.0, 0.004, 0.75))
    assert capped == pytest.approx(0.75 * 0.004)


def test_hyperliquid_pays_an_eighth_hourly_and_caps_at_four_percent() -> None:
    assert float(funding.hyperliquid_funding_rate(np.zeros(720))) == pytest.approx(0.0001 / 8)
    assert float(funding.hyperliquid_funding_rate(np.full(720, 1.0))) == pytest.approx(0.04)


def test_okx_clamps_the_average_premium_to_its_cap() -> None:
    assert float(funding.okx_funding_rate(np.full(60, 0.001), cap=0.00375)) == pytest.approx(0.001)
    assert float(funding.okx_funding_rate(np.full(60, -0.01), cap=0.00375)) == pytest.approx(-0.00375)


def test_dydx_votes_samples_and_clamp() -> None:
    # Vote only when the oracle is outside the impact spread; clamped at 60 x (IMF - MMF).
    assert float(funding.dydx_premium_vote(99.0, 101.0, 100.0, 0.05, 0.03)) == 0.0
    assert float(funding.dydx_premium_vote(102.0, 103.0, 100.0, 0.05, 0.03)) == pytest.approx(0.02)
    assert float(funding.dydx_premium_vote(200.0, 201.0, 100.0, 0.02, 0.012)) == pytest.approx(60 * 0.008)
    # A minute with 3 votes of 1 % is padded with 12 zeros: median 0.
    assert funding.dydx_funding_sample([0.01, 0.01, 0.01]) == 0.0
    assert funding.dydx_funding_sample([0.01] * 8) == pytest.approx(0.01)
    # Clamp example: large-cap IMF 2 %, MMF 1.2 % -> |R_8h| <= 6 x 0.8 % = 4.8 %, paid hourly at 1/8.
    assert funding.dydx_funding_rate([1.0] * 60, 0.02, 0.012) == pytest.approx(0.048 / 8)


def test_drift_spread_offset_and_tier_clamps() -> None:
    # spread = markTWAP - oracleTWAP + oracleTWAP/5000, per hour / 24, as a fraction of the oracle TWAP.
    assert float(funding.drift_funding_rate(100.0, 100.0)) == pytest.approx(1 / 5000 / 24)
    assert float(funding.drift_funding_rate(200.0, 100.0, "A")) == pytest.approx(1 / 33 / 24)
    assert float(funding.drift_funding_rate(200.0, 100.0, "C")) == pytest.approx(1 / 20 / 24)
    assert float(funding.drift_funding_rate(0.0, 100.0, "speculative")) == pytest.approx(-1 / 10 / 24)


def test_payment_sign_longs_pay_when_the_rate_is_positive() -> None:
    assert float(funding.funding_payment(1, 2.0, 100.0, 0.001)) == pytest.approx(0.2)
    assert float(funding.funding_payment(-1, 2.0, 100.0, 0.001)) == pytest.approx(-0.2)


def test_running_linear_weighted_average_equals_the_batch_formula_at_every_sample() -> None:
    # sum(i * P_i) / sum(i) kept with two accumulators (weighted sum, count) matches the stored-samples formula.
    rng = np.random.default_rng(7)
    samples = rng.normal(0.0, 0.002, size=(50, 3))
    weighted, count = np.zeros(3), 0
    for n in range(1, 51):
        weighted, count, average = funding.running_linear_weighted_average(weighted, count, samples[n - 1])
        np.testing.assert_allclose(average, funding.linear_weighted_average(samples[:n], axis=0), rtol=1e-12)
    assert count == 50
    # and it is not the mean: on a rising series the later samples pull it up
    rising = np.linspace(0.0, 1.0, 11)
    assert float(funding.linear_weighted_average(rising)) == pytest.approx(2 / 3)
    assert float(funding.linear_weighted_average(rising)) > rising.mean() + 0.1


def test_running_mean_equals_the_mean() -> None:
    total, count = np.zeros(2), 0
    for x in ([1.0, -2.0], [3.0, 0.0], [5.0, 8.0]):
        total, count, average = funding.running_mean(total, count, np.array(x))
    np.testing.assert_allclose(average, [3.0, 2.0])
    assert count == 3


def test_rate_rules_from_an_average_reproduce_the_venue_functions() -> None:
    samples = np.linspace(0.0005, 0.004, 30)
    cap = funding.mmr_multiple_cap(0.75, 0.004)
    assert float(cap) == pytest.approx(0.003)
    lin = funding.linear_weighted_average(samples)
    assert float(funding.premium_interest_clamp_rate(lin, 8.0, cap)) == pytest.approx(
        float(funding.binance_funding_rate(samples, 8.0, 0.004, 0.75))
    )
    assert float(funding.premium_interest_clamp_rate(samples.mean(), 1.0, 0.04)) == pytest.approx(
        float(funding.hyperliquid_funding_rate(samples))
    )
    assert float(funding.mid_premium_ma_rate(samples.mean(), 0.00375)) == pytest.approx(
        float(funding.okx_funding_rate(samples, 0.00375))
    )
    # dYdX launch large-cap values IMF 5 %, MMF 3 % (exchange-rules.md 2.7): 6 x 2 % = 12 % per 8 h, 1.5 % per hour
    assert float(funding.margin_fraction_cap(6.0, 0.05, 0.03, 1.0)) == pytest.approx(0.12 / 8)
    assert float(funding.dydx_rate(1.0, funding.margin_fraction_cap(6.0, 0.05, 0.03))) == pytest.approx(
        funding.dydx_funding_rate([1.0] * 60, 0.05, 0.03)
    )
    # Drift: the tier clamp per hour, and the rule with it equals drift_funding_rate
    assert float(funding.drift_tier_cap("C")) == pytest.approx(1 / 20 / 24)
    assert float(funding.drift_rate(101.0, 100.0, funding.drift_tier_cap("A"))) == pytest.approx(
        float(funding.drift_funding_rate(101.0, 100.0, "A"))
    )
