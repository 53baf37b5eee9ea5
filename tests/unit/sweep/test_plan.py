"""Seeds from SeedSequence.spawn and run keys: deterministic, independent of N, sensitive to what a run computes."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.errors import UsageError
from perpstress.sweep import parse_grid, plan_sweep, run_key, spawn_seeds

BASE = Scenario.load("quickstart")
GRID = parse_grid(
    {
        "grid": {
            "venues.binance.insurance_fund.initial_usd": [1e6, 4e6],
            "venues.hyperliquid.adl.rule": ["ranked_queue", "capped_pro_rata"],
        }
    },
    "g.toml",
)


def test_seeds_are_the_spawned_children_s_first_word_shifted() -> None:
    seeds = spawn_seeds(7, 5)
    children = np.random.SeedSequence(7).spawn(5)
    assert seeds == [int(c.generate_state(1, dtype=np.uint64)[0]) >> 1 for c in children]
    assert all(0 <= s < 2**63 for s in seeds)
    assert len(set(seeds)) == 5


def test_seeds_are_deterministic_and_more_seeds_extend_fewer() -> None:
    assert spawn_seeds(11, 3) == spawn_seeds(11, 3)
    assert spawn_seeds(11, 8)[:3] == spawn_seeds(11, 3)
    assert spawn_seeds(12, 3) != spawn_seeds(11, 3)
    with pytest.raises(UsageError, match="at least one seed"):
        spawn_seeds(1, 0)


def test_plan_runs_every_cell_on_the_same_seeds() -> None:
    plan = plan_sweep(BASE, GRID, 3, scale=0.5)
    assert len(plan.runs) == 12
    assert plan.seeds == tuple(spawn_seeds(BASE.seed, 3))
    for cell in range(4):
        assert [r.seed for r in plan.runs if r.cell == cell] == list(plan.seeds)
    assert len({r.key for r in plan.runs}) == 12
    run = plan.runs[5]
    scenario = plan.scenario(run)
    assert scenario.seed == run.seed
    assert run_key(scenario, 0.5) == run.key


def test_keys_are_stable_and_change_with_value_seed_and_scale() -> None:
    a = plan_sweep(BASE, GRID, 2, scale=0.5)
    b = plan_sweep(Scenario.load("quickstart"), GRID, 2, scale=0.5)
    assert [r.key for r in a.runs] == [r.key for r in b.runs]
    assert {r.key for r in plan_sweep(BASE, GRID, 2, scale=0.25).runs}.isdisjoint({r.key for r in a.runs})
    scenario = a.scenario(a.runs[0])
    assert run_key(scenario.model_copy(update={"seed": scenario.seed + 1}), 0.5) != a.runs[0].key
    other = scenario.with_(venues__binance__insurance_fund__initial_usd=1.5e6)
    assert run_key(other, 0.5) != a.runs[0].key


def test_cells_that_resolve_alike_share_a_key_and_run_once() -> None:
    own_rule = parse_grid({"grid": {"venues.hyperliquid.adl.rule": ["ranked_queue"], "duration_s": [600.0]}}, "g")
    plan = plan_sweep(BASE, own_rule, 2)
    assert plan.cells[0].stable_hash() == plan.base.stable_hash()  # the preset's own rule and duration: the base
    dup = plan_sweep(BASE, parse_grid({"grid": {"duration_s": [600.0, 600]}}, "g"), 2)
    assert [r.key for r in dup.runs[:2]] == [r.key for r in dup.runs[2:]]
    assert len(dup.unique_runs()) == 2
