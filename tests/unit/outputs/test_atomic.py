"""Atomic writes leave a complete file with the permissions an ordinary write would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from perpstress.outputs.atomic import write_text_atomic


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_atomic_file_has_the_umask_mode_not_mkstemps_private_one(tmp_path: Path) -> None:
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("x")
    atomic = tmp_path / "atomic.txt"
    write_text_atomic(atomic, "hello")
    assert atomic.read_text() == "hello"
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode)
    assert not list(tmp_path.glob(".atomic.txt.*"))
