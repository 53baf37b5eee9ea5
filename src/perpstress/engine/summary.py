"""``summary.json``: the headline numbers of a run, keyed ``venue:SYMBOL`` for markets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from perpstress.engine.simulation import Simulation


def _by(keys: list[str], values: list[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in zip(keys, values, strict=True):
        out[k] = out.get(k, 0.0) + float(v)
    return dict(sorted(out.items()))


def summarise(sim: Simulation, wall_seconds: float) -> dict[str, Any]:
    sc = sim.scenario
    venue_names = [v.name for v in sim.venues]
    liq = sim.liquidation.record
    adl = sim.adl.record
    liq_side = np.asarray(liq.side)
    liq_notional = np.asarray(liq.notional_usd, dtype=float)
    ts = sim.ts
    mark = ts["mark"]
    prices = {}
    for m, key in enumerate(sim.market_keys):
        path = mark[:, m]
        peak = np.maximum.accumulate(path)
        prices[key] = {
            "start": float(path[0]),
            "min": float(path.min()),
            "max": float(path.max()),
            "end": float(path[-1]),
            "max_drawdown": float((path / peak - 1.0).min()),
        }
    funds = {}
    for f, name in enumerate(venue_names):
        series = ts["insurance_fund_usd"][:, np.flatnonzero(sim.markets.venue == f)[0]]
        funds[name] = {
            "start_usd": float(sim.funds.start_balance[f]),
            "end_usd": float(series[-1]),
            "min_usd": float(min(series.min(), sim.funds.start_balance[f])),
        }
    oi = ts["open_interest_usd"]
    return {
        "scenario": sc.name,
        "seed": sc.seed,
        "config_hash": sc.stable_hash(),
        "steps": sc.steps,
        "simulated_seconds": sc.steps * sc.step_ms / 1000.0,
        "wall_seconds": round(wall_seconds, 3),
        "accounts": int(sim.accounts.n),
        "positions": int(sim.positions.n),
        "liquidations": {
            "count": len(liq.lots),
            "notional_usd": float(liq_notional.sum()),
            "long_notional_usd": float(liq_notional[liq_side > 0].sum()),
            "short_notional_usd": float(liq_notional[liq_side < 0].sum()),
            "by_venue": _by([venue_names[v] for v in liq.venue], list(liq_notional)),
            "by_market": _by([sim.market_keys[m] for m in liq.market], list(liq_notional)),
        },
        "adl": {
            "count": len(adl.lots),
            "notional_usd": float(np.sum(adl.notional_usd)),
            "by_venue": _by([venue_names[v] for v in adl.venue], adl.notional_usd),
            "by_market": _by([sim.market_keys[m] for m in adl.market], adl.notional_usd),
        },
        "insurance_funds": funds,
        "stops": dict(sim.stops),
        "topups": dict(sim.topups),
        "bad_debt_usd": float(sim.ledger.bad_debt.sum()),
        "open_interest": {
            key: {"start_usd": float(oi[0, m]), "end_usd": float(oi[-1, m])} for m, key in enumerate(sim.market_keys)
        },
        "prices": prices,
        "invariants": {
            "money_conservation_max_abs_error_usd": float(sim.max_value_error),
            "open_interest_max_imbalance": int(sim.max_oi_imbalance),
        },
    }
