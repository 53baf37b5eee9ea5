"""Index formulas: Binance's capped weighted mean, Hyperliquid's weighted median, the plain median."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from perpstress.rules.index import median_index, weighted_mean_index, weighted_median_index


def test_binance_caps_an_outlier_at_the_band_instead_of_following_it() -> None:
    # Binance's outlier protection (exchange-rules.md 1.1): a source > 3 % from the median is capped at median x 0.97
    prices = [100.0, 100.2, 99.8, 65.0]  # one venue's book printed 65
    index = weighted_mean_index(prices, [1, 1, 1, 1], band=0.03)
    median = float(np.median(prices))  # 99.9
    expected = (100.0 + 100.2 + 99.8 + median * 0.97) / 4
    assert math.isclose(index, expected, rel_tol=1e-12)
    assert index > 99.0  # the uncapped mean would be 91.25


def test_a_stale_source_weighs_nothing() -> None:
    assert weighted_mean_index([100.0, 50.0], [1.0, 0.0], band=0.5) == 100.0
    assert math.isnan(weighted_mean_index([np.nan, 50.0], [1.0, 0.0], band=0.5))


def test_hyperliquid_weighted_median_follows_the_heavy_sources() -> None:
    # weights 3, 2, 2, 1 (Binance, OKX, Bybit, Kraken): total 8, half 4 -> reached at OKX's price
    assert weighted_median_index([101.0, 100.0, 102.0, 90.0], [3, 2, 2, 1]) == 101.0
    # exactly half the weight on each side: the midpoint
    assert weighted_median_index([100.0, 102.0], [1, 1]) == 101.0


def test_plain_median() -> None:
    assert median_index([1.0, 3.0, 2.0, np.nan], [1, 1, 1, 1]) == 2.0


@given(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=12), st.floats(0.001, 0.5))
def test_index_lies_within_the_sources(prices: list[float], band: float) -> None:
    w = np.ones(len(prices))
    for value in (
        weighted_mean_index(prices, w, band),
        weighted_median_index(prices, w),
        median_index(prices, w),
    ):
        assert min(prices) * (1 - 1e-12) <= value <= max(prices) * (1 + 1e-12)
