"""``perpstress sweep`` as a user runs it: the per-cell table, the files, and errors as one line each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from perpstress import Scenario

TINY = Scenario.load("quickstart").with_(name="tiny", duration_s=20, shock__at_s=5, shock__drift_s=10)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, timeout=300)


def test_sweep_prints_the_policy_table_and_writes_the_tables(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY.to_toml(), encoding="utf-8")
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\nvenues.hyperliquid.adl.rule = ["ranked_queue", "wealth_pro_rata"]\n', encoding="utf-8")
    out = tmp_path / "sweep"
    args = ("sweep", str(scenario), "--grid", str(grid), "--seeds", "2", "--out", str(out), "--scale", "0.05")
    done = cli(*args, "--workers", "1", "--summaries-only", "--no-report")
    assert done.returncode == 0, done.stderr
    assert "cell 1: venues.hyperliquid.adl.rule=wealth_pro_rata" in done.stdout
    for text in ("ADL notional USD", "insurance-fund drawdown USD", "bad debt USD", "95% CI", "4 runs on serial"):
        assert text in done.stdout, text
    results = pq.read_table(out / "results.parquet")
    assert results.column("venues.hyperliquid.adl.rule").to_pylist() == ["ranked_queue"] * 2 + ["wealth_pro_rata"] * 2
    assert pq.read_table(out / "cells.parquet").num_rows == 2
    again = cli(*args, "--workers", "1", "--summaries-only", "--no-report", "--resume")
    assert again.returncode == 0
    assert "0 runs on serial, 4 reused" in again.stdout


def test_a_bad_grid_fails_before_any_run_with_one_line_per_problem(tmp_path: Path) -> None:
    grid = tmp_path / "bad.toml"
    grid.write_text(
        '[grid]\n"venues.binance.insurance_fund.initial_usd" = [1e6, -5]\n"venues.binance.adl.rule" = ["x"]\n',
        encoding="utf-8",
    )
    done = cli("sweep", "quickstart", "--grid", str(grid), "--seeds", "2", "--out", str(tmp_path / "s"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {grid}: grid venues.binance.insurance_fund.initial_usd = -5: ")
    assert "greater than or equal to 0" in lines[0]
    assert lines[1].startswith(f"error: {grid}: grid venues.binance.adl.rule = x: ")
    assert "does not match" in lines[1]
    assert not (tmp_path / "s").exists()


def test_sweep_option_errors_are_one_line(tmp_path: Path) -> None:
    done = cli("sweep", "quickstart", "--seeds", "0", "--out", str(tmp_path / "s"))
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --seeds 0: a sweep needs at least one seed"
    done = cli("sweep", "quickstart", "--executor", "threads", "--out", str(tmp_path / "s"))
    assert done.returncode == 2
    assert "--executor threads: choose ray, process or serial" in done.stderr


def test_sweep_prints_each_cell_against_the_baseline_paired_by_seed(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY.to_toml(), encoding="utf-8")
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\nvenues.binance.adl.rule = ["ranked_queue", "capped_pro_rata"]\n', encoding="utf-8")
    out = tmp_path / "sweep"
    args = ("sweep", str(scenario), "--grid", str(grid), "--seeds", "3", "--out", str(out), "--scale", "0.05",
            "--workers", "1", "--summaries-only", "--no-report")  # fmt: skip
    done = cli(*args, "--baseline", "rule=capped_pro_rata")
    assert done.returncode == 0, done.stderr
    for text in ("each cell minus cell 1 (baseline), paired by seed", "mean diff", "paired 95% CI", "unpaired 95% CI",
                 "width ratio"):  # fmt: skip
        assert text in done.stdout, text
    cells = pq.read_table(out / "cells.parquet").to_pydict()
    assert cells["baseline_cell"] == [1, 1]
    assert cells["adl_count_diff_mean"][1] is None
    assert cells["adl_count_diff_pairs"][0] == 3
    assert cells["adl_count_diff_mean"][0] < 0  # the queue closes against far fewer winners than pro-rata


def test_a_bad_baseline_fails_before_any_run(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\nvenues.binance.adl.rule = ["ranked_queue", "capped_pro_rata"]\n', encoding="utf-8")
    done = cli("sweep", "quickstart", "--grid", str(grid), "--seeds", "2", "--out", str(tmp_path / "s"),
               "--baseline", "rule=random")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --baseline rule=random: no grid cell has these values (the grid has venues.binance.adl.rule: "
        "ranked_queue, capped_pro_rata)"
    )
    assert not (tmp_path / "s").exists()
