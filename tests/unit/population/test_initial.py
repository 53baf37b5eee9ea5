"""``population_seed``: a starting population that is the same for every run seed, drawn once outside a run and
handed to runs (how a sweep shares one population between its workers) with the same outputs as drawing it in the
run."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.engine.summary import outcome
from perpstress.errors import UsageError
from perpstress.outputs.run import run_scenario
from perpstress.population.initial import InitialDraw, draw_initial, population_key

SHORT = Scenario.load("two-venue-demo").with_(duration_s=90)  # Binance and Bybit, spot books, hedged owners
SCALE = 0.2


def _same_draw(a: InitialDraw, b: InitialDraw) -> bool:
    """Every array of both parts equal (NaN where the other has NaN counts as equal for float arrays)."""
    for x, y in ((a.crowd, b.crowd), (a.hedged, b.hedged)):
        for name in x.__dataclass_fields__:
            u, v = getattr(x, name), getattr(y, name)
            if not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
                return False
    return True


def _outcome(summary: dict[str, Any]) -> str:
    return json.dumps(outcome(summary), sort_keys=True)  # without wall_seconds and timing


def test_with_a_population_seed_the_population_does_not_depend_on_the_run_seed() -> None:
    fixed = SHORT.with_(population_seed=3)
    a, b = draw_initial(fixed, SCALE), draw_initial(fixed.with_(seed=99), SCALE)
    assert a.key == b.key
    assert _same_draw(a, b)
    other = draw_initial(fixed.with_(population_seed=4), SCALE)
    assert other.key != a.key
    assert not np.array_equal(other.crowd.entry_price, a.crowd.entry_price)
    assert a.hedged.market.size > 0
    assert a.crowd.market.size >= 1000


def test_without_one_each_run_seed_draws_its_own_and_nothing_can_be_shared() -> None:
    assert population_key(SHORT, SCALE) is None
    with pytest.raises(UsageError, match="population_seed"):
        draw_initial(SHORT, SCALE)


def test_the_key_follows_what_the_population_is_drawn_from_and_nothing_else() -> None:
    fixed = SHORT.with_(population_seed=3)
    key = population_key(fixed, SCALE)
    assert population_key(fixed.with_(seed=5), SCALE) == key
    assert population_key(fixed.with_(venues__binance__insurance_fund__initial_usd=1.0), SCALE) == key
    assert population_key(fixed.with_(shock__jump=-0.05), SCALE) == key
    assert population_key(fixed, SCALE / 2) != key
    assert population_key(fixed.with_(crowd__leverage_median=5.0), SCALE) != key
    assert population_key(fixed.with_(shock__assets__BTC__start_price=100_000.0), SCALE) != key


def test_a_run_handed_its_population_read_only_gives_the_outputs_of_a_run_that_draws_it() -> None:
    fixed = SHORT.with_(population_seed=3, seed=11)
    shared = draw_initial(fixed, SCALE)
    for part in (shared.crowd, shared.hedged):  # as Ray hands arrays from its object store: read-only
        for name in part.__dataclass_fields__:
            getattr(part, name).setflags(write=False)
    own = run_scenario(fixed, None, scale=SCALE).summary
    handed = run_scenario(fixed, None, scale=SCALE, population=shared).summary
    assert own["liquidations"]["count"] > 0
    assert _outcome(handed) == _outcome(own)
    # another run seed on the same population: same crowd, different paths and flow
    reseeded = run_scenario(fixed.with_(seed=12), None, scale=SCALE, population=shared).summary
    assert _outcome(reseeded) != _outcome(own)


def test_a_population_drawn_for_another_scenario_is_refused() -> None:
    fixed = SHORT.with_(population_seed=3)
    shared = draw_initial(fixed, SCALE)
    for changed, scale in ((fixed.with_(population_seed=4), SCALE), (fixed, SCALE / 2),
                           (fixed.with_(crowd__leverage_median=5.0), SCALE)):  # fmt: skip
        with pytest.raises(UsageError, match="drawn for another scenario"):
            run_scenario(changed, None, scale=scale, population=shared)
