"""Exogenous paths: an asset that tracks another is its rate times that asset's index and draws nothing itself."""

from __future__ import annotations

import numpy as np

from perpstress.config.shock import JumpRegimeShock
from perpstress.mechanisms import exogenous

SHOCK = {"at_s": 30, "jump": -0.05, "stress_vol": 0.002, "half_life_s": 60, "drift": -0.05, "drift_s": 60}
OWN = {"ETH": {"start_price": 4_380.0, "beta": 1.25, "idio_vol": 0.0002}, "SOL": {"start_price": 207.0, "beta": 1.5}}


def paths(assets: dict[str, dict[str, object]], seed: int = 7) -> exogenous.ExogenousPaths:
    shock = JumpRegimeShock.model_validate({**SHOCK, "assets": assets})
    return exogenous.generate(shock, 300, 1.0, 0, np.random.default_rng(seed))


def test_a_staking_token_is_its_rate_times_the_underlying_at_every_step() -> None:
    p = paths({**OWN, "WBETH": {"tracks": "ETH", "rate": 1.08}, "BNSOL": {"tracks": "SOL", "rate": 1.072}})
    eth, sol = p.index[:, p.asset("ETH")], p.index[:, p.asset("SOL")]
    np.testing.assert_array_equal(p.index[:, p.asset("WBETH")], 1.08 * eth)
    np.testing.assert_array_equal(p.index[:, p.asset("BNSOL")], 1.072 * sol)
    assert eth[-1] < 0.95 * eth[0]  # the shock moved the underlying, and the token with it
    shock = JumpRegimeShock.model_validate({**SHOCK, "assets": {**OWN, "WBETH": {"tracks": "ETH", "rate": 1.08}}})
    assert shock.start_price("WBETH") == 1.08 * 4_380.0


def test_adding_a_tracked_asset_leaves_every_other_path_as_it_was() -> None:
    """A tracked asset takes no draws from the run's generator, wherever it sits among the assets."""
    before = paths(OWN)
    after = paths({"WBETH": {"tracks": "ETH", "rate": 1.08}, **OWN})
    for name in OWN:
        np.testing.assert_array_equal(after.index[:, after.asset(name)], before.index[:, before.asset(name)])
    np.testing.assert_array_equal(after.appetite, before.appetite)


def test_a_spread_jump_moves_evenly_over_its_seconds_and_the_drift_follows() -> None:
    """Without noise, the factor's log-move is the jump spread over ``jump_s`` from ``at_s``, then the drift over
    ``drift_s``; with ``jump_s = 0`` the jump is one step and the drift starts the step after."""
    quiet = {**SHOCK, "calm_vol": 0.0, "stress_vol": 0.0, "assets": {"BTC": {"start_price": 100.0}}}

    def move(**over: float) -> np.ndarray:
        shock = JumpRegimeShock.model_validate({**quiet, **over})
        p = exogenous.generate(shock, 300, 1.0, 0, np.random.default_rng(3))
        return np.log(p.index[:, 0] / 100.0)

    spread = move(jump_s=20)
    np.testing.assert_allclose(spread[:30], 0.0, atol=1e-15)  # nothing before the news
    np.testing.assert_allclose(spread[30:50], -0.05 * np.arange(1, 21) / 20, rtol=1e-12)  # the jump, evenly
    np.testing.assert_allclose(spread[50:110], -0.05 - 0.05 * np.arange(1, 61) / 60, rtol=1e-12)  # then the drift
    np.testing.assert_allclose(spread[110:], -0.10, rtol=1e-12)
    one_step = move()
    assert one_step[29] == 0.0
    assert abs(one_step[30] + 0.05) < 1e-12
    np.testing.assert_allclose(one_step[31:91], -0.05 - 0.05 * np.arange(1, 61) / 60, rtol=1e-12)
    np.testing.assert_allclose(one_step[91:], -0.10, rtol=1e-12)
