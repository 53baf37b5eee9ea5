"""``perpstress run --report``, ``perpstress report`` and ``perpstress compare``, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Quickstart at a tenth of its crowd, run with ``--report``."""
    target = tmp_path_factory.mktemp("cli-runs") / "qs"
    out = cli("run", "quickstart", "--scale", "0.1", "--out", str(target), "--report")
    assert out.returncode == 0, out.stderr
    assert f"wrote {target / 'report.html'}" in out.stdout
    return target


def test_run_with_report_writes_the_page_into_the_run(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "quickstart, seed 7" in page


def test_report_command(run_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "pages" / "qs.html"
    out = cli("report", str(run_dir), "--out", str(elsewhere))
    assert out.returncode == 0, out.stderr
    assert f"wrote {elsewhere}" in out.stdout
    assert elsewhere.read_text(encoding="utf-8") == (run_dir / "report.html").read_text(encoding="utf-8")


def test_compare_prints_the_table_and_writes_the_page(run_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = cli("compare", str(run_dir), str(run_dir), cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    for text in ("B - A", "Liquidated", "Insurance fund binance", "Money conserved", "same"):
        assert text in out.stdout
    page = run_dir.resolve().parent / f"compare-{run_dir.name}-vs-{run_dir.name}.html"
    assert page.is_file()  # default: beside the runs, not in the current directory
    assert not list(elsewhere.iterdir())
    out = cli("compare", str(run_dir), str(run_dir), "--no-html", cwd=tmp_path / "..")
    assert out.returncode == 0, out.stderr
    assert "wrote" not in out.stdout


def test_a_missing_run_directory_is_one_line(tmp_path: Path) -> None:
    out = cli("report", str(tmp_path / "nowhere"))
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path / 'nowhere'}: no such run directory"
    (tmp_path / "half").mkdir()
    out = cli("compare", str(tmp_path / "half"), str(tmp_path / "half"))
    assert out.returncode == 2
    assert "not a run directory (no summary.json)" in out.stderr
    assert "Traceback" not in out.stderr
