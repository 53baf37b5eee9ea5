"""One sweep run, as a worker executes it: build the cell's scenario from the shared base, simulate, return.

A worker never writes into the sweep directory. It returns the run's summary and, unless the sweep keeps summaries
only, the bytes of the run directory's files; the driver writes them atomically. So workers need no shared file
system (a Ray cluster's nodes may not have one), a killed worker cannot leave half a run behind, and the driver is
the only writer of the sweep directory.

What the worker receives per run is small (the cell's path values, the seed, the key, a population key): the base
scenario and the populations drawn by the driver (:class:`SweepShared`) are sent once (Ray: ``ray.put`` into the
object store, whose NumPy arrays workers read in place, without a copy; process pool: the worker initialiser).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perpstress.config.scenario import Scenario
from perpstress.errors import PerpstressError
from perpstress.population.initial import InitialDraw
from perpstress.sweep.grid import apply_cell
from perpstress.sweep.lifeline import die_with_parent
from perpstress.sweep.plan import run_key


@dataclass(frozen=True)
class RunTask:
    """What a worker needs for one run besides what is shared (:class:`SweepShared`)."""

    key: str
    cell: dict[str, Any]
    seed: int
    scale: float
    summaries_only: bool
    population: str | None = None
    """Key of the shared population the run starts from; ``None``: the run draws its own."""


@dataclass(frozen=True)
class SweepShared:
    """What every run of a sweep shares, sent to each worker once: the base scenario and the populations drawn
    by the driver, by key."""

    base: Scenario
    populations: dict[str, InitialDraw] = field(default_factory=dict)


@dataclass
class RunOutcome:
    key: str
    summary: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    """Relative path -> bytes of the run directory (empty with ``--summaries-only``)."""


class KeyMismatchError(PerpstressError):
    """The worker resolved a run to another scenario than the driver (a different perpstress on that node)."""


def execute(shared: SweepShared, task: RunTask) -> RunOutcome:
    """Simulate one run of a sweep."""
    from perpstress.outputs.run import run_scenario

    scenario = apply_cell(shared.base, task.cell).model_copy(update={"seed": task.seed})
    key = run_key(scenario, task.scale)
    if key != task.key:
        raise KeyMismatchError(
            f"run {task.key}: this worker resolves it to key {key}; every node must run the same perpstress version"
        )
    population = shared.populations.get(task.population) if task.population is not None else None
    if task.summaries_only:
        return RunOutcome(key, run_scenario(scenario, None, scale=task.scale, population=population).summary)
    with tempfile.TemporaryDirectory(prefix="perpstress-run-") as tmp:
        root = Path(tmp) / "run"
        result = run_scenario(scenario, root, scale=task.scale, population=population)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return RunOutcome(key, result.summary, files)


# --- process-pool workers: what is shared arrives once, through the initialiser ----------------------------------

_BASE: SweepShared | None = None


def init_process_worker(shared: SweepShared, driver_pid: int) -> None:
    """Keep what is shared; exit when the driver ``driver_pid`` dies, however it ends
    (:func:`~perpstress.sweep.lifeline.die_with_parent`)."""
    global _BASE
    die_with_parent(driver_pid)
    _BASE = shared


def execute_in_process_worker(task: RunTask) -> RunOutcome:
    if _BASE is None:
        raise RuntimeError("process worker used before init_process_worker")
    return execute(_BASE, task)
