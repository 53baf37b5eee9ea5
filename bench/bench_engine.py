"""Whole-engine speed at 10k, 100k and 1M positions: steps per second, and margin-check work against a naive loop.

The quickstart scenario (two venues, four markets, a sell-off at one minute) with ``--scale`` chosen so the crowd
holds about N positions; notional stays the same, so larger N means more, smaller accounts. For each N:

- ``steps/s``: whole steps (makers, takers, marks, funding, margin check, liquidations, ADL, record);
- ``entries/step``: band edges the trigger index read per step (what the margin check costs);
- ``naive s/step``: a per-account Python loop checking every position's margin once, timed on the same world,
  which is what a straightforward agent-based model pays every step before doing anything else.

Run: ``python bench/bench_engine.py [--steps 300] [--sizes 10000 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from perpstress import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.rules.margin import maintenance_margin

CROWD_AT_SCALE_1 = 9000


def naive_check_seconds(sim: Simulation, tables, sample: int = 20_000) -> float:  # type: ignore[no-untyped-def]
    """Seconds a per-account Python loop needs to check every position once (timed on a sample, scaled)."""
    pos, mk = sim.positions, sim.markets
    n = pos.n
    ids = np.arange(n)[: min(n, sample)]
    t0 = time.perf_counter()
    hits = 0
    for p in ids:
        m = int(pos.market[p])
        q = pos.size_lots[p] * mk.lot_size[m]
        equity = sim.accounts.wallet[p] + q * (mk.mark[m] - pos.entry_price[p])
        hits += equity < float(maintenance_margin(tables[m], abs(q) * mk.mark[m]))
    return (time.perf_counter() - t0) * n / ids.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    base = Scenario.load("quickstart").with_(duration_s=args.steps)
    Simulation(base, scale=0.05).run()  # compile the kernels first
    print(f"quickstart, {args.steps} one-second steps, sell-off at 60 s")
    print(f"{'positions':>10} {'build s':>8} {'run s':>8} {'steps/s':>8} {'entries/step':>13} {'naive s/step':>13} "
          f"{'naive/engine':>13} {'liquidations':>12}")  # fmt: skip
    for n in args.sizes:
        t0 = time.perf_counter()
        sim = Simulation(base, scale=n / CROWD_AT_SCALE_1)
        build = time.perf_counter() - t0
        tables = [v.perpetuals[s].tier_table() for v in sim.venues for s in v.markets()]
        t1 = time.perf_counter()
        out = sim.run()
        run = time.perf_counter() - t1
        naive = naive_check_seconds(sim, tables)
        per_step = run / args.steps
        print(f"{sim.positions.n:>10,} {build:>8.2f} {run:>8.2f} {args.steps / run:>8.1f} "
              f"{sim.index.entries_read / args.steps:>13,.0f} {naive:>13.3f} {naive / per_step:>13.1f} "
              f"{out.summary['liquidations']['count']:>12,}")  # fmt: skip


if __name__ == "__main__":
    main()
