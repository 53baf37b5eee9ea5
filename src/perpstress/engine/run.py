"""Run a scenario and write its run directory (atomically)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from perpstress.config.scenario import Scenario
from perpstress.engine.simulation import RunTables, Simulation
from perpstress.outputs.rundir import run_directory


@dataclass
class RunOutput:
    summary: dict[str, Any]
    tables: RunTables
    path: Path | None


def timeseries_table(sim: Simulation, tables: RunTables) -> pa.Table:
    steps, n_m = tables.timeseries["mark"].shape
    step_ms = sim.scenario.step_ms
    ts_ms = sim.scenario.ts_start_ms + np.arange(steps, dtype=np.int64) * step_ms
    venue_names = [v.name for v in sim.venues]
    columns: dict[str, Any] = {
        "ts_ms": np.repeat(ts_ms, n_m),
        "venue": np.tile(np.array([venue_names[v] for v in sim.markets.venue]), steps),
        "market": np.tile(np.array(sim.market_keys), steps),
    }
    for name, values in tables.timeseries.items():
        columns[name] = values.reshape(-1)
    return pa.table(columns)


def events_table(sim: Simulation, record: dict[str, list[Any]]) -> pa.Table:
    venue_names = [v.name for v in sim.venues]
    cols: dict[str, Any] = {}
    for name, values in record.items():
        if name == "venue":
            cols[name] = pa.array([venue_names[v] for v in values], type=pa.string())
        elif name == "market":
            cols[name] = pa.array([sim.market_keys[m] for m in values], type=pa.string())
        elif name == "kind":
            cols[name] = pa.array(values, type=pa.string())
        elif name in {"ts_ms", "account", "bankrupt_account", "lots", "side", "maker"}:
            cols[name] = pa.array(values, type=pa.int64())
        else:
            cols[name] = pa.array(values, type=pa.float64())
    return pa.table(cols)


def run_scenario(
    scenario: Scenario,
    out: str | Path | None = None,
    *,
    scale: float = 1.0,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RunOutput:
    """Simulate ``scenario``; with ``out``, write the run directory there."""
    sim = Simulation(scenario, scale=scale)
    tables = sim.run(progress)
    path = None
    if out is not None:
        path = Path(out)
        with run_directory(path, overwrite=overwrite) as w:
            w.text("scenario.toml", scenario.to_toml())
            w.json("summary.json", tables.summary)
            w.table("timeseries.parquet", timeseries_table(sim, tables))
            w.table("events/liquidations.parquet", events_table(sim, tables.liquidations))
            w.table("events/adl.parquet", events_table(sim, tables.adl))
            if scenario.engine.record_trades:
                w.table("events/trades.parquet", events_table(sim, tables.trades))
    return RunOutput(tables.summary, tables, path)


def summary_text(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2)
