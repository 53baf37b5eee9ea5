"""Sweep throughput: runs per minute serial vs 2 workers (process pool, and Ray when installed), one process.

A fixed small sweep (the quickstart scenario cut to ``--duration`` simulated seconds with the shock at 30 s, crowd
scale ``--scale``, a 2-cell grid over Binance's fund x ``--seeds`` seeds) runs three times into fresh directories:
serially in this process (after one warm-up run, so the serial time holds no JIT compile or cache load), then on
2 workers of each parallel executor. Two rates per executor: over the whole wall time (start-up of the workers and
of Ray included, as a user sees it) and in steady state (the runs after the first W (one per worker), over the
time from the W-th finished run to the last). Parallel efficiency = speed-up over serial / workers. The three
results tables must be byte-identical.

    python bench/bench_sweep.py [--seeds 4] [--duration 300] [--scale 0.25]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

from perpstress import Scenario
from perpstress.engine.run import run_scenario
from perpstress.sweep import parse_grid, plan_sweep, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    base = Scenario.load("quickstart").with_(duration_s=args.duration, shock__at_s=30.0)
    grid = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 8e6]}}, "bench grid")
    plan = plan_sweep(base, grid, args.seeds, scale=args.scale)
    runs = len(plan.runs)
    run_scenario(plan.scenario(plan.runs[0]), None, scale=args.scale)  # warm-up: numba compile / cache load

    executors = ["serial", "process"] + (["ray"] if importlib.util.find_spec("ray") else [])
    rows = []
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in executors:
            workers = 1 if name == "serial" else args.workers
            finished: list[float] = []

            def progress(done: int, total: int, finished: list[float] = finished) -> None:
                if done:
                    finished.append(time.perf_counter())

            t0 = time.perf_counter()
            result = run_sweep(plan, Path(tmp) / name, executor=name, workers=workers, report=False,  # type: ignore[arg-type]
                               progress=progress)  # fmt: skip
            wall = time.perf_counter() - t0
            if result.executed != runs or result.failures:
                raise RuntimeError(f"{name}: {result.executed} of {runs} runs, failures {result.failures}")
            tables.append((Path(tmp) / name / "results.parquet").read_bytes())
            steady = (runs - workers) / (finished[-1] - finished[workers - 1]) * 60
            rows.append((name, workers, wall, finished[0] - t0, steady))
    if any(t != tables[0] for t in tables):
        raise RuntimeError("results.parquet differs between executors")

    serial_wall, serial_steady = rows[0][2], rows[0][4]
    print(f"{runs} runs ({len(plan.cells)} cells x {args.seeds} seeds), quickstart {args.duration:g} s, "
          f"scale {args.scale:g}; results.parquet byte-identical across executors")  # fmt: skip
    print("| executor | workers | wall s | first run done s | runs/min (wall) | efficiency (wall) "
          "| runs/min (steady) | efficiency (steady) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, workers, wall, first, steady in rows:
        eff_wall = serial_wall / wall / workers
        eff_steady = steady / serial_steady / workers
        print(f"| {name} | {workers} | {wall:.1f} | {first:.1f} | {runs / wall * 60:.1f} | {eff_wall:.0%} "
              f"| {steady:.1f} | {eff_steady:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
