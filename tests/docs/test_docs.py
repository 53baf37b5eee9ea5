"""The docs are run: every console block's commands print what the block shows (``scripts/check_docs.py``).

The quick how-tos run in the default suite; the README (the October scenario, a sweep) and the how-tos that run
several scenarios run with ``-m slow``. ``python scripts/check_docs.py --write FILE`` rewrites a block that drifted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_docs", ROOT / "scripts" / "check_docs.py")
assert spec is not None
assert spec.loader is not None
check_docs = importlib.util.module_from_spec(spec)
sys.modules["check_docs"] = check_docs  # its dataclasses look their module up
spec.loader.exec_module(check_docs)

HOWTOS = sorted((ROOT / "docs" / "howto").glob("*.md"))
SLOW = [ROOT / "README.md", *(ROOT / "docs" / "howto" / f for f in ("compare-adl-rules.md", "query-many-runs.md"))]
"""Documents whose blocks run many whole scenarios (minutes): with ``-m slow``."""
FAST = [p for p in HOWTOS if p not in SLOW]


def test_every_document_with_console_blocks_is_checked() -> None:
    with_console = {p for p in [ROOT / "README.md", *ROOT.glob("docs/**/*.md")] if "```console" in p.read_text()}
    assert with_console <= {*HOWTOS, *SLOW}


@pytest.mark.parametrize("doc", FAST, ids=lambda p: p.name)
def test_how_to(doc: Path) -> None:
    assert check_docs.run_document(doc, write=False) == []


@pytest.mark.slow
@pytest.mark.parametrize("doc", SLOW, ids=lambda p: p.name)
def test_long_document(doc: Path) -> None:
    assert check_docs.run_document(doc, write=False) == []


def test_a_drifted_block_is_found(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```console\n$ perpstress --version\nperpstress 0.0.0\n```\n")
    (problem,) = check_docs.run_document(doc, write=False)
    assert "differs from what its commands print" in problem
    check_docs.run_document(doc, write=True)
    assert check_docs.run_document(doc, write=False) == []
    assert "perpstress 0.1.0" in doc.read_text()
