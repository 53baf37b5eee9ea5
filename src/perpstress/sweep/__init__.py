"""Sweeps and Monte Carlo: a grid of scenario parameters times N seeds, run serially, on a process pool or on Ray.

```python
from perpstress import Scenario
from perpstress.sweep import load_grid, plan_sweep, run_sweep

plan = plan_sweep(Scenario.load("quickstart"), load_grid("grid.toml"), seeds=8, scale=0.5)
result = run_sweep(plan, "sweeps/funds", workers=2)
result.cells  # per cell: mean, p5/p50/p95 and 95 % CI of liquidations, ADL, fund drawdown, bad debt
```

Modules: ``grid`` (grid files, cells, validation), ``plan`` (seeds, run keys), ``worker`` (one run), ``executors``
(serial, process pool, Ray), ``store`` (the sweep directory), ``metrics`` (results table), ``cells`` (per-cell
statistics), ``report`` (HTML), ``runner`` (orchestration).
"""

from perpstress.sweep.grid import Grid, apply_cell, load_grid, parse_grid, validate_grid
from perpstress.sweep.plan import PlannedRun, SweepPlan, plan_sweep, run_key, spawn_seeds
from perpstress.sweep.runner import SweepResult, run_sweep

__all__ = [
    "Grid",
    "PlannedRun",
    "SweepPlan",
    "SweepResult",
    "apply_cell",
    "load_grid",
    "parse_grid",
    "plan_sweep",
    "run_key",
    "run_sweep",
    "spawn_seeds",
    "validate_grid",
]
