"""Run directories appear complete or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from perpstress.errors import UsageError
from perpstress.outputs.rundir import run_directory


def test_complete_run_appears_in_one_piece(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with run_directory(target) as out:
        out.json("summary.json", {"steps": 3})
        out.table("events/adl.parquet", pa.table({"x": [1, 2]}))
        assert not target.exists()  # nothing under the final name while writing
    assert (target / "summary.json").is_file()
    assert (target / "events" / "adl.parquet").is_file()
    assert not list(tmp_path.glob(".run.partial-*"))


def test_interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "run"

    def interrupted_run() -> None:
        with run_directory(target) as out:
            out.json("summary.json", {"steps": 3})
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_run()
    assert not target.exists()
    assert not list(tmp_path.iterdir())


def test_existing_directory_is_not_overwritten_by_default(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "summary.json").write_text("{}")
    with pytest.raises(UsageError, match="already exists"), run_directory(target):
        pass
    assert (target / "summary.json").exists()
    with run_directory(target, overwrite=True) as out:
        out.text("new", "y")
    assert (target / "new").exists()
    assert not (target / "summary.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # the old run set aside is gone


def test_overwrite_replaces_only_run_directories(tmp_path: Path) -> None:
    target = tmp_path / "notes"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(UsageError, match="not a run directory"), run_directory(target, overwrite=True):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"), run_directory(tmp_path / "file", overwrite=True):
        pass
    assert (target / "keep").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    with run_directory(empty, overwrite=True) as out:
        out.text("summary.json", "{}")
    assert (empty / "summary.json").exists()


def test_a_failed_swap_puts_the_old_run_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "summary.json").write_text("old")
    real = os.replace
    calls: list[str] = []

    def interrupted(src: str | Path, dst: str | Path) -> None:
        calls.append(Path(src).name)
        if ".partial-" in Path(src).name:
            raise KeyboardInterrupt  # killed between setting the old run aside and renaming the new one in
        real(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt), run_directory(target, overwrite=True) as out:
        out.text("summary.json", "new")
    assert calls[0] == "run"  # the old run was renamed aside first
    assert (target / "summary.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_equal_tables_give_equal_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        with run_directory(tmp_path / name) as out:
            out.table("t.parquet", pa.table({"x": [1.5, 2.5], "s": ["u", "v"]}))
    assert (tmp_path / "a" / "t.parquet").read_bytes() == (tmp_path / "b" / "t.parquet").read_bytes()
