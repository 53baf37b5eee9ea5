"""Where an October-scenario step spends its time: cProfile over the first N steps (the news at step 1,800).

Run: ``python bench/profile_oct2025.py [--steps 2400] [--scale 0.002] [--top 25]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from perpstress import Scenario
from perpstress.engine.simulation import Simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--scale", type=float, default=0.002)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    sim = Simulation(Scenario.load("oct-2025").with_(duration_s=args.steps), scale=args.scale)
    profile = cProfile.Profile()
    profile.runcall(sim.run)
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
