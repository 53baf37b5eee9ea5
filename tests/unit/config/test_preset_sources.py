"""Every preset value names a source with a confidence tag; unconfirmed values say why."""

from __future__ import annotations

import pytest

from perpstress.config.base import Confidence, Source, Sourced
from perpstress.config.venue import VenueConfig
from perpstress.presets import available_presets

PRESETS = available_presets()


def sourced_sections(venue: VenueConfig) -> list[tuple[str, Sourced]]:
    sections = venue.rule_sections()
    for symbol, market in venue.perpetuals.items():
        sections.append((f"perpetuals.{symbol}", market))
        sections += [(f"perpetuals.{symbol}.margin_tiers[{i}]", t) for i, t in enumerate(market.margin_tiers)]
    sections += [(f"spot.{symbol}", market) for symbol, market in venue.spot.items()]
    return sections


def all_sources(section: Sourced) -> list[tuple[str, Source]]:
    fields = [f for f in type(section).model_fields if f not in {"source", "field_sources", "margin_tiers"}]
    return [(f, section.source_of(f)) for f in fields]


def test_the_seven_venues_are_there() -> None:
    assert set(PRESETS) == {"binance", "bybit", "okx", "hyperliquid", "dydx", "drift", "bitget"}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_value_has_a_cited_source(preset: str) -> None:
    venue = VenueConfig.model_validate({"preset": preset})
    for where, section in sourced_sections(venue):
        for field, source in all_sources(section):
            assert source.confidence is not Confidence.SCENARIO, f"{preset} {where}.{field} has no source"
            assert source.ref.strip(), f"{preset} {where}.{field}"
            if source.confidence is Confidence.UNCONFIRMED:
                assert source.note.strip(), f"{preset} {where}.{field}: UNCONFIRMED without a reason"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_covers_btc_eth_sol_and_a_long_tail_market(preset: str) -> None:
    venue = VenueConfig.model_validate({"preset": preset})
    bases = {m.base for m in venue.perpetuals.values()}
    assert {"BTC", "ETH", "SOL"} <= bases
    assert len(bases - {"BTC", "ETH", "SOL"}) >= 1


def test_binance_btcusdt_is_the_reference_table() -> None:
    tiers = VenueConfig.model_validate({"preset": "binance"}).perpetuals["BTCUSDT"].margin_tiers
    assert [t.maintenance_margin_rate for t in tiers] == [0.004, 0.005, 0.0065, 0.01, 0.02, 0.025, 0.05]
    assert [t.notional_cap for t in tiers] == [3e5, 8e5, 3e6, 12e6, 70e6, 100e6, 230e6]
    assert [t.max_leverage for t in tiers] == [150, 100, 75, 50, 25, 20, 10]
    assert [t.maintenance_amount for t in tiers] == [0, 300, 1_500, 12_000, 132_000, 482_000, 2_982_000]
