"""Breadth: the cost of a calm step as the number of markets grows (issue 12).

    python bench/breadth.py [--markets 120] [--steps 600] [--scale 0.05] [--write FILE.toml] [--profile N]

:func:`make_breadth_scenario` starts from ``oct-2025`` (five venues, its perpetuals and spot books) and adds
synthetic long-tail perpetuals until the scenario has ``n_markets`` perpetuals, spread over the venues in
proportion to their perpetuals. Each synthetic market copies its venue's existing
long-tail perpetual (the one with the least open interest: Binance HIVEUSDT, OKX ACE-USDT-SWAP, Bybit NEIROETHUSDT,
Bitget SUPERUSDT, Hyperliquid DOGE) under a new symbol in the venue's convention (``TAIL001USDT``,
``TAIL021-USDT-SWAP``, ``TAIL081`` ...): the contract (margin tiers, tick, lot), a shock asset of its own with the
copied asset's start price, beta and idiosyncratic vol (and its ``beta_to_path`` for entries), the copied
market's population entry (open interest, short share, long/short account ratio, account weight) and its maker
and taker overrides. ``population.accounts`` grows with the added open interest so the existing markets keep
their account counts. No index needs a change: a constituent without a spot book of the asset tracks its
fundamental value, as the copied market's do.

The CLI builds the scenario, warms numba with tiny runs, then times ``sim.run()`` (build excluded) over the first
``--steps`` seconds (calm: oct-2025's shock is at 1,800 s) for the breadth scenario and for the unmodified
oct-2025 at the same settings, in this process, and prints the cost of a step per market and per phase (the run
summary's ``timing``). ``--profile N`` also runs N steps of the breadth scenario under cProfile and prints the top
15 functions by own time.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Sequence
from typing import Any

from perpstress import Scenario
from perpstress.config.venue import drop_none
from perpstress.engine.simulation import Simulation

SYNTHETIC_PREFIX = "TAIL"
SYNTHETIC_SOURCE = {
    "ref": "bench/breadth.py",
    "confidence": "scenario",
    "note": "synthetic long-tail market for the breadth benchmark: a copy of {key}'s contract under a new symbol",
}


def tail_market(scenario: Scenario, venue: str) -> str:
    """The venue's long-tail perpetual: the one with the least open interest in the population (or crowd)."""
    symbols = list(scenario.venues[venue].markets())

    def open_interest(symbol: str) -> float:
        key = f"{venue}:{symbol}"
        if scenario.population is not None and key in scenario.population.markets:
            return scenario.population.markets[key].open_interest_usd
        if key in scenario.crowd.markets:
            return scenario.crowd.markets[key].notional_usd
        return float("inf")

    return min(symbols, key=open_interest)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder, ties to the first)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    out = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def make_breadth_scenario(n_markets: int = 120, base: str = "oct-2025") -> Scenario:
    """``base`` with synthetic copies of each venue's long-tail perpetual, ``n_markets`` perpetuals at least."""
    sc = Scenario.load(base)
    if sc.shock is None or sc.shock.kind != "jump_regime":
        raise ValueError(f"{base}: the breadth scenario needs a jump_regime shock (each market's asset gets a path)")
    data: dict[str, Any] = drop_none(sc.model_dump(mode="json"))
    venues = list(sc.venues)
    existing = [len(sc.venues[v].markets()) for v in venues]
    extra = allocate(max(0, n_markets - sum(existing)), existing)
    shock = data["shock"]["assets"]
    population = data.get("population")
    weight_before = _account_weight(population)
    number = 0
    width = max(3, len(str(sum(extra))))
    for venue, count in zip(venues, extra, strict=True):
        tail = tail_market(sc, venue)
        key = f"{venue}:{tail}"
        market = sc.venues[venue].markets()[tail]
        vdata = data["venues"][venue]
        for _ in range(count):
            number += 1
            asset = f"{SYNTHETIC_PREFIX}{number:0{width}d}"
            if not tail.startswith(market.base):
                raise ValueError(f"{key}: symbol does not start with its base {market.base}; no convention to follow")
            symbol = asset + tail[len(market.base) :]
            new_key = f"{venue}:{symbol}"
            contract = copy.deepcopy(vdata["perpetuals"][tail])
            contract.update(symbol=symbol, base=asset)
            contract["source"] = {**SYNTHETIC_SOURCE, "note": SYNTHETIC_SOURCE["note"].format(key=key)}
            vdata["perpetuals"][symbol] = contract
            if vdata.get("symbols") is not None:
                vdata["symbols"] = [*vdata["symbols"], symbol]
            shock[asset] = copy.deepcopy(shock[market.base])
            for section in ("crowd", "population", "makers", "takers"):
                table = data.get(section)
                if table is not None and key in table.get("markets", {}):
                    table["markets"][new_key] = copy.deepcopy(table["markets"][key])
            if population is not None and market.base in population.get("beta_to_path", {}):
                population["beta_to_path"][asset] = population["beta_to_path"][market.base]
    if population is not None and weight_before > 0:  # the existing markets keep their share of accounts
        population["accounts"] = round(population["accounts"] * _account_weight(population) / weight_before)
    total = sum(existing) + sum(extra)
    data["name"] = f"{sc.name}-breadth-{total}"
    data["description"] = (
        f"{sc.name} with {sum(extra)} synthetic long-tail perpetuals ({total} in all), each a copy of its "
        "venue's long-tail market (bench/breadth.py)"
    )
    return Scenario.from_dict(data, f"breadth scenario from {base}")


def _account_weight(population: dict[str, Any] | None) -> float:
    if population is None:
        return 0.0
    return float(sum(m["open_interest_usd"] * m.get("account_weight", 1.0) for m in population["markets"].values()))


def synthetic_keys(scenario: Scenario) -> list[str]:
    """``venue:SYMBOL`` of the scenario's synthetic markets."""
    return [
        f"{v}:{s}"
        for v, venue in scenario.venues.items()
        for s, m in venue.markets().items()
        if m.base.startswith(SYNTHETIC_PREFIX)
    ]


def market_counts(scenario: Scenario) -> tuple[int, int]:
    """(perpetual markets, markets in all: perpetuals and simulated spot books)."""
    perps = sum(len(v.markets()) for v in scenario.venues.values())
    return perps, perps + sum(len(v.spot_markets()) for v in scenario.venues.values())


def timed_run(scenario: Scenario, steps: int, scale: float) -> dict[str, Any]:
    """Run the first ``steps`` seconds; seconds of ``sim.run()`` (build excluded) and per-step figures."""
    sc = scenario.with_(duration_s=steps)
    t_build = time.perf_counter()
    sim = Simulation(sc, scale=scale)
    built = time.perf_counter() - t_build
    t0 = time.perf_counter()
    summary = sim.run().summary
    seconds = time.perf_counter() - t0
    perps, markets = market_counts(sc)
    step_us = seconds / sc.steps * 1e6
    return {
        "name": sc.name,
        "perpetuals": perps,
        "markets": markets,
        "accounts": int(summary["accounts"]),
        "build_s": built,
        "seconds": seconds,
        "steps": sc.steps,
        "ms_per_step": step_us / 1e3,
        "us_per_step_per_perpetual": step_us / perps,
        "us_per_step_per_market": step_us / markets,
        "timing": summary.get("timing"),
        "invariants": summary.get("invariants", {}),
        "liquidations": summary.get("liquidations", {}).get("count"),
    }


def warm_up(breadth: Scenario) -> None:
    """Tiny runs so numba compiles, or loads its cache, outside the timed runs."""
    for sc in (breadth, Scenario.load("oct-2025")):
        Simulation(sc.with_(duration_s=30), scale=0.002).run()


def profile(scenario: Scenario, steps: int, scale: float, top: int = 15) -> str:
    sim = Simulation(scenario.with_(duration_s=steps), scale=scale)
    prof = cProfile.Profile()
    prof.enable()
    sim.run()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def report(result: dict[str, Any], budget_us: float) -> list[str]:
    r = result
    lines = [
        f"{r['name']}: {r['perpetuals']} perpetual markets, {r['markets']} markets in all (spot included), "
        f"{r['accounts']:,} accounts",
        f"  build {r['build_s']:.2f} s; run {r['seconds']:.2f} s for {r['steps']} steps: {r['ms_per_step']:.2f} ms per "
        f"step",
        f"  us per step per perpetual market: {r['us_per_step_per_perpetual']:.1f}; per market in all: "
        f"{r['us_per_step_per_market']:.1f} (budget {budget_us:g} us per market: "
        f"{'within' if r['us_per_step_per_perpetual'] <= budget_us else 'over'})",
        f"  invariants: {r['invariants']}; liquidations: {r['liquidations']}",
    ]
    return lines


def phase_table(result: dict[str, Any]) -> list[str]:
    timing = result.get("timing")
    if not timing or not timing.get("phases"):
        return [f"  ({result['name']}: no timing section in the summary)"]
    steps = max(1, int(timing["steps"]))
    lines = [f"  per phase ({result['name']}; us per step per perpetual / per market in all; share of the step loop):"]
    total = float(timing["total_seconds"]) or 1.0
    for name, seconds in sorted(timing["phases"].items(), key=lambda kv: -kv[1]):
        us = seconds / steps * 1e6
        lines.append(
            f"    {name:<14} {us / result['perpetuals']:8.2f} {us / result['markets']:8.2f}  {seconds / total:6.1%}"
        )
        for section, sec in timing.get("sections", {}).get(name, {}).items():
            lines.append(f"      {section:<12} {sec / steps * 1e6 / result['perpetuals']:8.2f}")
    rest = total - sum(timing["phases"].values())
    lines.append(f"    {'(loop)':<14} {rest / steps * 1e6 / result['perpetuals']:8.2f}")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--markets", type=int, default=120, help="perpetual markets in the breadth scenario (at least)")
    p.add_argument("--steps", type=int, default=600, help="simulated seconds from the start (calm before 1,800)")
    p.add_argument("--scale", type=float, default=0.05, help="crowd scale")
    p.add_argument("--write", metavar="FILE.toml", help="also write the generated scenario (loadable TOML)")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="then cProfile N steps (top 15, tottime)")
    p.add_argument("--budget-us", type=float, default=20.0, help="per-market budget of a calm step, us")
    p.add_argument("--no-baseline", action="store_true", help="skip the unmodified oct-2025 run")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    breadth = make_breadth_scenario(args.markets)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(breadth.to_toml())
        print(f"wrote {args.write}")
    print(f"date {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; nproc {os.cpu_count()}; "
          f"python {sys.version.split()[0]}")  # fmt: skip
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    warm_up(breadth)
    results = [timed_run(breadth, args.steps, args.scale)]
    if not args.no_baseline:
        results.append(timed_run(Scenario.load("oct-2025"), args.steps, args.scale))
    load_after = os.getloadavg()
    print(f"steps {args.steps}, scale {args.scale:g}")
    for r in results:
        print("\n".join(report(r, args.budget_us)))
    print("\n".join(phase_table(results[0])))
    if len(results) == 2:
        print("\n".join(phase_table(results[1])))
        b, o = results
        print(
            f"ratio {b['perpetuals']} vs {o['perpetuals']} perpetuals: step {b['ms_per_step'] / o['ms_per_step']:.2f}x "
            f"for {b['perpetuals'] / o['perpetuals']:.1f}x the markets; per perpetual market "
            f"{b['us_per_step_per_perpetual'] / o['us_per_step_per_perpetual']:.2f}x; marginal cost of an added "
            f"market {(b['ms_per_step'] - o['ms_per_step']) * 1e3 / (b['perpetuals'] - o['perpetuals']):.1f} us "
            "per step"
            if b["perpetuals"] != o["perpetuals"]
            else "same number of markets: no ratio"
        )
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.profile:
        print(f"cProfile of {args.profile} steps of {breadth.name} at scale {args.scale:g}, top 15 by tottime:")
        print(profile(breadth, args.profile, args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
