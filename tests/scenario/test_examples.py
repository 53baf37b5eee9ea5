"""Every script in ``examples/`` runs to the end and its own checks pass (each asserts on its results).

The scripts run as a user runs them: a subprocess, in an empty working directory, importing the perpstress under
test (its ``src`` is put first on ``PYTHONPATH``, the caller's ``PYTHONPATH`` kept after it). A script whose
first lines hold the comment ``# example: slow`` (one that takes minutes) runs only with ``-m slow``; the rest run
in the default suite, so CI executes them. ``docs/api.md``'s first Python snippet runs the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import perpstress

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
SLOW_MARK = "# example: slow"


def _param(script: Path) -> object:
    head = script.read_text(encoding="utf-8").splitlines()[:40]
    marks = [pytest.mark.slow] if any(line.strip() == SLOW_MARK for line in head) else []
    return pytest.param(script, id=script.name, marks=marks)


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    src = str(Path(perpstress.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_there_are_examples() -> None:
    assert (ROOT / "examples" / "notebook_quickstart.py") in EXAMPLES


@pytest.mark.parametrize("script", [_param(s) for s in EXAMPLES])
def test_example_runs_and_its_checks_pass(script: Path, tmp_path: Path) -> None:
    done = run_python([str(script)], tmp_path)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert list(tmp_path.iterdir()) == [], "an example left files in its working directory"


def test_the_api_page_snippet_runs(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", page, re.DOTALL)
    assert snippet is not None, "docs/api.md has no ```python block"
    done = run_python(["-c", snippet.group(1)], tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
