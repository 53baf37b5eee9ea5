"""Named random streams: two runs that differ in one rule draw the same random numbers everywhere else.

Each mechanism draws from its own child of the run's SeedSequence (perpstress.streams), so changing the ADL rule or
the insurance fund's size must leave the shock paths, the crowd, the noise takers' orders and the rails' delays
exactly as they were: the runs differ because of the rule only (common random numbers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perpstress import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.streams import STREAMS, RandomStreams, stream_key

BASE = Scenario.load("two-venue-demo").with_(duration_s=240)
SCALE = 0.25


class Recording:
    """A generator that records every number it hands out, by method."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.drawn: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.rng, name)

        def draw(*args: Any, **kwargs: Any) -> Any:
            out = method(*args, **kwargs)
            self.drawn.append((name, np.array(out, copy=True)))
            return out

        return draw


def run(scenario: Scenario) -> tuple[Simulation, Recording, Recording]:
    sim = Simulation(scenario, scale=SCALE)
    sim.start_positions = {  # type: ignore[attr-defined]
        name: getattr(sim.positions, name)[sim.crowd_ids].copy()
        for name in ("size_lots", "entry_price", "isolated_margin")
    }
    takers, rails = Recording(sim.takers.rng), Recording(sim.rails.rng)
    sim.takers.rng = takers  # type: ignore[assignment]
    sim.rails.rng = rails  # type: ignore[assignment]
    sim.run()
    return sim, takers, rails


def same_draws(a: Recording, b: Recording) -> None:
    assert len(a.drawn) == len(b.drawn)
    for (name_a, x), (name_b, y) in zip(a.drawn, b.drawn, strict=True):
        assert name_a == name_b
        np.testing.assert_array_equal(x, y)


def prefix_draws(a: Recording, b: Recording) -> None:
    """The same numbers in the same order, for as many as the shorter run drew (rails draw one per transfer)."""
    n = min(len(a.drawn), len(b.drawn))
    for (name_a, x), (name_b, y) in zip(a.drawn[:n], b.drawn[:n], strict=True):
        assert name_a == name_b
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def base() -> tuple[Simulation, Recording, Recording]:
    return run(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"venues__binance__adl": {"rule": "random_scan", "max_accounts_scanned": 50}},
        {"venues__binance__insurance_fund__initial_usd": 1.0},
    ],
    ids=["adl-rule", "fund-size"],
)
def test_one_rule_changed_draws_the_same_numbers(base: tuple[Simulation, Recording, Recording],
                                                 change: dict[str, Any]) -> None:  # fmt: skip
    sim0, takers0, rails0 = base
    sim1, takers1, rails1 = run(BASE.with_(**change))
    np.testing.assert_array_equal(sim0.paths.index, sim1.paths.index)  # shock paths
    np.testing.assert_array_equal(sim0.paths.appetite, sim1.paths.appetite)
    for name, start in sim0.start_positions.items():  # type: ignore[attr-defined]  # the same crowd, row for row
        np.testing.assert_array_equal(start, sim1.start_positions[name])  # type: ignore[attr-defined]
    same_draws(takers0, takers1)  # every noise-taker order count, size and side
    assert len(takers0.drawn) > 100
    prefix_draws(rails0, rails1)
    # the rule did change the outcome (marks, wallets), so the test compares runs that really differ
    assert not np.array_equal(sim0.accounts.wallet, sim1.accounts.wallet)


def test_streams_are_keyed_by_name_not_order() -> None:
    a, b = RandomStreams(7), RandomStreams(7)
    b.get("adl").standard_normal(1000)  # another mechanism drawing first changes nothing
    np.testing.assert_array_equal(a.get("takers").random(5), b.get("takers").random(5))
    assert not np.array_equal(RandomStreams(7).get("takers").random(5), RandomStreams(7).get("rails").random(5))
    assert not np.array_equal(RandomStreams(7).get("takers").random(5), RandomStreams(8).get("takers").random(5))
    assert len({stream_key(n) for n in STREAMS}) == len(STREAMS)
    with pytest.raises(KeyError, match="no random stream named"):
        RandomStreams(7).get("taker")
