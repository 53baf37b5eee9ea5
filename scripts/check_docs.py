"""Run the docs: every command a document shows is executed and what it prints compared with what the document says.

Usage::

    python scripts/check_docs.py README.md docs/howto/*.md     # check; exit 1 naming each block that differs
    python scripts/check_docs.py --write README.md    # rewrite every console block with what its commands print

A document is run top to bottom in a fresh temporary folder (``runs/`` and every file it writes land there):

- a fenced block right after ``<!-- file: NAME -->`` is written to ``NAME``; so is a ``toml`` block whose first line
  is ``# NAME.toml``;
- a ``bash`` block runs line by line (``#`` comments dropped) and must succeed; a ``python`` block is executed in one
  namespace per document;
- a ``console`` block's ``$ COMMAND`` lines run in turn, and what each prints (stdout, then stderr) must equal the
  lines under it. Wall-clock figures are not compared: ``in 1.9 s`` and ``(9.9 MB)`` match any number (and a line
  holding one is compared without its indent, which a centred title changes with the figure's width). After
  ``<!-- excerpt -->`` the block's lines need only appear in the output, in order (a table's few rows);
- ``<!-- skip -->`` before a block leaves it out (the set-up commands, a long benchmark);
- a number in the prose is written ``<!--= EXPR -->6.7<!--/-->``: ``EXPR`` is evaluated in the document's Python
  namespace when the document reaches it (after the blocks above it ran) and must print as the text shown (a
  renderer shows only the text; inside inline code it is left alone). A ``python`` block inside an HTML comment
  runs like any other and is not shown: the place to load what the markers read (``validation.json``);
- ``examples/`` is linked into the folder, so ``python examples/NAME.py`` runs the repository's example.

Tables print at their piped width (120 columns), as in the docs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*(file:\s*(?P<file>\S+)|(?P<flag>skip|excerpt))\s*-->\s*$")
VOLATILE = (
    (re.compile(r"\bin \d[\d,]*(\.\d+)? s\b"), "in N s"),
    (re.compile(r"\(\d+(\.\d+)? MB\)"), "(N MB)"),
)
"""Wall-clock figures: any number matches."""
DERIVED = re.compile(r"<!--=\s*(?P<expr>.+?)\s*-->(?P<shown>.*?)<!--/-->")
"""A number in the prose and the expression that gives it."""
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Block:
    lang: str
    lines: list[str]
    start: int
    """Index of the fence's first line in the document."""
    end: int
    """Index of the closing fence."""
    file: str | None = None
    skip: bool = False
    excerpt: bool = False


def blocks(lines: list[str]) -> list[Block]:
    out: list[Block] = []
    i = 0
    pending: dict[str, str | bool] = {}
    while i < len(lines):
        mark = MARK.match(lines[i])
        if mark:
            if mark.group("file"):
                pending["file"] = mark.group("file")
            else:
                pending[str(mark.group("flag"))] = True
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence and fence.group(1):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            b = Block(fence.group(1), lines[i + 1 : j], i, j)
            b.file = str(pending["file"]) if "file" in pending else None
            b.skip, b.excerpt = bool(pending.get("skip")), bool(pending.get("excerpt"))
            if b.file is None and b.lang == "toml" and b.lines and re.fullmatch(r"# [\w.-]+\.toml", b.lines[0]):
                b.file = b.lines[0][2:]
            out.append(b)
            pending = {}
            i = j + 1
            continue
        if lines[i].strip():
            pending = {}
        i += 1
    return out


def normal(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.rstrip()
        for pattern, repl in VOLATILE:
            line, masked = pattern.subn(repl, line)
            if masked:  # a centred title moves with the figure's width
                line = line.strip()
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def shell(command: str, cwd: Path) -> tuple[int, str]:
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1", TERM="dumb")
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    return done.returncode, done.stdout + done.stderr


def console(block: Block, cwd: Path) -> tuple[list[str], list[str], list[str]]:
    """What the block says and what its commands print (each ``$`` line then its output), both with wall-clock
    figures masked, and what they print as printed."""
    raw: list[str] = []
    for line in block.lines:
        if line.startswith("$ "):
            _, output = shell(line[2:], cwd)
            raw += [line, *[x.rstrip() for x in output.rstrip().splitlines()]]
    return normal("\n".join(block.lines)), normal("\n".join(raw)), raw


def matches(block: Block, shown: list[str], printed: list[str]) -> bool:
    if not block.excerpt:
        return shown == printed
    it = iter(printed)
    return all(any(line == p for p in it) for line in shown)


def run_document(path: Path, write: bool) -> list[str]:
    """Run one document; the problems found (or, with ``write``, rewrite its console blocks and derived numbers)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    problems: list[str] = []
    namespace: dict[str, object] = {"__name__": "__docs__"}
    replacements: list[tuple[Block, list[str]]] = []
    derived: list[tuple[int, int, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="perpstress-docs-") as tmp:
        cwd = Path(tmp)
        (cwd / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
        done = 0
        for b in blocks(lines):
            derived += _derive(path, lines, range(done, b.start), namespace, cwd, problems)
            done = b.end + 1
            where = f"{path}:{b.start + 1}"
            if b.skip:
                continue
            if b.file is not None:
                (cwd / b.file).parent.mkdir(parents=True, exist_ok=True)
                (cwd / b.file).write_text("\n".join(b.lines) + "\n", encoding="utf-8")
            elif b.lang == "bash":
                for line in b.lines:
                    command = line.split(" #")[0].strip()
                    if command and not command.startswith("#"):
                        code, output = shell(command, cwd)
                        if code != 0:
                            problems.append(f"{where}: `{command}` exits {code}: {output.strip()[-300:]}")
            elif b.lang == "python":
                buffer = io.StringIO()
                try:
                    with _inside(cwd), contextlib.redirect_stdout(buffer):
                        exec(compile("\n".join(b.lines), where, "exec"), namespace)
                except Exception as exc:  # a doc's example failing is what this finds
                    problems.append(f"{where}: python block raises {type(exc).__name__}: {exc}")
            elif b.lang == "console":
                shown, printed, raw = console(b, cwd)
                if not matches(b, shown, printed):
                    problems.append(f"{where}: console block differs from what its commands print:\n"
                                    + _diff(shown, printed))  # fmt: skip
                if write and not b.excerpt:
                    replacements.append((b, raw))  # timings too: they are what this machine took now
        derived += _derive(path, lines, range(done, len(lines)), namespace, cwd, problems)
    if write and (replacements or derived):
        for i, start, end, value in sorted(derived, reverse=True):  # right to left within a line
            lines[i] = lines[i][:start] + value + lines[i][end:]
        for b, raw in sorted(replacements, key=lambda r: -r[0].start):
            lines[b.start + 1 : b.end] = raw
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return problems


@contextlib.contextmanager
def _inside(cwd: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old)


def _derive(
    path: Path, lines: list[str], where: range, namespace: dict[str, object], cwd: Path, problems: list[str]
) -> list[tuple[int, int, int, str]]:
    """Check the derived numbers on ``lines[where]``; the ones that differ as (line, start, end, value)."""
    out = []
    for i in where:
        for m in DERIVED.finditer(lines[i]):
            if lines[i][: m.start()].count("`") % 2:  # inside inline code: the syntax shown, not a number
                continue
            expr, shown = m.group("expr"), m.group("shown")
            try:
                with _inside(cwd):
                    value = str(eval(expr, namespace))
            except Exception as exc:  # a marker that cannot be evaluated is a problem of the document
                problems.append(f"{path}:{i + 1}: `{expr}` raises {type(exc).__name__}: {exc}")
                continue
            if value != shown:
                problems.append(f"{path}:{i + 1}: the document says {shown!r} where `{expr}` gives {value!r}")
                out.append((i, m.start("shown"), m.end("shown"), value))
    return out


def _diff(shown: list[str], printed: list[str]) -> str:
    import difflib

    return "\n".join(difflib.unified_diff(shown, printed, "the document", "the commands", lineterm="", n=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("documents", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite console blocks with what the commands print")
    args = parser.parse_args(argv)
    problems = []
    for doc in args.documents:
        problems += run_document(doc, args.write)
    for p in problems:
        print(p, file=sys.stderr)
    if args.write:
        print(f"rewrote what differed in {len(args.documents)} document(s)")
        return 0
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["blocks", "main", "run_document"]
