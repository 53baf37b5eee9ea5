"""Validation over seeds: a target holds when it passes on at least 80 % of the runs, not on one lucky draw.

:func:`validate_runs` judges every run (each keeps its own ``validation.json``) and, per target, counts the passes,
gives the pass rate and the 5th-95th percentile of the simulated figure over the runs that measured it, and says
whether the target holds (``pass_rate >= HOLD_SHARE``; an n/a counts as a miss); the collateral lows shown beside
the targets get the same percentiles. :func:`find_runs` collects the run directories under a folder (a sweep
directory's ``runs/``, an attribution's, or any folder of runs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perpstress.errors import UsageError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.validation.targets import evaluate, format_value, load_targets, report

HOLD_SHARE = 0.8
"""A target holds when it passes on at least this share of the runs."""


def find_runs(path: str | Path) -> list[Path]:
    """``path`` itself when it is a run directory (it holds ``summary.json``), else every run directory below it,
    sorted by path."""
    root = Path(path)
    if (root / "summary.json").is_file():
        return [root]
    if not root.is_dir():
        raise UsageError(f"{root}: no such run directory")
    runs = sorted(p.parent for p in root.rglob("summary.json") if not p.parent.name.startswith("."))
    if not runs:
        raise UsageError(f"{root}: holds no run directory (no summary.json below it)")
    return runs


def validate_runs(run_dirs: Sequence[str | Path], write: bool = True) -> dict[str, Any]:
    """Judge each run (``write``: each run's ``validation.json``) and summarise every target over the runs."""
    spec = load_targets()
    per_run = []
    lows: list[list[dict[str, Any]]] = []
    for d in run_dirs:
        results = evaluate(d, spec)
        out = report(d, results, spec.event, spec.collateral)
        if write:
            write_text_atomic(Path(d) / "validation.json", json.dumps(out, indent=2, allow_nan=False) + "\n")
        summary = json.loads((Path(d) / "summary.json").read_text(encoding="utf-8"))
        per_run.append((str(d), summary.get("seed"), results))
        lows.append(out["collateral"])
    n = len(per_run)
    targets = []
    for i, t in enumerate(spec.targets):
        outcomes = [r[i] for _, _, r in per_run]
        passes = sum(o.status == "pass" for o in outcomes)
        values = np.array([float(o.measurement.value) for o in outcomes if o.measurement.value is not None])
        p5, p95 = (float(np.percentile(values, 5)), float(np.percentile(values, 95))) if values.size else (None, None)
        rate = passes / n if n else 0.0
        targets.append({
            "id": t.id, "title": t.title, "unit": t.unit, "real_text": t.real_text,
            "tolerance_text": f"{format_value(t.unit, t.low)} to {format_value(t.unit, t.high)}",
            "passes": passes, "fails": sum(o.status == "fail" for o in outcomes),
            "na": sum(o.status == "n/a" for o in outcomes), "runs": n, "pass_rate": rate,
            "holds": n > 0 and rate >= HOLD_SHARE, "p5": p5, "p95": p95,
            "p5_p95_text": "n/a" if p5 is None or p95 is None
            else f"{format_value(t.unit, p5)} to {format_value(t.unit, p95)}",
        })  # fmt: skip
    return {
        "event": spec.event.name,
        "hold_share": HOLD_SHARE,
        "runs": [{"run": d, "seed": s, "passes": sum(o.status == "pass" for o in r)} for d, s, r in per_run],
        "held": sum(t["holds"] for t in targets),
        "targets": targets,
        "collateral": [_collateral_over_runs([run_lows[i] for run_lows in lows]) for i in range(len(spec.collateral))],
    }


def _collateral_over_runs(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One collateral asset's lows over the runs: the 5th-95th percentile of each figure the runs measured."""
    first = entries[0]
    out = {k: first[k] for k in ("asset", "venue", "title", "real", "real_text", "source", "source_label")}
    for name in ("book_low", "margin_low", "book_discount", "liquidations_caused"):
        values = np.array([float(e[name]) for e in entries if e.get(name) is not None])
        out[name] = (
            {"p5": float(np.percentile(values, 5)), "p95": float(np.percentile(values, 95)), "runs": int(values.size)}
            if values.size
            else None
        )
    return out
