"""Spot makers quoting around their venue's perpetual mark, pulled towards the fundamental value with
``spot_anchor_half_life_s``: each step a share ``1 - 0.5 ** (step / half_life)`` of the fair value is the
fundamental. A vanishing half-life quotes the fundamental value (the same run as ``spot_fair_value =
"fundamental"``), a half-life of one step (half and half) lies between the mark's run and the fundamental's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perpstress.config.scenario import Scenario
from perpstress.engine.simulation import Simulation

KEY = "binance:BTC/USDT"


def spot_mid(**maker: Any) -> np.ndarray:
    """The mid of Binance's BTC/USDT book every step of two-venue-demo's crash, its makers set by ``maker``."""
    base = Scenario.load("two-venue-demo").with_(duration_s=300)
    over = base.makers.markets[KEY].model_dump(exclude_none=True) | maker
    scenario = base.with_(makers__markets={**base.makers.markets, KEY: over})
    sim = Simulation(scenario, scale=0.25)
    ts = sim.run().timeseries
    m = sim.market_keys.index(KEY)
    return np.asarray((ts["best_bid"][:, m] + ts["best_ask"][:, m]) / 2)


@pytest.fixture(scope="module")
def mids() -> dict[str, np.ndarray]:
    return {
        "fundamental": spot_mid(spot_fair_value="fundamental"),
        "mark": spot_mid(spot_fair_value="perpetual_mark"),
        "instant": spot_mid(spot_fair_value="perpetual_mark", spot_anchor_half_life_s=1e-9),
        "one step": spot_mid(spot_fair_value="perpetual_mark", spot_anchor_half_life_s=1.0),  # steps of 1 s
    }


def test_the_ends_of_the_anchor_are_the_two_fair_values(mids: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(mids["instant"], mids["fundamental"])
    assert not np.array_equal(mids["mark"], mids["fundamental"])  # the two fair values part in the crash


def test_an_anchor_of_one_step_quotes_between_the_mark_and_the_fundamental(mids: dict[str, np.ndarray]) -> None:
    lo = np.fmin(mids["mark"], mids["fundamental"])
    hi = np.fmax(mids["mark"], mids["fundamental"])
    half = mids["one step"]
    apart = np.isfinite(half) & (hi - lo > 2e-4 * hi)  # steps the two books are apart enough to tell (both quoted)
    assert apart.sum() >= 10
    tol = 1e-4 * hi[apart]  # a tick and the skew's share
    inside = (half[apart] >= lo[apart] - tol) & (half[apart] <= hi[apart] + tol)
    assert inside.mean() > 0.9
    assert not np.array_equal(half, mids["mark"])
    assert not np.array_equal(half, mids["fundamental"])
