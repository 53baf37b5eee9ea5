"""``summary.json``: the headline numbers of a run, keyed ``venue:SYMBOL`` for markets.

Two keys measure the machine rather than the run, ``wall_seconds`` and ``timing`` (:data:`WALL_CLOCK_KEYS`): two
runs of one seed differ in them and in nothing else. Whatever compares or keys runs by their outcome leaves them out
(:func:`outcome`); the sweep's ``results.parquet`` and the headline row never read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from perpstress.config.venue import LiquidationFeedRule, VenueConfig
from perpstress.rules.feed import reported_mask

if TYPE_CHECKING:
    from perpstress.engine.kernel import Timing
    from perpstress.engine.simulation import Simulation

WALL_CLOCK_KEYS = ("wall_seconds", "timing")
"""Summary keys holding wall-clock measurements: not reproducible, so not part of a run's outcome."""

TIMING_DIGITS = 6
"""Seconds in the ``timing`` section are rounded to this many decimals (a microsecond)."""


def outcome(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without its wall-clock keys (:data:`WALL_CLOCK_KEYS`): equal for two runs of one seed."""
    return {k: v for k, v in summary.items() if k not in WALL_CLOCK_KEYS}


def timing_section(timing: Timing) -> dict[str, Any]:
    """``summary.json``'s ``timing``: ``steps`` run, ``total_seconds`` of the step loop, ``phases`` (name -> seconds,
    in the kernel's order; they sum to at most the total) and ``sections`` (phase -> section -> seconds, each part
    of its phase's time, e.g. ``{"liquidation": {"cascade": ...}}``). Wall-clock seconds, rounded to 1 us."""
    return {
        "steps": timing.steps,
        "total_seconds": round(timing.total_seconds, TIMING_DIGITS),
        "phases": {name: round(seconds, TIMING_DIGITS) for name, seconds in timing.phases.items()},
        "sections": {
            phase: {name: round(seconds, TIMING_DIGITS) for name, seconds in within.items()}
            for phase, within in timing.sections.items()
        },
    }


def _nanmin_or_none(values: np.ndarray) -> float | None:
    """The lowest finite value, None when there is none (a pair without its own book)."""
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else None


def _by(keys: list[str], values: list[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in zip(keys, values, strict=True):
        out[k] = out.get(k, 0.0) + float(v)
    return dict(sorted(out.items()))


def feed_intervals_ms(venues: list[VenueConfig]) -> np.ndarray:
    """Each venue's public liquidation feed interval, ms: 0 where the feed shows every order."""
    return np.array(
        [
            round(v.liquidation_feed.interval_s * 1000)
            if v.liquidation_feed.rule is LiquidationFeedRule.LATEST_PER_INTERVAL
            else 0
            for v in venues
        ],
        dtype=np.int64,
    )


def reported_rows(sim: Simulation) -> np.ndarray:
    """Which recorded liquidations the venues' public feeds show (:func:`perpstress.rules.feed.reported_mask`)."""
    liq = sim.liquidation.record
    venue = np.asarray(liq.venue, dtype=np.int64)
    interval = feed_intervals_ms(sim.world.venues)[venue]
    return reported_mask(np.asarray(liq.market, dtype=np.int64), np.asarray(liq.ts_ms, dtype=np.int64), interval)


def reported_by_venue(sim: Simulation) -> dict[str, dict[str, Any]]:
    """``liquidations.reported_by_venue``: per venue its feed's ``rule`` and ``interval_s`` (None when every order
    is shown), the ``true_count`` and ``true_notional_usd`` of its liquidations and the ``reported_count`` and
    ``reported_notional_usd`` of those its public feed shows."""
    liq = sim.liquidation.record
    venue = np.asarray(liq.venue, dtype=np.int64)
    notional = np.asarray(liq.notional_usd, dtype=np.float64)
    shown = reported_rows(sim)
    out: dict[str, dict[str, Any]] = {}
    for f, config in enumerate(sim.world.venues):
        feed = config.liquidation_feed
        mine = venue == f
        out[config.name] = {
            "rule": feed.rule.value,
            "interval_s": feed.interval_s if feed.rule is LiquidationFeedRule.LATEST_PER_INTERVAL else None,
            "true_count": int(mine.sum()),
            "true_notional_usd": float(notional[mine].sum()),
            "reported_count": int((mine & shown).sum()),
            "reported_notional_usd": float(notional[mine & shown].sum()),
        }
    return out


def summarise(sim: Simulation, wall_seconds: float) -> dict[str, Any]:
    sc = sim.scenario
    w = sim.world
    venue_names = w.venue_names
    liq = sim.liquidation.record
    adl = sim.adl.record
    liq_side = np.asarray(liq.side)
    liq_notional = np.asarray(liq.notional_usd, dtype=float)
    pnl_taken = np.maximum(np.asarray(adl.winner_pnl_usd, dtype=float), 0.0)  # a winner closed at a loss gave none
    ts = sim.recorder.ts
    mark = ts["mark"]
    prices = {}
    for m, key in enumerate(w.market_keys):
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
        series = ts["insurance_fund_usd"][:, np.flatnonzero(w.markets.venue == f)[0]]
        funds[name] = {
            "start_usd": float(w.funds.start_balance[f]),
            "end_usd": float(series[-1]),
            "min_usd": float(min(series.min(), w.funds.start_balance[f])),
        }
    oi = ts["open_interest_usd"]
    perps = range(w.n_perpetual)
    by_venue: dict[str, dict[str, float]] = {}
    for f, name in enumerate(venue_names):
        mine = np.asarray(liq.venue) == f
        adl_mine = np.asarray(adl.venue, dtype=np.int64) == f
        liq_usd = float(liq_notional[mine].sum())
        by_venue[name] = {
            "liquidations_count": int(mine.sum()),
            "liquidated_usd": liq_usd,
            "long_share": float(liq_notional[mine & (liq_side > 0)].sum() / liq_usd) if liq_usd else 0.0,
            "adl_count": int(adl_mine.sum()),
            "adl_usd": float(np.asarray(adl.notional_usd)[adl_mine].sum()) if adl_mine.any() else 0.0,
            "bad_debt_usd": float(w.ledger.bad_debt[f]),
            "fees_usd": float(w.ledger.fee_pool[f]),
            "open_interest_start_usd": float(sum(oi[0, m] for m in perps if w.markets.venue[m] == f)),
            "open_interest_end_usd": float(sum(oi[-1, m] for m in perps if w.markets.venue[m] == f)),
            **{f"insurance_fund_{k}": v for k, v in funds[name].items()},
        }
    hold = w.collateral
    collateral = {
        f"{p.asset}@{venue_names[p.venue]}": {
            "method": p.rule.method.value,
            "min_price": float(np.nanmin(sim.recorder.collateral_ts[:, i, 0])),
            "min_reference_price": float(np.nanmin(sim.recorder.collateral_ts[:, i, 1])),
            "min_book_price": _nanmin_or_none(sim.recorder.collateral_ts[:, i, 2]),
            "liquidations_caused": int(hold.caused[i]),
            "holders": int(np.unique(hold.account[hold.pair == i]).size),
        }
        for i, p in enumerate(hold.pairs)
    }
    hedges = sim.hedges
    broken = hedges.broken_notional
    flow = {} if sim.flow is None else {"flow": sim.flow.summary(set(liq.account), set(adl.account))}
    if sim.maker_hedges is not None:
        flow["maker_hedges"] = sim.maker_hedges.summary(liq.account, adl.account, adl.notional_usd)
    return flow | {
        "scenario": sc.name,
        "seed": sc.seed,
        "population_seed": sc.population_seed,
        "scale": sim.scale,
        "positions_file": sim.positions_source,
        "config_hash": sc.stable_hash(),
        "steps": sc.steps,
        "simulated_seconds": sc.steps * sc.step_ms / 1000.0,
        "wall_seconds": round(wall_seconds, 3),
        "accounts": int(w.accounts.n),
        "positions": int(w.positions.n),
        "liquidations": {
            "count": len(liq.lots),
            "accounts": len(set(liq.account)),
            "notional_usd": float(liq_notional.sum()),
            "long_notional_usd": float(liq_notional[liq_side > 0].sum()),
            "short_notional_usd": float(liq_notional[liq_side < 0].sum()),
            "by_venue": _by([venue_names[v] for v in liq.venue], list(liq_notional)),
            "by_market": _by([w.market_keys[m] for m in liq.market], list(liq_notional)),
            "reported_by_venue": reported_by_venue(sim),
        },
        "adl": {
            "count": len(adl.lots),
            "notional_usd": float(np.sum(adl.notional_usd)),
            "by_venue": _by([venue_names[v] for v in adl.venue], adl.notional_usd),
            "by_market": _by([w.market_keys[m] for m in adl.market], adl.notional_usd),
            "pnl_taken_usd": float(np.sum(pnl_taken)),
            "pnl_taken_by_market": _by([w.market_keys[m] for m in adl.market], list(pnl_taken)),
        },
        "insurance_funds": funds,
        "stops": dict(sim.crowd_stops.stops),
        "topups": _topups(sim),
        "bad_debt_usd": float(w.ledger.bad_debt.sum()),
        "open_interest": {
            key: {"start_usd": float(oi[0, m]), "end_usd": float(oi[-1, m])}
            for m, key in enumerate(w.market_keys)
            if m < w.n_perpetual
        },
        "by_venue": by_venue,
        "transfers": w.rails.summary(w.now_ms),
        "hedges": {
            "accounts": int(hedges.n),
            "broken": len(broken),
            "broken_notional_usd": float(sum(broken.values())),
            "topups": int(hedges.topups),
            "break_events": len(hedges.record.ts_ms),
        },
        "collateral": collateral,
        "arbitrage": {
            "traders": len(sim.arbitrageurs),
            "trades": int(sum(t.trades for t in sim.arbitrageurs)),
            "capital_bound_steps": int(sum(t.capital_bound_steps for t in sim.arbitrageurs)),
        },
        "prices": prices,
        "invariants": {
            "money_conservation_max_abs_error_usd": float(sim.invariants.max_value_error),
            "open_interest_max_imbalance": int(sim.invariants.max_oi_imbalance),
            "collateral_units_max_abs_error": float(sim.invariants.max_units_error),
            "recounts": int(sim.invariants.recounts),
        },
        "timing": timing_section(sim.kernel.timing),
    }


def _topups(sim: Any) -> dict[str, Any]:
    """The crowd's top-ups; with delayed margin calls, the calls made and those never answered too."""
    stops = sim.crowd_stops
    out: dict[str, Any] = dict(stops.topups)
    if stops.delayed:
        out |= {"margin_calls": int(stops.calls[0]), "margin_calls_never_answered": int(stops.calls[1])}
    return out
