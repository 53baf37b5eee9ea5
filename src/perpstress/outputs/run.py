"""Run a scenario and write its run directory (atomically)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from perpstress.config.scenario import Scenario
from perpstress.engine.simulation import RunTables, Simulation
from perpstress.engine.summary import reported_rows
from perpstress.outputs.rundir import check_target, run_directory
from perpstress.population.initial import InitialDraw
from perpstress.population.positions_file import load_positions
from perpstress.rules.feed import window_sums

REPORTED_WINDOW_MS = 60_000
"""``liquidations_reported.parquet`` counts per venue and this window (a UTC minute)."""


@dataclass
class RunOutput:
    summary: dict[str, Any]
    tables: RunTables
    path: Path | None
    files: dict[str, pa.Table] = field(default_factory=dict)
    """The run directory's Parquet tables by relative path (``events/adl.parquet``), written or not."""


def timeseries_table(sim: Simulation, tables: RunTables) -> pa.Table:
    steps, n_m = tables.timeseries["mark"].shape
    step_ms = sim.scenario.step_ms
    ts_ms = sim.scenario.ts_start_ms + np.arange(steps, dtype=np.int64) * step_ms
    venue_names = sim.world.venue_names
    columns: dict[str, Any] = {
        "ts_ms": np.repeat(ts_ms, n_m),
        "venue": np.tile(np.array([venue_names[v] for v in sim.world.markets.venue]), steps),
        "market": np.tile(np.array(sim.world.market_keys), steps),
    }
    for name, values in tables.timeseries.items():
        columns[name] = values.reshape(-1)
    return pa.table(columns)


def events_table(sim: Simulation, record: dict[str, list[Any]]) -> pa.Table:
    venue_names = sim.world.venue_names
    cols: dict[str, Any] = {}
    for name, values in record.items():
        if name == "venue":
            cols[name] = pa.array([venue_names[v] for v in values], type=pa.string())
        elif name == "market":
            cols[name] = pa.array([sim.world.market_keys[m] for m in values], type=pa.string())
        elif name == "kind":
            cols[name] = pa.array(values, type=pa.string())
        elif name in {"src_venue", "dst_venue"}:
            cols[name] = pa.array([venue_names[v] for v in values], type=pa.string())
        elif name in {"other_market"}:
            cols[name] = pa.array([sim.world.market_keys[m] for m in values], type=pa.string())
        elif name in {"purpose"}:
            cols[name] = pa.array(values, type=pa.string())
        elif name in {"ts_ms", "account", "bankrupt_account", "lots", "side", "maker", "transfer", "owner",
                      "src_account", "dst_account", "sent_ms", "landed_ms", "other_account"}:  # fmt: skip
            cols[name] = pa.array(values, type=pa.int64())
        else:
            cols[name] = pa.array(values, type=pa.float64())
    return pa.table(cols)


def transfers_table(sim: Simulation) -> pa.Table:
    """Every transfer: ``requested_ms`` (= ``ts_ms``), ``sent_ms``, ``landed_ms`` (-1 while in transit), ``amount_usd``,
    ``route`` and ``delay_s`` (requested to landed; NaN while still in transit at the end)."""
    table = events_table(sim, sim.world.rails.record.__dict__)
    rec = sim.world.rails.record
    delay = [
        (end - start) / 1000.0 if end >= 0 else float("nan")
        for start, end in zip(rec.ts_ms, rec.landed_ms, strict=True)
    ]
    names = sim.world.venue_names
    route = [f"{names[a]}->{names[b]}" for a, b in zip(rec.src_venue, rec.dst_venue, strict=True)]
    table = table.rename_columns(["amount_usd" if c == "usd" else c for c in table.column_names])
    table = table.append_column("requested_ms", pa.array(rec.ts_ms, type=pa.int64()))
    table = table.append_column("delay_s", pa.array(delay, type=pa.float64()))
    return table.append_column("route", pa.array(route, type=pa.string()))


def collateral_table(sim: Simulation) -> pa.Table:
    """Per step and collateral pair (asset on a venue): the venue's margin price, the reference price and the price
    of the venue's own spot book of the asset (``book_price``, NaN when it has none)."""
    steps, n_pairs, _ = sim.recorder.collateral_ts.shape
    ts_ms = sim.scenario.ts_start_ms + np.arange(steps, dtype=np.int64) * sim.scenario.step_ms
    pairs = sim.world.collateral.pairs
    return pa.table(
        {
            "ts_ms": np.repeat(ts_ms, n_pairs),
            "venue": np.tile(np.array([sim.world.venue_names[p.venue] for p in pairs]), steps),
            "asset": np.tile(np.array([p.asset for p in pairs]), steps),
            "method": np.tile(np.array([p.rule.method.value for p in pairs]), steps),
            "price": sim.recorder.collateral_ts[:, :, 0].reshape(-1),
            "reference_price": sim.recorder.collateral_ts[:, :, 1].reshape(-1),
            "book_price": sim.recorder.collateral_ts[:, :, 2].reshape(-1),
        }
    )


def liquidations_reported_table(sim: Simulation) -> pa.Table:
    """Per venue and UTC minute of the run (every minute, zeros included): ``ts_ms`` (the minute's start),
    ``venue``, ``rule`` (its public feed's), ``true_count`` and ``true_notional_usd`` of its liquidations,
    ``reported_count`` and ``reported_notional_usd`` of those its feed shows. Minutes sum to the summary's
    ``liquidations.reported_by_venue``."""
    sc = sim.scenario
    liq = sim.liquidation.record
    venues = sim.world.venues
    venue = np.asarray(liq.venue, dtype=np.int64)
    ts = np.asarray(liq.ts_ms, dtype=np.int64)
    notional = np.asarray(liq.notional_usd, dtype=np.float64)
    shown = reported_rows(sim)
    span = (sc.ts_start_ms, sc.ts_start_ms + (sc.steps - 1) * sc.step_ms)
    starts, true_count, true_usd = window_sums(venue, ts, notional, len(venues), *span, REPORTED_WINDOW_MS)
    _, count, usd = window_sums(venue[shown], ts[shown], notional[shown], len(venues), *span, REPORTED_WINDOW_MS)
    n = len(venues)
    return pa.table(
        {
            "ts_ms": pa.array(np.repeat(starts, n), type=pa.int64()),
            "venue": pa.array([v.name for v in venues] * starts.size, type=pa.string()),
            "rule": pa.array([v.liquidation_feed.rule.value for v in venues] * starts.size, type=pa.string()),
            "true_count": pa.array(true_count.reshape(-1), type=pa.int64()),
            "true_notional_usd": pa.array(true_usd.reshape(-1), type=pa.float64()),
            "reported_count": pa.array(count.reshape(-1), type=pa.int64()),
            "reported_notional_usd": pa.array(usd.reshape(-1), type=pa.float64()),
        }
    )


def run_scenario(
    scenario: Scenario,
    out: str | Path | None = None,
    *,
    scale: float = 1.0,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    positions: str | Path | None = None,
    population: InitialDraw | None = None,
) -> RunOutput:
    """Simulate ``scenario``; with ``out``, write the run directory there. The tables are returned either way.
    ``positions``: a positions file (CSV or Parquet) whose rows replace the scenario's crowd. ``population``: the
    scenario's population drawn beforehand (:func:`~perpstress.population.initial.draw_initial`; needs
    ``population_seed``), the same outputs as drawing it in the run."""
    if out is not None:
        check_target(out, overwrite)  # refuse before simulating, not after
    snapshot = load_positions(positions, scenario) if positions is not None else None
    sim = Simulation(scenario, scale=scale, positions=snapshot, population=population)
    tables = sim.run(progress)
    files = run_files(sim, tables)
    path = None
    if out is not None:
        path = Path(out)
        with run_directory(path, overwrite=overwrite) as w:
            w.text("scenario.toml", scenario.to_toml())
            w.json("summary.json", tables.summary)
            for relative, table in files.items():
                w.table(relative, table)
    return RunOutput(tables.summary, tables, path, files)


def run_files(sim: Simulation, tables: RunTables) -> dict[str, pa.Table]:
    """The Parquet tables of a run directory, by path relative to it."""
    files = {
        "timeseries.parquet": timeseries_table(sim, tables),
        "liquidations_reported.parquet": liquidations_reported_table(sim),
        "events/liquidations.parquet": events_table(sim, tables.liquidations),
        "events/adl.parquet": events_table(sim, tables.adl),
        "events/transfers.parquet": transfers_table(sim),
        "events/hedges.parquet": events_table(sim, sim.hedges.record.__dict__),
    }
    if sim.world.collateral.pairs:
        files["events/collateral.parquet"] = collateral_table(sim)
    if sim.scenario.engine.record_trades:
        files["events/trades.parquet"] = events_table(sim, tables.trades)
    return files


def summary_text(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2)
