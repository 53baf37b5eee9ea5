"""The replay of the 16 ADL waves reproduces Chitra et al.'s published per-wave budgets and overshoot.

Reads ``../shared/data/adl-paper`` (the published outputs); skipped where that directory is absent.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from perpstress.errors import DataError
from perpstress.studies.adl_waves import REL_TOL, AdlWavesReplay, close, default_data_dir, replay_adl_waves

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"published ADL outputs not found at {DATA}")


@pytest.fixture(scope="module")
def replay() -> AdlWavesReplay:
    return replay_adl_waves(DATA)


@needs_data
def test_sixteen_waves_every_number_within_tolerance(replay: AdlWavesReplay) -> None:
    assert len(replay.waves) == 16
    assert replay.mismatches() == []


@needs_data
def test_needed_budget_is_recomputed_from_the_coin_gaps(replay: AdlWavesReplay) -> None:
    for w in replay.waves:
        assert w.budget_needed_usd == pytest.approx(w.published["budget_needed"], rel=REL_TOL)
        assert w.overshoot_prod_usd == pytest.approx(w.published["overshoot_prod"], rel=REL_TOL, abs=0.01)
    # The production queue took more than needed in some waves and less in others.
    assert any(w.overshoot_prod_usd > 0 for w in replay.waves)
    assert any(w.overshoot_prod_usd < 0 for w in replay.waves)


@needs_data
def test_headline_production_overshoot_and_horizon_band(replay: AdlWavesReplay) -> None:
    assert close(replay.total_overshoot_prod_usd, replay.published_headline_overshoot_usd)
    assert 45e6 < replay.total_overshoot_prod_usd < 45.1e6  # the paper's $45.0M (v3)
    assert close(replay.band_max_usd, replay.published_band_max_usd)
    for h, value in replay.overshoot_by_horizon_usd.items():
        assert close(value, replay.published_overshoot_by_horizon_usd[h]), h


@needs_data
def test_pro_rata_raises_exactly_the_needed_budget(replay: AdlWavesReplay) -> None:
    for w in replay.waves:
        assert w.capacity_usd > w.budget_needed_usd  # the winners could always cover it
        assert w.budget_pro_rata_usd == pytest.approx(w.published["budget_pr"], rel=REL_TOL)
        assert abs(w.overshoot_pro_rata_usd) <= 1e-6 * w.budget_needed_usd
        assert w.published["max_pct_pr"] <= w.pro_rata_fraction * (1 + REL_TOL)
    attained = [w for w in replay.waves if math.isclose(w.published["max_pct_pr"], w.pro_rata_fraction, rel_tol=1e-9)]
    assert len(attained) >= len(replay.waves) // 2


@needs_data
def test_per_shock_queue_totals(replay: AdlWavesReplay) -> None:
    s = replay.shocks
    assert s.shocks == 1125
    assert s.queue_overshoot_usd == pytest.approx(s.published_overshoot_usd, rel=REL_TOL)
    assert s.queue_residual_usd == pytest.approx(s.published_residual_usd, rel=REL_TOL)
    assert s.pro_rata_overshoot_usd == 0.0
    assert s.pro_rata_residual_usd <= s.queue_residual_usd


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such directory"):
        replay_adl_waves(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"policy_per_wave_metrics\.csv: missing"):
        replay_adl_waves(tmp_path / "empty")
