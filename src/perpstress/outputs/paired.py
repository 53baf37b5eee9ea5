"""Two sets of runs compared seed by seed: what ``perpstress compare`` does when a side holds several runs.

A side is given as one of:

- a run directory (``runs/queue``): one run;
- a folder of run directories (``runs/queue/``, holding ``seed-1/``, ``seed-2/`` ...): every run under it;
- a glob, quoted so the shell leaves it alone (``'runs/queue-*'``): every run directory it matches;
- a sweep cell, ``SWEEP@CELL`` (``sweeps/adl-rules@1``): the finished runs of that grid cell, as ``perpstress sweep``
  numbers the cells; a sweep with one cell may be given without ``@``.

Runs are matched by the ``seed`` in their ``summary.json``; a side may hold one run per seed. Seeds only one side
has are named and left out. Per headline number (:func:`~perpstress.outputs.headline.headline_numbers`) the pairs
give the mean of B minus A with its paired 95 % interval and the unpaired interval of the difference of means
(:func:`perpstress.stats.paired_difference`).
"""

from __future__ import annotations

import glob
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perpstress.errors import UsageError
from perpstress.outputs.headline import Headline, Tone, headline_numbers, percent, usd
from perpstress.outputs.runs import find_runs, read_summary
from perpstress.stats import PairedDifference, paired_difference

SWEEP_MANIFEST = "sweep.json"
CHECKS = frozenset({"money_conservation_error_usd"})
"""Headline numbers that check a run rather than measure a policy: not paired (see :func:`unconserved`)."""
CELL_MARK = "@"
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class RunSet:
    """One side of a comparison: its runs by seed."""

    spec: str
    """The side as the user gave it."""
    runs: dict[int, Path]
    summaries: dict[int, dict[str, Any]]

    @property
    def name(self) -> str:
        """A short name for file names and titles: the last path part, with ``-cellN`` for a sweep cell."""
        path, _, cell = self.spec.rstrip("/").partition(CELL_MARK)
        base = Path(path).name or "runs"
        base = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in base).strip("-") or "runs"
        return f"{base}-cell{cell}" if cell else base


def resolve_runs(spec: str) -> RunSet:
    """The runs a side names (see the module's list); :class:`UsageError` naming the side when it holds none, or
    two runs of one seed."""
    paths = _side_paths(spec)
    if not paths:
        raise UsageError(f"{spec}: not a run directory (no summary.json), and no run directories under it")
    runs: dict[int, Path] = {}
    summaries: dict[int, dict[str, Any]] = {}
    for path in paths:
        summary = read_summary(path / "summary.json")
        seed = summary.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise UsageError(f"{path / 'summary.json'}: seed: no integer seed, so the run cannot be paired")
        if seed in runs:
            raise UsageError(f"{spec}: {runs[seed]} and {path} both have seed {seed}; a side holds one run per seed")
        runs[seed], summaries[seed] = path, summary
    return RunSet(spec, runs, summaries)


def _side_paths(spec: str) -> list[Path]:
    path_text, mark, cell_text = spec.partition(CELL_MARK)
    root = Path(path_text)
    if mark and (root / SWEEP_MANIFEST).is_file():
        return _sweep_cell(root, spec, cell_text)
    if (root / SWEEP_MANIFEST).is_file() and not mark:
        return _sweep_cell(root, spec, None)
    if Path(spec).is_dir():
        return find_runs(Path(spec))
    if GLOB_CHARS & set(spec):
        found: list[Path] = []
        for match in sorted(glob.glob(spec)):
            found.extend(p for p in find_runs(Path(match)) if p not in found)
        return found
    if mark and root.is_dir():
        raise UsageError(
            f"{spec}: {root} is not a sweep directory (no {SWEEP_MANIFEST}), so @{cell_text} names nothing"
        )
    raise UsageError(f"{spec}: no such run directory, folder of runs, sweep cell or glob match")


def _sweep_cell(root: Path, spec: str, cell_text: str | None) -> list[Path]:
    try:
        manifest = json.loads((root / SWEEP_MANIFEST).read_text(encoding="utf-8"))
        cells: list[str] = list(manifest["cells"])
        planned: list[dict[str, Any]] = list(manifest["runs"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"{root / SWEEP_MANIFEST}: not a sweep manifest ({exc})") from None
    if cell_text is None:
        if len(cells) != 1:
            listing = "; ".join(f"@{c}: {label}" for c, label in enumerate(cells))
            raise UsageError(f"{spec}: the sweep has {len(cells)} cells; name one as {spec}@CELL ({listing})")
        cell = 0
    elif not cell_text.isdigit() or int(cell_text) >= len(cells):
        raise UsageError(f"{spec}: @{cell_text}: no such cell; the sweep has cells 0 to {len(cells) - 1}")
    else:
        cell = int(cell_text)
    keys = [r["key"] for r in planned if r.get("cell") == cell]
    return [root / "runs" / k for k in dict.fromkeys(keys) if (root / "runs" / k / "summary.json").is_file()]


@dataclass(frozen=True)
class PairedHeadline:
    """One headline number over two sets of runs paired by seed, as ``perpstress compare`` prints it."""

    key: str
    label: str
    unit: str
    diff: PairedDifference
    text_a: str
    """A's mean over the paired seeds."""
    text_b: str
    change: str
    """The mean of B minus A."""
    paired: str
    """The paired 95 % interval of the mean difference."""
    unpaired: str
    """The unpaired 95 % interval of the difference of means."""
    verdict: Tone
    """"good"/"bad" by the number's ``better`` direction when the paired interval excludes zero, else neutral."""


def paired_headlines(a: RunSet, b: RunSet) -> list[PairedHeadline]:
    """Every headline number the runs have, in the order of A's first run (then B's extra keys), B minus A."""
    per_a = {s: headline_numbers(summary) for s, summary in a.summaries.items()}
    per_b = {s: headline_numbers(summary) for s, summary in b.summaries.items()}
    refs: dict[str, Headline] = {}
    for side in (per_a, per_b):
        for seed in sorted(side):
            for h in side[seed]:
                refs.setdefault(h.key, h)
    out = []
    for key, ref in refs.items():
        if key in CHECKS:
            continue
        va = {s: _value(hs, key) for s, hs in per_a.items()}
        vb = {s: _value(hs, key) for s, hs in per_b.items()}
        d = paired_difference(va, vb)
        if d.pairs == 0:
            continue
        verdict: Tone = "neutral"
        if ref.better is not None and math.isfinite(d.paired_low) and (d.paired_low > 0 or d.paired_high < 0):
            verdict = "good" if (d.mean < 0) == (ref.better == "lower") else "bad"
        out.append(
            PairedHeadline(
                key, ref.label, ref.unit, d, amount(ref.unit, d.mean_a), amount(ref.unit, d.mean_b),
                amount(ref.unit, d.mean, signed=True), interval(ref.unit, d.paired_low, d.paired_high),
                interval(ref.unit, d.unpaired_low, d.unpaired_high), verdict,
            )
        )  # fmt: skip
    return out


def _value(headlines: Sequence[Headline], key: str) -> float | None:
    for h in headlines:
        if h.key == key:
            return None if h.value is None else float(h.value)
    return None


def amount(unit: str, value: float, signed: bool = False) -> str:
    """A mean or a difference in the number's unit: ``$1.2M``, ``+3,471``, ``42.0%`` (a difference of fractions in
    percentage points, ``+1.5 pp``)."""
    if not math.isfinite(value):
        return "-"
    sign = "+" if signed and value > 0 else ""
    if unit == "usd":
        return sign + usd(value)
    if unit == "fraction":
        return f"{value * 100:+.1f} pp" if signed else percent(value)
    if unit == "count":
        return f"{value:{'+' if signed else ''},.0f}" if abs(value) >= 100 else f"{sign}{value:.3g}"
    if unit == "seconds":
        return f"{sign}{value:,.4g} s"
    return f"{sign}{value:.4g}"


def interval(unit: str, low: float, high: float) -> str:
    """``low .. high`` in the number's unit, ``-`` without an interval (fewer than two pairs)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"{amount(unit, low, signed=True)} .. {amount(unit, high, signed=True)}"


def unconserved(*sides: RunSet) -> list[Path]:
    """Runs whose money-conservation check failed (the headline's "Money conserved: NO")."""
    out = []
    for side in sides:
        for seed in sorted(side.runs):
            for h in headline_numbers(side.summaries[seed]):
                if h.key == "money_conservation_error_usd" and h.text != "yes":
                    out.append(side.runs[seed])
    return out


def seeds_note(a: RunSet, b: RunSet) -> str:
    """Which seeds were paired and which only one side has (plain text)."""
    common = sorted(a.runs.keys() & b.runs.keys())
    parts = [f"{len(common)} seed{'s' if len(common) != 1 else ''} paired"]
    for label, side, other in (("A", a, b), ("B", b, a)):
        only = sorted(side.runs.keys() - other.runs.keys())
        if only:
            parts.append(f"only in {label} (left out): {', '.join(str(s) for s in only)}")
    bad = unconserved(a, b)
    parts.append(f"money NOT conserved in {', '.join(map(str, bad))}" if bad else "money conserved in every run")
    return "; ".join(parts)
