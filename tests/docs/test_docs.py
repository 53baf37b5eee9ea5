"""The docs are run: every console block's commands print what the block shows (``scripts/check_docs.py``).

Every document in README.md and docs/ is run. The quick ones run in the default suite; the README, the tutorial
(the October scenario), the sweeps page and the how-tos that run several scenarios run with ``-m slow``.
``python scripts/check_docs.py --write FILE`` rewrites a block or a number that drifted.
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

DOCUMENTS = sorted([ROOT / "README.md", *ROOT.glob("docs/**/*.md")])
"""Every document is run: its console blocks compared, its bash and python blocks run, its derived numbers
checked."""
SLOW = [ROOT / "README.md", *(ROOT / "docs" / f for f in ("tutorial.md", "sweeps.md", "howto/compare-adl-rules.md",
        "howto/query-many-runs.md", "howto/change-a-venue-rule.md", "howto/attribute-a-crash.md"))]  # fmt: skip
"""Documents whose blocks run many or large whole scenarios (minutes): with ``-m slow``."""
FAST = [p for p in DOCUMENTS if p not in SLOW]


def test_every_document_is_run() -> None:
    assert set(SLOW) <= set(DOCUMENTS)
    assert {p.name for p in FAST} >= {"api.md", "validation.md", "bring-your-own-positions.md", "concepts.md"}


def test_no_command_is_left_out_unless_it_installs_or_runs_for_long() -> None:
    """A skipped block is the set-up (``pip install``) or a full-scale run; everything else is run."""
    for doc in DOCUMENTS:
        for b in check_docs.blocks(doc.read_text(encoding="utf-8").splitlines()):
            if b.skip:
                text = "\n".join(b.lines)
                assert "pip install" in text or "--scale" not in text, f"{doc.name}:{b.start + 1} is skipped"


@pytest.mark.parametrize("doc", FAST, ids=lambda p: p.name)
def test_document(doc: Path) -> None:
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


def test_a_drifted_number_in_the_prose_is_found(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!--\n```python\nsteps = 600\n```\n-->\n\nThe run takes <!--= f'{steps:,}' -->500<!--/--> steps"
        " and <!--= steps // 60 -->10<!--/--> minutes. Written `<!--= EXPR -->N<!--/-->`.\n"
    )
    (problem,) = check_docs.run_document(doc, write=False)
    assert "says '500' where" in problem
    check_docs.run_document(doc, write=True)
    assert check_docs.run_document(doc, write=False) == []
    assert "-->600<!--/--> steps and <!--= steps // 60 -->10<!--/--> minutes" in doc.read_text()


def test_a_marker_that_raises_is_a_problem(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("Nothing defines it: <!--= undefined_name -->1<!--/-->.\n")
    (problem,) = check_docs.run_document(doc, write=False)
    assert "raises NameError" in problem


def test_a_timing_matches_whatever_its_width() -> None:
    """A centred title moves with the width of its wall-clock figure; that is not a drift."""
    assert check_docs.normal("     run: 600 steps in 4.0 s") == check_docs.normal("    run: 600 steps in 10.4 s")
    assert check_docs.normal("run: 600 steps") != check_docs.normal("run: 700 steps")
