"""Rules chosen once: every config type or method has exactly one implementation in its registry, and every venue
preset resolves its procedure, ADL rule, mark, index and collateral methods there."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from perpstress.calculator import available_presets, load_venue
from perpstress.config.venue import (
    AdlConfig,
    AdlRanking,
    CollateralMethod,
    IndexMethod,
    LiquidationConfig,
    MarkMethod,
    ProRataAdl,
)
from perpstress.mechanisms.adl import ADL_RULES
from perpstress.mechanisms.adl.pro_rata import ALLOCATIONS
from perpstress.mechanisms.adl.ranked_queue import RANKINGS
from perpstress.mechanisms.collateral import COLLATERAL_PRICES
from perpstress.mechanisms.indices import INDEX_RULES
from perpstress.mechanisms.liquidation import PROCEDURES
from perpstress.mechanisms.prices import MARK_RULES


def members(annotated: Any) -> set[type]:
    """The classes of an ``Annotated[A | B | ..., Field(discriminator=...)]`` union."""
    union = get_args(annotated)[0]
    return set(get_args(union))


def one_each(registry: dict[Any, Any], keys: set[Any]) -> None:
    assert set(registry) == keys
    assert len(set(registry.values())) == len(registry)  # no implementation serves two keys


def test_every_liquidation_config_has_one_procedure() -> None:
    one_each(PROCEDURES, members(LiquidationConfig))


def test_every_adl_config_has_one_rule_and_every_pro_rata_member_one_allocation() -> None:
    one_each(ADL_RULES, members(AdlConfig))
    one_each(ALLOCATIONS, set(get_args(ProRataAdl.model_fields["rule"].annotation)))
    one_each(RANKINGS, set(AdlRanking))


def test_every_mark_index_and_collateral_method_has_one_rule() -> None:
    one_each(MARK_RULES, set(MarkMethod))
    one_each(INDEX_RULES, set(IndexMethod))
    one_each(COLLATERAL_PRICES, set(CollateralMethod))


@pytest.mark.parametrize("name", sorted(available_presets()))
def test_every_preset_resolves_its_rules(name: str) -> None:
    venue = load_venue(name)
    procedure = PROCEDURES[type(venue.liquidation)]
    adl = ADL_RULES[type(venue.adl)]
    mark = MARK_RULES[venue.mark.method]
    assert venue.index.method in INDEX_RULES
    assert all(rule.method in COLLATERAL_PRICES for rule in venue.collateral.values())
    # the capabilities the engine asks at build, where the venues' documents put them
    assert procedure.needs_keeper == (name == "drift")
    assert adl.socialises_losses == (name == "drift")
    assert mark.uses_peer_mids == (name == "hyperliquid")
    if isinstance(venue.adl, ProRataAdl):
        assert venue.adl.rule in ALLOCATIONS


def test_presets_cover_every_procedure() -> None:
    used = {PROCEDURES[type(load_venue(name).liquidation)] for name in available_presets()}
    assert used == set(PROCEDURES.values())
