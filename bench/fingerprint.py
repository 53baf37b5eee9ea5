"""Fingerprints of a few canonical runs, to show a refactor changed no outcome: per run a hash of the summary (wall
times, timing and the config hash left out) and of every timeseries column, plus liquidation totals.

Run: ``python bench/fingerprint.py OUT.json`` in each tree (``PYTHONPATH=<tree>/src``), then compare the files.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

from perpstress import Scenario
from perpstress.engine.simulation import Simulation

RUNS = (("quickstart", None, 1.0), ("oct-2025", 2400, 0.01), ("two-venue-demo", 600, 1.0))


def main() -> None:
    out = {}
    for name, duration, scale in RUNS:
        scenario = Scenario.load(name)
        if duration:
            scenario = scenario.with_(duration_s=duration)
        tables = Simulation(scenario, scale=scale).run()
        summary = {k: v for k, v in tables.summary.items() if k not in ("wall_seconds", "timing", "config_hash")}
        series = hashlib.sha256()
        for key in sorted(tables.timeseries):
            series.update(np.ascontiguousarray(tables.timeseries[key]).tobytes())
        out[name] = {
            "summary": hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()[:16],
            "timeseries": series.hexdigest()[:16],
            "liquidations": summary["liquidations"]["count"],
            "liquidated_usd": summary["liquidations"]["notional_usd"],
        }
    text = json.dumps(out, indent=1)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
