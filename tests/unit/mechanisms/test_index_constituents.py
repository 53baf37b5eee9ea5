"""An asset's own index constituents (``index.constituents_by_asset``) replace the venue's list for that asset."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.config.venue import VenueConfig
from perpstress.mechanisms.indices import IndexEngine
from perpstress.presets import load_preset_data


def binance(**index: object) -> VenueConfig:
    data = load_preset_data("binance")
    data["index"] = {**data["index"], **index}
    data["symbols"] = ["BTCUSDT", "HIVEUSDT"]
    return VenueConfig.model_validate(data)


def engine(venue: VenueConfig) -> IndexEngine:
    """Rows: 0 BTCUSDT, 1 HIVEUSDT (perpetuals), 2 BTC/USDT, 3 HIVE/USDT (Binance's spot books)."""
    spot = {(0, "BTC"): 2, (0, "HIVE"): 3}
    return IndexEngine([venue], [0, 0, 0, 0], ["BTC", "HIVE", "BTC", "HIVE"],
                       np.array([True, True, False, False]), spot, 1000)  # fmt: skip


def test_an_asset_with_its_own_sources_follows_them_and_the_others_keep_the_venues_list() -> None:
    venue = binance(constituents_by_asset={"HIVE": {"binance": 3.0, "gate": 1.0}}, outlier_band=0.5)
    idx = engine(venue)
    fundamental = np.array([100_000.0, 0.25, 100_000.0, 0.25])
    mid = np.array([np.nan, np.nan, 90_000.0, 0.15])  # both of Binance's spot books 10 % / 40 % under the rest
    index = idx.step(0, fundamental, mid)
    # HIVE: binance 0.15 (weight 3) and gate at the fundamental 0.25 (weight 1); median 0.2, band 50 %: no cap
    assert index[1] == pytest.approx((3 * 0.15 + 0.25) / 4)
    # BTC: Binance's usual ten sources, nine of them external at the fundamental (the band 1 % caps Binance spot)
    assert index[0] == pytest.approx((9 * 100_000.0 + 99_000.0) / 10)


def test_the_venues_list_applies_to_an_asset_without_its_own() -> None:
    idx = engine(binance())
    index = idx.step(0, np.array([100_000.0, 0.25, 100_000.0, 0.25]), np.array([np.nan, np.nan, 100_000.0, 0.15]))
    assert index[1] == pytest.approx((9 * 0.25 + 0.25 * 0.97) / 10)  # capped at the 3 % band under the median
