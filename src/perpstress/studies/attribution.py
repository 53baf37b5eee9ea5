"""Counterfactual twins: how much of a crash the safety machinery made, and how much the news.

For a scenario and each seed, the base run and its *twins*, runs that differ from it in one named respect and share
every random stream (:mod:`perpstress.streams`: the same shock paths, crowd, taker orders and rail delays):

- ``no-cascade``: forced flow absorbed at mark (``engine.forced_flow = "absorbed_at_mark"``). Liquidation orders,
  funds' unwinds and collateral sales never reach the books; an outside absorber fills them at the mark within
  their limits, and the accounts are still closed and settled, so money is conserved and open interest balances.
  ADL closes no book orders in any rule, so it is unchanged in kind; it happens less when funds lose less.
- ``steady-makers``: makers that never withdraw (``makers.withdraws = false``); they still widen and thin with
  volatility and pull the side that adds to a full inventory.
- ``override``: the user's changes (``--set PATH=VALUE``: a venue rule, a fund size, an index method), when given.

Measures, per run and perpetual market: the **drawdown** of the mark (what margin follows) from the run's first
step to its lowest, ``1 - min / first``, and the same of the market's trade prices (``trade_drawdown``: the wick the
public saw; forced flow reaches a book's prices before an index-anchored mark); the liquidated notional and the ADL
notional. A venue's and a group's
drawdown is the median over its markets (groups: the majors, the validation's ``DEFAULT_MAJORS``; the long tail,
the rest); its liquidations and ADL are sums. A twin's **share** of a fall is ``(base - twin) / base`` of the
drawdowns, per seed: the part of the fall the twin's missing mechanism made (``no-cascade``: the cascade's share;
``steady-makers``: the makers' withdrawal's). It can be negative (the twin fell further) and is undefined where
the base did not fall. Over seeds each figure is a mean with a seed-to-seed interval (a bootstrap percentile
interval of the mean, paired by seed since twins share their seeds; none for one seed).

Output folder: ``runs/<twin>-seed<S>/`` (ordinary run directories), ``attribution_runs.parquet`` (per seed, twin
and row), ``attribution.parquet`` (over seeds), ``attribution.json`` (the same with the plan) and, with the report
extra, ``attribution.html``.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perpstress.config.scenario import Scenario
from perpstress.errors import ConfigError, UsageError
from perpstress.outputs.rundir import check_target, run_directory
from perpstress.stats import bootstrap_interval
from perpstress.sweep.grid import PathError, apply_cell
from perpstress.sweep.plan import run_key, spawn_seeds
from perpstress.validation.derive import DEFAULT_MAJORS
from perpstress.validation.rundata import RunData

BASE = "base"
TWINS: dict[str, tuple[dict[str, Any], str]] = {
    "no-cascade": ({"engine.forced_flow": "absorbed_at_mark"}, "forced flow absorbed at mark"),
    "steady-makers": ({"makers.withdraws": False}, "makers never withdraw"),
}
"""The built-in twins: their changes to the scenario and what they mean."""
OVERRIDE = "override"
MARKERS = ("attribution.json",)
"""The file that makes a folder an attribution folder (``--overwrite`` replaces only those)."""
LEVELS = ("group", "venue", "market")
GROUPS = ("majors", "long tail")
FALLS = {"drawdown": "share", "trade_drawdown": "trade_share"}
"""The falls measured, each with the name of a twin's share of it."""


@dataclass(frozen=True)
class Variant:
    name: str
    cell: dict[str, Any]
    about: str


@dataclass(frozen=True)
class AttributionPlan:
    base: Scenario
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    scale: float

    def scenario(self, variant: Variant, seed: int) -> Scenario:
        return apply_cell(self.base, variant.cell).model_copy(update={"seed": seed})

    def run_name(self, variant: Variant, seed: int) -> str:
        return f"{variant.name}-seed{seed}"

    def manifest(self) -> dict[str, Any]:
        return {
            "scenario": self.base.name,
            "base_config_hash": self.base.stable_hash(),
            "scale": self.scale,
            "seeds": list(self.seeds),
            "variants": [{"name": v.name, "changes": v.cell, "about": v.about} for v in self.variants],
            "majors": list(DEFAULT_MAJORS),
        }


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``PATH=VALUE`` strings as a cell (VALUE read as a TOML value: ``2.5e7``, ``"ranked_queue"``,
    ``{ rule = "capped_pro_rata" }``; a bare word is a string)."""
    cell: dict[str, Any] = {}
    for item in items:
        path, sep, text = item.partition("=")
        path, text = path.strip(), text.strip()
        if not sep or not path or not text:
            raise UsageError(f"--set {item!r}: write PATH=VALUE, e.g. venues.binance.insurance_fund.initial_usd=1e8")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        cell[path] = value
    return cell


def plan_attribution(
    base: Scenario, seeds: int = 1, *, scale: float = 1.0, seed: int | None = None, override: Mapping[str, Any] = {}
) -> AttributionPlan:
    """The base, the built-in twins and, when ``override`` has changes, the user's twin; every variant validated
    and checked runnable before anything runs. One seed: the scenario's (or ``seed``); more: spawned from it as
    sweeps spawn theirs."""
    if not 1 <= seeds <= 1000:
        raise UsageError(f"--seeds {seeds}: must be between 1 and 1000")
    first = base.seed if seed is None else seed
    seed_list = (first,) if seeds == 1 else tuple(spawn_seeds(first, seeds))
    variants = [Variant(BASE, {}, "the scenario as given")]
    variants += [Variant(name, dict(cell), about) for name, (cell, about) in TWINS.items()]
    if override:
        about = ", ".join(f"{k} = {json.dumps(v)}" for k, v in override.items())
        variants.append(Variant(OVERRIDE, dict(override), about))
    plan = AttributionPlan(base, tuple(variants), seed_list, scale)
    for v in variants:
        try:
            scenario = apply_cell(base, v.cell)
        except ConfigError as exc:
            raise ConfigError([f"{base.name} ({v.name}): {line}" for line in exc.problems]) from None
        except PathError as exc:
            raise ConfigError([f"{base.name} ({v.name}): {exc}"]) from None
        problems = scenario.run_problems(scale)
        if problems:
            raise ConfigError([f"{base.name} ({v.name}): {p}" for p in problems])
    return plan


Progress = Callable[[int, int], None]


@dataclass
class AttributionResult:
    plan: AttributionPlan
    out: Path
    runs: pa.Table
    """Per seed, variant and row (market, venue or group): drawdown, liquidated and ADL notional."""
    table: pa.Table
    """Over seeds, per variant and row: means, shares of the base's fall and their intervals."""
    failures: list[str] = field(default_factory=list)

    def rows(self, level: str = "group") -> list[dict[str, Any]]:
        return [r for r in self.table.to_pylist() if r["level"] == level]


def run_attribution(
    plan: AttributionPlan,
    out: str | Path,
    *,
    workers: int | None = None,
    executor: str = "auto",
    address: str | None = None,
    overwrite: bool = False,
    report: bool = True,
    progress: Progress | None = None,
) -> AttributionResult:
    """Run every variant of ``plan`` for every seed (on the sweeps' executors: serial, a process pool or Ray), write
    the run directories and the attribution tables into ``out``, and return them."""
    from perpstress.sweep.executors import choose_executor, default_workers

    out = Path(out)
    check_target(out, overwrite, MARKERS)  # before anything runs
    n_workers = default_workers() if workers is None else workers
    chosen = choose_executor(executor, n_workers, address)  # type: ignore[arg-type]
    with run_directory(out, overwrite, MARKERS) as writer:
        return _run_into(plan, writer.root, out, chosen, n_workers, address, report, progress)


def _run_into(plan: AttributionPlan, root: Path, out: Path, chosen: str, n_workers: int, address: str | None,
              report: bool, progress: Progress | None) -> AttributionResult:  # fmt: skip
    """Run the plan and write the folder's files into ``root`` (the partial folder that becomes ``out``)."""
    from perpstress.sweep.executors import execute_runs
    from perpstress.sweep.worker import RunOutcome, RunTask, SweepShared

    (root / "runs").mkdir(parents=True)
    tasks, names = [], {}
    for seed in plan.seeds:
        for v in plan.variants:
            key = run_key(plan.scenario(v, seed), plan.scale)
            tasks.append(RunTask(key, v.cell, seed, plan.scale, summaries_only=False))
            names[key] = plan.run_name(v, seed)
    done = 0
    if progress is not None:
        progress(0, len(tasks))

    def on_done(outcome: RunOutcome) -> None:
        nonlocal done
        run = root / "runs" / names[outcome.key]
        for rel, data in outcome.files.items():
            path = run / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    failures = execute_runs(chosen, SweepShared(plan.base), tasks, on_done, workers=n_workers, address=address)
    failed = [f"{names.get(f.key, f.key)}: {f.reason}" for f in failures]
    runs = measure_runs(plan, root / "runs")
    table = summarise(runs)
    result = AttributionResult(plan, out, runs, table, failed)
    pq.write_table(runs, root / "attribution_runs.parquet")
    pq.write_table(table, root / "attribution.parquet")
    (root / "attribution.json").write_text(
        json.dumps({**plan.manifest(), "failures": failed, "rows": jsonable(table.to_pylist())}, indent=1,
                   allow_nan=False) + "\n", encoding="utf-8",
    )  # fmt: skip
    if report:
        from perpstress.outputs.report import write_attribution

        write_attribution(replace(result, out=root), root / "attribution.html")  # the page reads the runs
    return result


def jsonable(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with NaN (no figure) as None, for JSON."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]


# --- measures -----------------------------------------------------------------------------------------------------


def group_of(base: str) -> str:
    return GROUPS[0] if base.upper() in DEFAULT_MAJORS else GROUPS[1]


def market_measures(run: RunData) -> list[dict[str, Any]]:
    """Per perpetual market of one run: venue, group, mark drawdown, liquidated and ADL notional (USD)."""
    liq = _notional_by_market(run.events("liquidations"))
    adl = _notional_by_market(run.events("adl"))
    rows = []
    for key in run.perpetuals:
        found = run.series(key, "mark")
        if found is None:
            continue
        last = run.series(key, "last")
        rows.append({"name": key, "venue": key.split(":")[0], "group": group_of(run.base(key)),
                     "drawdown": fall(found[1]), "trade_drawdown": fall(last[1]) if last is not None else math.nan,
                     "liquidated_usd": liq.get(key, 0.0), "adl_usd": adl.get(key, 0.0)})  # fmt: skip
    return rows


def fall(prices: np.ndarray) -> float:
    """``1 - min / first`` of the finite prices (NaN when there are none)."""
    x = prices[np.isfinite(prices)]
    return float(1.0 - x.min() / x[0]) if x.size and x[0] > 0 else math.nan


def _notional_by_market(events: dict[str, np.ndarray] | None) -> dict[str, float]:
    if not events or "market" not in events or "notional_usd" not in events:
        return {}
    out: dict[str, float] = {}
    for m, usd in zip(events["market"].tolist(), events["notional_usd"].tolist(), strict=True):
        out[str(m)] = out.get(str(m), 0.0) + abs(float(usd))
    return out


def rolled_up(markets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The market rows plus one row per venue and per group: median drawdown, summed liquidations and ADL."""
    rows = [{"level": "market", **r} for r in markets]
    for level, key in (("venue", "venue"), ("group", "group")):
        names = sorted({r[key] for r in markets}, key=lambda n: (GROUPS.index(n) if n in GROUPS else 0, n))
        for name in names:
            members = [r for r in markets if r[key] == name]
            rows.append({"level": level, "name": name, "venue": name if level == "venue" else "",
                         "group": name if level == "group" else "",
                         **{k: _median([r[k] for r in members]) for k in FALLS},
                         "liquidated_usd": float(sum(r["liquidated_usd"] for r in members)),
                         "adl_usd": float(sum(r["adl_usd"] for r in members))})  # fmt: skip
    return rows


def _median(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=float)
    return float(np.nanmedian(x)) if np.isfinite(x).any() else math.nan


def measure_runs(plan: AttributionPlan, runs_dir: Path) -> pa.Table:
    """Every finished run's rows, keyed by seed and variant (a failed run's rows are missing)."""
    rows = []
    for seed in plan.seeds:
        for v in plan.variants:
            path = runs_dir / plan.run_name(v, seed)
            if not (path / "summary.json").is_file():
                continue
            for r in rolled_up(market_measures(RunData(path))):
                rows.append({"seed": seed, "variant": v.name, **r})
    schema = pa.schema([("seed", pa.int64()), ("variant", pa.string()), ("level", pa.string()), ("name", pa.string()),
                        ("venue", pa.string()), ("group", pa.string()), ("drawdown", pa.float64()),
                        ("trade_drawdown", pa.float64()),
                        ("liquidated_usd", pa.float64()), ("adl_usd", pa.float64())])  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and its 95 % bootstrap percentile interval
    (:func:`perpstress.stats.bootstrap_interval`, reproducible); NaN bounds for fewer than two values, all NaN
    for none."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    if x.size == 1:
        return float(x[0]), math.nan, math.nan
    low, high = bootstrap_interval(x)
    return float(x.mean()), low, high


def share(base: float, twin: float) -> float:
    """The part of the base's fall the twin did not have: ``(base - twin) / base``; NaN where the base fell by
    less than 0.1 % (a share of nothing)."""
    if not (np.isfinite(base) and np.isfinite(twin)) or base < 1e-3:
        return float("nan")
    return (base - twin) / base


def summarise(runs: pa.Table) -> pa.Table:
    """Over seeds, per row and variant: mean drawdown, liquidations and ADL with intervals, and the mean share of the
    base's fall with its interval, from per-seed shares (paired by seed)."""
    data = runs.to_pylist()
    by: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for r in data:
        if (r["level"], r["name"]) not in order:
            order.append((r["level"], r["name"]))
        by.setdefault((r["level"], r["name"], r["variant"]), {})[r["seed"]] = r
    variants = list(dict.fromkeys(r["variant"] for r in data))
    out = []
    for level, name in sorted(order, key=lambda k: LEVELS.index(k[0])):
        base = by.get((level, name, BASE), {})
        for v in variants:
            mine = by.get((level, name, v), {})
            if not mine:
                continue
            first = next(iter(mine.values()))
            row: dict[str, Any] = {"level": level, "name": name, "venue": first["venue"], "group": first["group"],
                                   "variant": v, "seeds": len(mine)}  # fmt: skip
            for measure in (*FALLS, "liquidated_usd", "adl_usd"):
                m, lo, hi = mean_interval([r[measure] for r in mine.values()])
                row[measure], row[measure + "_lo"], row[measure + "_hi"] = m, lo, hi
            for measure, name_ in FALLS.items():
                paired = [share(base[s][measure], r[measure]) for s, r in mine.items() if s in base]
                m, lo, hi = mean_interval(paired) if v != BASE else (math.nan,) * 3
                row[name_], row[name_ + "_lo"], row[name_ + "_hi"] = m, lo, hi
            out.append(row)
    return pa.Table.from_pylist(out) if out else pa.table({"level": pa.array([], pa.string())})
