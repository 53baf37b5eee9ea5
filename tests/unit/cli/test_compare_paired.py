"""``perpstress compare`` with several runs per side, paired by seed: folders of runs, globs and sweep cells, the
seeds only one side has, and the errors a user can make, each one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perpstress import Scenario
from perpstress.outputs.paired import paired_headlines, resolve_runs
from perpstress.sweep import parse_grid, plan_sweep, run_sweep

TINY = Scenario.load("quickstart").with_(name="tiny", duration_s=20, shock__at_s=5, shock__drift_s=10)
GRID = parse_grid({"grid": {"venues.binance.adl.rule": ["ranked_queue", "capped_pro_rata"]}}, "rules.toml")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two ADL rules on Binance x 3 seeds, full run directories."""
    root = tmp_path_factory.mktemp("paired-cli") / "sweep"
    run_sweep(plan_sweep(TINY, GRID, 3, scale=0.05), root, executor="serial", report=False)
    return root


@pytest.fixture(scope="module")
def folders(sweep_dir: Path) -> Path:
    """``runs/queue/seed-i`` and ``runs/capped/seed-i`` copied from the sweep; capped lacks the last seed."""
    root = sweep_dir.parent / "runs"
    for name, cell in (("queue", 0), ("capped", 1)):
        seeds = resolve_runs(f"{sweep_dir}@{cell}").runs
        runs = [seeds[s] for s in sorted(seeds)[: 2 if name == "capped" else 3]]
        for i, run in enumerate(runs):
            shutil.copytree(run, root / name / f"seed-{i}")
    return root


def test_two_sweep_cells_are_paired_by_seed(sweep_dir: Path) -> None:
    out = cli("compare", f"{sweep_dir}@0", f"{sweep_dir}@1")
    assert out.returncode == 0, out.stderr
    for text in ("paired by seed", "A mean", "B mean", "paired 95% CI", "unpaired 95% CI", "Auto-deleveraged",
                 "ADL fills", "3 seeds paired; money conserved in every run"):  # fmt: skip
        assert text in out.stdout, text
    page = sweep_dir / "compare-sweep-cell0-vs-sweep-cell1.html"
    assert f"wrote {page}" in out.stdout  # in the sweep's folder, named after the two cells
    html = page.read_text(encoding="utf-8")
    assert 'id="chart-differences"' in html
    assert 'id="chart-prices"' in html  # the first common seed's runs overlaid


def test_the_table_holds_the_paired_numbers(sweep_dir: Path) -> None:
    a, b = resolve_runs(f"{sweep_dir}@0"), resolve_runs(f"{sweep_dir}@1")
    rows = {r.key: r for r in paired_headlines(a, b)}
    fills = rows["adl_count"]
    per_seed = [b.summaries[s]["adl"]["count"] - a.summaries[s]["adl"]["count"] for s in sorted(a.runs)]
    assert fills.diff.differences == tuple(float(x) for x in per_seed)
    assert fills.diff.mean == pytest.approx(sum(per_seed) / 3)
    assert fills.diff.paired_low <= fills.diff.mean <= fills.diff.paired_high
    assert "money_conservation_error_usd" not in rows  # a check, not a policy number: reported as a sentence


def test_folders_of_runs_and_globs_report_the_unmatched_seeds(folders: Path) -> None:
    out = cli("compare", str(folders / "queue"), str(folders / "capped"), "--no-html")
    assert out.returncode == 0, out.stderr
    seeds = sorted(resolve_runs(str(folders / "queue")).runs)
    assert f"2 seeds paired; only in A (left out): {seeds[2]}; money conserved in every run" in out.stdout
    assert "wrote" not in out.stdout
    globbed = cli("compare", str(folders / "queue" / "seed-*"), str(folders / "capped" / "seed-*"), cwd=folders)
    assert globbed.returncode == 0, globbed.stderr
    assert "2 seeds paired" in globbed.stdout
    assert f"wrote {folders / 'compare-seed-vs-seed.html'}" in globbed.stdout  # beside all runs; a glob's last part


def test_one_run_per_side_is_the_two_run_comparison(folders: Path) -> None:
    out = cli("compare", str(folders / "queue" / "seed-0"), str(folders / "capped" / "seed-0"), "--no-html")
    assert out.returncode == 0, out.stderr
    assert "paired by seed" not in out.stdout
    assert "A mean" not in out.stdout
    assert "B - A" in out.stdout
    assert "Money conserved" in out.stdout


def test_errors_are_one_line(sweep_dir: Path, folders: Path, tmp_path: Path) -> None:
    cases = {
        (str(sweep_dir), f"{sweep_dir}@1"): f"error: {sweep_dir}: the sweep has 2 cells; name one as {sweep_dir}@CELL",
        (f"{sweep_dir}@2", f"{sweep_dir}@1"): f"error: {sweep_dir}@2: @2: no such cell; the sweep has cells 0 to 1",
        (f"{folders / 'queue'}@1", f"{sweep_dir}@1"): "is not a sweep directory (no sweep.json), so @1 names nothing",
        (str(tmp_path / "nowhere-*"), f"{sweep_dir}@1"): "not a run directory (no summary.json)",
    }
    for (a, b), message in cases.items():
        out = cli("compare", a, b, "--no-html")
        assert out.returncode == 2, (a, b, out.stdout)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert message in out.stderr, out.stderr
    both = tmp_path / "both"
    shutil.copytree(folders / "queue" / "seed-0", both / "x")
    shutil.copytree(folders / "queue" / "seed-0", both / "y")
    out = cli("compare", str(both), str(folders / "capped"))
    assert out.returncode == 2
    assert f"{both / 'x'} and {both / 'y'} both have seed" in out.stderr
    other = tmp_path / "other"
    shutil.copytree(folders / "queue" / "seed-2", other / "s")  # the one seed capped lacks
    shutil.copytree(folders / "queue" / "seed-2", other / "t")
    out = cli("compare", str(other / "s"), str(folders / "capped"))
    assert out.returncode == 2
    assert "no seed in common (1 and 2 runs), so nothing to pair" in out.stderr
