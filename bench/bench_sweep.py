"""Sweep throughput: runs per minute serial vs 2 workers (process pool, and Ray when installed), one process.

A fixed small sweep (the quickstart scenario cut to ``--duration`` simulated seconds with the shock at 30 s, crowd
scale ``--scale``, a 2-cell grid over Binance's fund x ``--seeds`` seeds) runs into fresh directories serially in
this process (after one warm-up run, so no JIT compile or cache load is timed), then on 2 workers of each parallel
executor. The executors alternate for ``--rounds`` rounds and each keeps its fastest round: the machine is shared,
and the best of alternating rounds is the least disturbed by other load.

Reported per executor: the whole wall time (start-up of the workers and of Ray included, as a user sees it) and
its runs per minute; the steady-state rate (the runs after the first W, one per worker, over the time from the W-th
finished run to the last); the median run time measured inside the run (``summary.json`` ``wall_seconds``: it grows
when two runs share the cores with anything else). Parallel efficiency = speed-up over serial / workers. The
results tables must be byte-identical across executors and rounds.

    python bench/bench_sweep.py [--seeds 3] [--duration 300] [--scale 0.25] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from perpstress import Scenario
from perpstress.outputs.run import run_scenario
from perpstress.sweep import parse_grid, plan_sweep, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    base = Scenario.load("quickstart").with_(duration_s=args.duration, shock__at_s=30.0)
    grid = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 8e6]}}, "bench grid")
    plan = plan_sweep(base, grid, args.seeds, scale=args.scale)
    runs = len(plan.runs)
    run_scenario(plan.scenario(plan.runs[0]), None, scale=args.scale)  # warm-up: numba compile / cache load

    executors = ["serial", "process"] + (["ray"] if importlib.util.find_spec("ray") else [])
    best: dict[str, tuple[float, float, float, float]] = {}
    tables = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name in executors:
                workers = 1 if name == "serial" else args.workers
                out = Path(tmp) / f"{name}-{round_}"
                finished: list[float] = []

                def progress(done: int, total: int, finished: list[float] = finished) -> None:
                    if done:
                        finished.append(time.perf_counter())

                t0 = time.perf_counter()
                result = run_sweep(plan, out, executor=name, workers=workers, report=False,  # type: ignore[arg-type]
                                   progress=progress)  # fmt: skip
                wall = time.perf_counter() - t0
                if result.executed != runs or result.failures:
                    raise RuntimeError(f"{name}: {result.executed} of {runs} runs, failures {result.failures}")
                tables.append((out / "results.parquet").read_bytes())
                steady = (runs - workers) / (finished[-1] - finished[workers - 1]) * 60
                run_s = statistics.median(
                    json.loads((out / "runs" / r.key / "summary.json").read_text())["wall_seconds"] for r in plan.runs
                )
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, finished[0] - t0, steady, run_s)
    if any(t != tables[0] for t in tables):
        raise RuntimeError("results.parquet differs between executors")
    rows = [(name, 1 if name == "serial" else args.workers, *best[name]) for name in executors]

    serial_wall, serial_steady = rows[0][2], rows[0][4]
    print(f"{runs} runs ({len(plan.cells)} cells x {args.seeds} seeds), quickstart {args.duration:g} s, "
          f"scale {args.scale:g}; best of {args.rounds} alternating rounds; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; results.parquet byte-identical across executors and rounds")  # fmt: skip
    print("| executor | workers | wall s | first run done s | runs/min (wall) | efficiency (wall) "
          "| runs/min (steady) | efficiency (steady) | median run s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, workers, wall, first, steady, run_s in rows:
        eff_wall = serial_wall / wall / workers
        eff_steady = steady / serial_steady / workers
        print(f"| {name} | {workers} | {wall:.1f} | {first:.1f} | {runs / wall * 60:.1f} | {eff_wall:.0%} "
              f"| {steady:.1f} | {eff_steady:.0%} | {run_s:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
