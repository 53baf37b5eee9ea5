"""The example studies run and their own checks pass (each asserts on its results; under a minute each)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("fund_size_vs_adl.py", "checks passed: ADL at the venue never grows with its fund"),
        ("adl_rules.py", "check passed: every reproduced number within"),
    ],
)
def test_example_runs_and_its_checks_pass(script: str, expected: str) -> None:
    if script == "adl_rules.py":
        from perpstress.studies.adl_waves import default_data_dir

        if not default_data_dir().is_dir():
            pytest.skip(f"published ADL outputs not found at {default_data_dir()}")
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
