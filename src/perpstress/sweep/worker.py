"""One sweep run, as a worker executes it: build the cell's scenario from the shared base, simulate, return.

A worker never writes into the sweep directory. It returns the run's summary and, unless the sweep keeps summaries
only, the bytes of the run directory's files; the driver writes them atomically. So workers need no shared file
system (a Ray cluster's nodes may not have one), a killed worker cannot leave half a run behind, and the driver is
the only writer of the sweep directory.

What the worker receives per run is small (the cell's path values, the seed, the key): the base scenario is sent
once (Ray: ``ray.put`` into the object store; process pool: the worker initialiser).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perpstress.config.scenario import Scenario
from perpstress.errors import PerpstressError
from perpstress.sweep.grid import apply_cell
from perpstress.sweep.plan import run_key


@dataclass(frozen=True)
class RunTask:
    """What a worker needs for one run besides the shared base scenario."""

    key: str
    cell: dict[str, Any]
    seed: int
    scale: float
    summaries_only: bool


@dataclass
class RunOutcome:
    key: str
    summary: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    """Relative path -> bytes of the run directory (empty with ``--summaries-only``)."""


class KeyMismatchError(PerpstressError):
    """The worker resolved a run to another scenario than the driver (a different perpstress on that node)."""


def execute(base: Scenario, task: RunTask) -> RunOutcome:
    """Simulate one run of a sweep."""
    from perpstress.engine.run import run_scenario

    scenario = apply_cell(base, task.cell).model_copy(update={"seed": task.seed})
    key = run_key(scenario, task.scale)
    if key != task.key:
        raise KeyMismatchError(
            f"run {task.key}: this worker resolves it to key {key}; every node must run the same perpstress version"
        )
    if task.summaries_only:
        return RunOutcome(key, run_scenario(scenario, None, scale=task.scale).summary)
    with tempfile.TemporaryDirectory(prefix="perpstress-run-") as tmp:
        root = Path(tmp) / "run"
        result = run_scenario(scenario, root, scale=task.scale)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return RunOutcome(key, result.summary, files)


# --- process-pool workers: the base scenario arrives once, through the initialiser ------------------------------

_BASE: Scenario | None = None


def init_process_worker(base: Scenario) -> None:
    global _BASE
    _BASE = base


def execute_in_process_worker(task: RunTask) -> RunOutcome:
    if _BASE is None:
        raise RuntimeError("process worker used before init_process_worker")
    return execute(_BASE, task)
