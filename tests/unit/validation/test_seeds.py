"""Validation over seeds (perpstress.validation.seeds): per target the passes, the pass rate, the 5th-95th
percentile of the simulated figure, and whether it holds (passes on at least 80 % of the runs), equal to what each
run's own validation says; the folder of runs found wherever they are nested."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perpstress.errors import UsageError
from perpstress.validation.seeds import HOLD_SHARE, find_runs, validate_runs
from perpstress.validation.targets import validate_run


def test_the_summary_over_runs_is_what_each_run_says(tiny_runs: Path) -> None:
    runs = find_runs(tiny_runs)
    assert len(runs) == 3
    out = validate_runs(runs, write=False)
    each = [validate_run(r, write=False)["targets"] for r in runs]
    assert len(out["runs"]) == 3
    for i, t in enumerate(out["targets"]):
        statuses = [e[i]["status"] for e in each]
        assert t["passes"] == statuses.count("pass")
        assert t["fails"] == statuses.count("fail")
        assert t["na"] == statuses.count("n/a")
        assert t["pass_rate"] == pytest.approx(t["passes"] / 3)
        assert t["holds"] == (t["passes"] / 3 >= HOLD_SHARE)
        values = [e[i]["simulated"] for e in each if e[i]["simulated"] is not None and t["unit"] != "utc_time"]
        if values and t["p5"] is not None:
            assert min(values) <= t["p5"] <= t["p95"] <= max(values)
            assert t["p5"] == pytest.approx(float(np.percentile(values, 5)))
    assert out["held"] == sum(t["holds"] for t in out["targets"])
    lows = [validate_run(r, write=False)["collateral"] for r in runs]
    for i, c in enumerate(out["collateral"]):
        for name in ("book_low", "margin_low", "book_discount", "liquidations_caused"):
            values = [run_lows[i][name] for run_lows in lows if run_lows[i][name] is not None]
            if not values:
                assert c[name] is None
                continue
            assert c[name]["runs"] == len(values)
            assert c[name]["p5"] == pytest.approx(float(np.percentile(values, 5)))
            assert c[name]["p95"] == pytest.approx(float(np.percentile(values, 95)))


def test_a_run_directory_is_its_own_folder_and_an_empty_folder_is_refused(tiny_runs: Path, tmp_path: Path) -> None:
    one = find_runs(tiny_runs)[0]
    assert find_runs(one) == [one]
    with pytest.raises(UsageError, match="holds no run directory"):
        find_runs(tmp_path)
    with pytest.raises(UsageError, match="no such run directory"):
        find_runs(tmp_path / "nothing")


def test_validate_over_a_folder_of_runs(tiny_runs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    shutil.copytree(tiny_runs, folder)
    done = subprocess.run([sys.executable, "-m", "perpstress", "validate", str(folder), "--json"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = json.loads((folder / "validation_seeds.json").read_text())
    assert len(written["runs"]) == 3
    assert all((Path(r["run"]) / "validation.json").is_file() for r in written["runs"])
