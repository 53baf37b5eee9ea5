"""Mark-price rules (shared/reference/exchange-rules.md section 1)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.rules import mark


def test_median_of_three_ignores_missing_inputs() -> None:
    assert float(mark.median_of_three(1.0, 3.0, 2.0)) == 2.0
    assert float(mark.median_of_three(1.0, np.nan, 3.0)) == 2.0
    np.testing.assert_allclose(mark.median_of_three([1.0, 5.0], [2.0, 4.0], [3.0, 6.0]), [2.0, 5.0])


def test_funding_basis_price() -> None:
    # P1 = I * (1 + F * t_to_funding / interval): 0.01 % with half the interval left adds 0.005 %.
    assert float(mark.funding_basis_price(100_000.0, 0.0001, 4 * 3600, 8 * 3600)) == pytest.approx(100_005.0)


def test_hyperliquid_mark_is_the_median_of_its_three_inputs() -> None:
    # oracle + EMA basis = 101; book median(bid, ask, last) = 100.5; CEX perp median = 99 -> 100.5
    assert float(mark.hyperliquid_mark(100.0, 1.0, 100.4, 100.6, 100.5, 99.0, 100.2)) == pytest.approx(100.5)


def test_hyperliquid_adds_the_30s_ema_when_one_input_is_missing() -> None:
    # Without the CEX input: median(101, 100.5, EMA30 = 100.0) -> 100.5 (median of three of the four-input rule).
    assert float(mark.hyperliquid_mark(100.0, 1.0, 100.4, 100.6, 100.5, np.nan, 100.0)) == pytest.approx(100.5)
    # Had the EMA been left out, the median of two would be 100.75.
    assert float(mark.hyperliquid_mark(100.0, 1.0, 100.4, 100.6, 100.5, np.nan, 99.0)) == pytest.approx(100.5)


def test_irregular_ema_converges_to_a_constant_sample() -> None:
    num, den = 0.0, 0.0
    for _ in range(2000):
        num, den = mark.ema_update(num, den, 5.0, 1.0, 150.0)
    assert float(num / den) == pytest.approx(5.0)
    num2, den2 = mark.ema_update(num, den, 0.0, 150.0, 150.0)  # one time constant of zeros
    assert float(num2 / den2) < 5.0


def test_weighted_median_with_hyperliquid_oracle_weights() -> None:
    # Binance, OKX, Bybit, Kraken, KuCoin, Gate, MEXC, Hyperliquid weighted 3, 2, 2, 1, 1, 1, 1, 1 (total 12).
    prices = [100.0, 101.0, 101.0, 90.0, 90.0, 90.0, 90.0, 90.0]
    # Sorted: 90 holds 5 of 12 (below half), 100 brings it to 8 of 12: the weighted median is Binance's 100.
    assert mark.weighted_median(prices, [3, 2, 2, 1, 1, 1, 1, 1]) == 100.0
    # Give the small venues one more unit each and 90 holds 10 of 17: past half.
    assert mark.weighted_median(prices, [3, 2, 2, 2, 2, 2, 2, 2]) == 90.0
    assert mark.weighted_median([100.0, 101.0, np.nan], [3, 2, 2]) == 100.0


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda rows: st.lists(
            st.lists(
                st.one_of(st.just(float("nan")), st.floats(-1e6, 1e6, allow_nan=False)), min_size=rows, max_size=rows
            ),
            min_size=1,
            max_size=8,
        )
    )
)
def test_nanmedian_gives_numpys_values_bit_for_bit(columns: list[list[float]]) -> None:
    stack = np.array(columns, dtype=np.float64).T  # rows: inputs, columns: markets
    ours = mark.nanmedian(stack)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on an all-NaN column
        theirs = np.nanmedian(stack, axis=0)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs, equal_nan=True)
    assert np.array_equal(mark.nanmedian(stack[:, 0]), np.asarray(theirs[0]), equal_nan=True)  # one column
