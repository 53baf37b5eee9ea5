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
