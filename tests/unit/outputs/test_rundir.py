"""Run directories appear complete or not at all."""

from __future__ import annotations

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
    (target / "keep").write_text("x")
    with pytest.raises(UsageError, match="already exists"), run_directory(target):
        pass
    assert (target / "keep").exists()
    with run_directory(target, overwrite=True) as out:
        out.text("new", "y")
    assert (target / "new").exists()
    assert not (target / "keep").exists()


def test_equal_tables_give_equal_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        with run_directory(tmp_path / name) as out:
            out.table("t.parquet", pa.table({"x": [1.5, 2.5], "s": ["u", "v"]}))
    assert (tmp_path / "a" / "t.parquet").read_bytes() == (tmp_path / "b" / "t.parquet").read_bytes()
