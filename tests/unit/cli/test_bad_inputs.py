"""Malformed inputs, as a user would give them: every case exits 2 with short ``error:`` lines naming the file and
the field, never a traceback or an internal error, never a hang, and leaves nothing in the output folder.

The corpus is :mod:`badinputs` (about 1,500 cases across scenario, grid, positions and command-line classes). The
default run takes an even sample of every class; ``-m slow`` runs them all.
"""

from __future__ import annotations

import collections
import contextlib
import io
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from badinputs import Case, cases
from perpstress.cli import MAX_PROBLEMS, main

CASE_SECONDS = 60
"""A case that has not ended by then hangs."""
SAMPLE_EVERY = 12


class HangError(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: FrameType | None) -> None:
        raise HangError

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def invoke(args: list[str]) -> tuple[int, str]:
    """Run ``perpstress ARGS`` in this process as the console script does; its exit code and stderr."""
    err = io.StringIO()
    saved = sys.argv, sys.stdout, sys.stderr
    sys.argv, sys.stdout, sys.stderr = ["perpstress", *args], io.StringIO(), err
    code: int | str | None = 0
    try:
        with deadline(CASE_SECONDS):
            main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv, sys.stdout, sys.stderr = saved
    return (code if isinstance(code, int) else 1), err.getvalue()


def problems_with(case: Case, code: int, stderr: str, out: Path) -> list[str]:
    lines = stderr.strip().splitlines()
    found = []
    if code != 2:
        found.append(f"exit {code}")
    if not lines or not all(line.startswith("error: ") for line in lines):
        found.append("not all lines are 'error: ...'")
    if len(lines) > MAX_PROBLEMS + 1:
        found.append(f"{len(lines)} lines")
    if "internal error" in stderr or "Traceback" in stderr:
        found.append("internal error")
    first = lines[0] if lines else ""
    for name in case.names:
        if name not in stderr:
            found.append(f"does not name {name!r}")
    if case.names and case.names[0] not in first and not case.names[0].startswith("--"):
        found.append(f"first line does not name {case.names[0]!r}")
    if out.exists() and any(out.rglob("*")):
        found.append(f"left {sorted(p.name for p in out.rglob('*'))[:5]} in the output folder")
    return found


def check_cases(selected: list[Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failures = []
    for i, case in enumerate(selected):
        out = tmp_path / f"out-{i}"
        args = [a.replace("{out}", str(out)) for a in case.args]
        monkeypatch.chdir(tmp_path / "cwd")  # a run without --out writes runs/NAME-seedN here
        try:
            code, stderr = invoke(args)
        except HangError:
            failures.append(f"{case.kind} | {case.name}: hangs")
            continue
        runs = tmp_path / "cwd" / "runs"
        found = problems_with(case, code, stderr, out)
        if runs.exists() and any(runs.rglob("*")):
            found.append("wrote under runs/")
        if any(p for p in tmp_path.parent.iterdir() if p.name in {"escape", "abs"}):
            found.append("wrote outside its folder")
        if found:
            failures.append(f"{case.kind} | {case.name}: {'; '.join(found)} | {stderr.strip()[:300]}")
    assert not failures, f"{len(failures)} of {len(selected)} cases fail:\n" + "\n".join(failures[:40])


@pytest.fixture
def corpus(tmp_path: Path) -> list[Case]:
    (tmp_path / "cwd").mkdir()
    return cases(tmp_path / "inputs")


def test_the_corpus_is_large_and_covers_every_class(corpus: list[Case]) -> None:
    counts = collections.Counter(c.kind for c in corpus)
    assert len(corpus) >= 1000, counts
    assert set(counts) >= {"number", "shape", "missing", "unknown", "bytes", "name", "size", "command line",
                           "grid number", "grid shape", "positions csv", "positions parquet"}  # fmt: skip


def test_a_sample_of_every_class_is_refused_cleanly(
    corpus: list[Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_kind: dict[str, list[Case]] = collections.defaultdict(list)
    for case in corpus:
        by_kind[case.kind].append(case)
    sample = [c for group in by_kind.values() for c in group[::SAMPLE_EVERY] or group[:1]]
    check_cases(sample, tmp_path, monkeypatch)


@pytest.mark.slow
def test_every_case_is_refused_cleanly(corpus: list[Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_cases(corpus, tmp_path, monkeypatch)
