"""Shared margin tables (``margin_tables`` / a perpetual's ``margin_table``) and a preset's ``default_symbols``."""

from __future__ import annotations

from perpstress.config.venue import VenueConfig
from perpstress.presets import load_preset_data


def test_a_market_naming_a_table_gets_its_tiers_and_sources() -> None:
    venue = VenueConfig.model_validate(load_preset_data("binance"))
    market = venue.perpetuals["POWRUSDT"]
    table = venue.margin_tables["small_cap"]
    assert market.margin_table == "small_cap"
    assert market.margin_tiers == table.tiers
    assert "POWRUSDT" in table.symbols
    assert market.margin_tiers[0].source.ref.startswith("https://")  # the announcement, not the script


def test_a_scenario_switching_a_markets_table_gets_the_new_tiers() -> None:
    venue = VenueConfig.model_validate({"preset": "binance", "perpetuals": {"POWRUSDT": {"margin_table": "large_cap"}}})
    assert venue.perpetuals["POWRUSDT"].margin_tiers == venue.margin_tables["large_cap"].tiers
    assert venue.perpetuals["POWRUSDT"].margin_table == "large_cap"


def test_tiers_of_its_own_win_and_the_market_no_longer_claims_the_table() -> None:
    tiers = [{"notional_floor": 0.0, "notional_cap": 1e6, "max_leverage": 10.0, "maintenance_margin_rate": 0.05}]
    venue = VenueConfig.model_validate({"preset": "binance", "perpetuals": {"POWRUSDT": {"margin_tiers": tiers}}})
    market = venue.perpetuals["POWRUSDT"]
    assert market.margin_table is None
    assert len(market.margin_tiers) == 1
    assert market.margin_tiers[0].max_leverage == 10.0


def test_a_scenario_naming_no_symbols_gets_the_presets_default_markets() -> None:
    venue = VenueConfig.model_validate({"preset": "binance"})
    assert list(venue.markets()) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "HIVEUSDT"]
    assert len(venue.perpetuals) > 20
    chosen = VenueConfig.model_validate({"preset": "binance", "symbols": ["XRPUSDT", "BTCUSDT"]})
    assert list(chosen.markets()) == ["XRPUSDT", "BTCUSDT"]
