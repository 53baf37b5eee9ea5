"""A sweep's plan: the grid's cells times N seeds, each run keyed by a stable hash of what it computes.

Seeds. The N seeds of a sweep are the children of ``numpy.random.SeedSequence(seed_base).spawn(N)``; child ``i``
becomes the scenario's integer seed as its first 64-bit state word shifted right by one bit
(``child.generate_state(1, numpy.uint64)[0] >> 1``, 63 bits, so it fits TOML and Parquet's signed 64-bit integers).
The run's engine then seeds its generator with ``SeedSequence(seed)``. Spawned children are independent streams;
child ``i`` does not depend on N, so a sweep with more seeds extends one with fewer (and ``--resume`` reuses the
runs already done). Every cell uses the same N seeds: the cells are compared on common random numbers (the same
shock paths and crowd draws), which makes differences between policies far less noisy than independent seeds.

Population. By default a sweep holds the starting population fixed across seeds: the base scenario gets a
``population_seed`` (its own, or the seed base when it has none), so a run's crowd and hedged owners depend on the
cell's crowd, market and start-price settings but not on the run seed. Each distinct population is then drawn once
by the driver and shared with the workers (Ray's object store; the process pool's initialiser). The seeds vary the
shock paths and the traders' flow (which crowd accounts hold non-USD collateral is part of the population).
``population="per-seed"`` leaves ``population_seed`` unset: every seed draws a new crowd inside its run (nothing
to share), so the Monte Carlo covers crowd draws too.

Keys. A run's key is the SHA-256 of its resolved scenario's ``stable_hash()`` (seed included), the crowd
``scale`` and the perpstress version, cut to 20 hex digits (80 bits). Equal keys mean equal outputs; a changed
value, seed, scale or version gives a new key, so a resumed sweep never reuses a run computed differently.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from perpstress.config.scenario import MAX_SCALE, Scenario
from perpstress.errors import ConfigError, UsageError
from perpstress.population.initial import population_key
from perpstress.sweep.grid import Grid, validate_grid

KEY_HEX_DIGITS = 20


def spawn_seeds(seed_base: int, n: int) -> list[int]:
    """The integer seeds of ``n`` runs: ``SeedSequence(seed_base).spawn(n)``, 63 bits of each child's state."""
    if n < 1:
        raise UsageError(f"--seeds {n}: a sweep needs at least one seed")
    if seed_base < 0:
        raise UsageError(f"seed base {seed_base}: must be >= 0 (numpy SeedSequence entropy)")
    children = np.random.SeedSequence(seed_base).spawn(n)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]


def run_key(scenario: Scenario, scale: float) -> str:
    """Stable key of one run: what it computes (resolved scenario with its seed, crowd scale, engine version)."""
    from perpstress import __version__

    blob = json.dumps(
        {"scenario": scenario.stable_hash(), "scale": float(scale), "perpstress": __version__}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_HEX_DIGITS]


PopulationMode = Literal["shared", "per-seed"]


@dataclass(frozen=True)
class PlannedRun:
    key: str
    cell: int
    seed_index: int
    seed: int
    population: str | None = None
    """Key of the shared population this run starts from (:func:`population_key`); ``None``: drawn in the run."""


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep will run, validated: ``cells[c]`` is the scenario of cell ``c`` (base seed)."""

    base: Scenario
    grid: Grid
    cell_values: tuple[dict[str, Any], ...]
    cells: tuple[Scenario, ...]
    seed_base: int
    seeds: tuple[int, ...]
    scale: float
    runs: tuple[PlannedRun, ...]
    population: PopulationMode = "shared"

    def scenario(self, run: PlannedRun) -> Scenario:
        return self.cells[run.cell].model_copy(update={"seed": run.seed})

    def unique_runs(self) -> list[PlannedRun]:
        """Runs to compute: the first of each key (two cells may resolve to the same scenario)."""
        seen: set[str] = set()
        out = []
        for run in self.runs:
            if run.key not in seen:
                seen.add(run.key)
                out.append(run)
        return out

    def manifest(self) -> dict[str, Any]:
        """The plan as JSON (``sweep.json``): enough to see what a directory holds and to rebuild its tables."""
        from perpstress import __version__

        return {
            "scenario": self.base.name,
            "base_config_hash": self.base.stable_hash(),
            "grid_file": self.grid.source,
            "grid": self.grid.to_json(),
            "seed_base": self.seed_base,
            "seeds": list(self.seeds),
            "scale": self.scale,
            "population": self.population,
            "population_seed": self.base.population_seed,
            "perpstress": __version__,
            "cells": [self.grid.label(v) for v in self.cell_values],
            "runs": [{"key": r.key, "cell": r.cell, "seed_index": r.seed_index, "seed": r.seed} for r in self.runs],
        }


MAX_RUNS = 100_000
"""A sweep plans at most this many runs (cells x seeds)."""


def plan_sweep(
    base: Scenario,
    grid: Grid,
    seeds: int,
    *,
    scale: float = 1.0,
    seed_base: int | None = None,
    population: PopulationMode = "shared",
) -> SweepPlan:
    """Validate every cell and key every run. ``seed_base`` defaults to the base scenario's seed. ``population``:
    ``shared`` (one population per distinct crowd setting, the same for every seed) or ``per-seed``."""
    if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise UsageError(f"--scale {scale:g}: must be above 0 and at most {MAX_SCALE:g}")
    n_cells = math.prod(len(values) for _, values in grid.axes)
    if n_cells * seeds > MAX_RUNS:
        raise UsageError(
            f"{grid.source}: {n_cells:,} cells x {seeds:,} seeds = {n_cells * seeds:,} runs; at most {MAX_RUNS:,} "
            "are planned (sweep fewer values or seeds)"
        )
    if population not in ("shared", "per-seed"):
        raise UsageError(f"--population {population}: choose shared or per-seed")
    base_seed = base.seed if seed_base is None else seed_base
    seed_list = spawn_seeds(base_seed, seeds)
    if population == "shared" and base.population_seed is None:
        base = base.with_(population_seed=base_seed)
    elif population == "per-seed" and base.population_seed is not None:
        raise UsageError(
            f"scenario {base.name} sets population_seed = {base.population_seed}: its population is the same for "
            "every seed; remove it to draw one per seed"
        )
    cells = validate_grid(base, grid)
    for cell, values in zip(cells, grid.cells(), strict=True):
        problems = cell.run_problems(scale)
        if problems:
            where = f"{grid.source}: grid cell {grid.label(values)}" if values else base.name
            raise ConfigError([f"{where}: {p}" for p in problems])
    runs = []
    for c, cell in enumerate(cells):
        shared = population_key(cell, scale)  # None when the cell's population is drawn per seed
        for i, seed in enumerate(seed_list):
            runs.append(PlannedRun(run_key(cell.model_copy(update={"seed": seed}), scale), c, i, seed, shared))
    return SweepPlan(base, grid, tuple(grid.cells()), tuple(cells), base_seed, tuple(seed_list), scale, tuple(runs),
                     population)  # fmt: skip
