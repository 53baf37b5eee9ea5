"""Replay of Hyperliquid's 16 ADL waves of 2025-10-10 from the published outputs of Chitra et al.

Source: the ``out/`` files of ``pluriholonomic/autodeleveraging-analysis`` (MIT; Chitra, Xu, Thogiti, Trujillo;
the analysis behind arXiv:2512.01112 v3, see ``shared/reference/exchange-rules.md`` section 8), kept in
``shared/data/adl-paper/``. The files are read where they are; nothing is copied into perpstress.

The paper's objects, per wave ``t`` (ADL fills clustered globally with a 5 s gap):

- ``D_t``, the losers' deficit: the sum of the liquidated accounts' negative equity (``bad_debt_loser_waves.csv``).
- ``B_needed``, the budget the wave needed: ``sum |mark - fill price| x |size|`` over its ADL fills, the transfer
  implied by closing contracts across the mark-bankruptcy gap. Recomputed here from the 728 (wave, coin) rows of
  ``two_pass_wave_coin_gap_per_contract.csv`` (gap per contract x contracts).
- ``H_prod``, what the production queue took from winners in wealth space: each winner's equity at the wave's end
  without ADL less with ADL (a two-pass replay of the raw fill stream and account snapshots, which the published
  outputs do not include). It is an input here (``two_pass_equity_delta_by_wave.csv``); the production overshoot
  ``H_prod - B_needed`` and the severities ``theta = H / D`` (capped at 1) are recomputed.
- Pro-rata: the wealth pro-rata policy haircuts every winner the same fraction of its capacity
  ``min(PnL_i, equity_i)`` until ``B_needed`` is raised. Recomputed with perpstress's own allocation
  (:func:`perpstress.rules.adl.allocate_wealth_pro_rata`, a water-fill) over the wave's published winner capacity
  ``U_t`` (``total_cap``). The published outputs hold ``U_t`` but not each winner's capacity; a water-fill raises
  ``min(target, sum of caps)`` however the caps are split, so the budget and overshoot are exact, and the common
  haircut fraction ``B_needed / U_t`` is the largest share of equity any winner loses when some winner's
  capacity is its whole equity (the published ``max_pct_pr`` equals it in 11 of 16 waves and is below it in
  the rest). Capped (``max_haircut``) and risk-aware pro-rata raise the same total while ``max_haircut * U_t``
  covers the target; they differ in who pays, which needs the account rows.
- The stylised wealth-space queue of the paper's first versions, per coin shock (``per_shock_metrics_queue.csv``,
  1,125 shocks): its score-targeted budget is allocated in queue order over the shock's winner capacity
  (:func:`perpstress.rules.adl.allocate_queue`); overshoot ``(taken - D)+`` and residual ``(D - taken)+`` sum to the
  published $653.6M and $16.7M. The same shocks under pro-rata targeting each deficit: no overshoot, residual
  ``(D - U)+``.
- The evaluation-horizon band: the production overshoot with equities valued ``0 .. 5000`` ms after each wave.

Tolerances (asserted by ``tests/unit/studies/test_adl_waves.py`` and the example): budgets, overshoots, totals and
severities within 1e-9 relative or one cent, whichever is larger; pro-rata overshoot within 1e-6 of the budget
(the published values are float residues of order 1e-9 USD).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perpstress.errors import DataError
from perpstress.rules.adl import allocate_queue, allocate_wealth_pro_rata

GAP_MS = 5000
HORIZONS_MS = (0, 500, 1000, 2000, 5000)
REL_TOL = 1e-9
ABS_TOL_USD = 0.01


def default_data_dir() -> Path:
    """``../shared/data/adl-paper`` next to the repository this package is checked out in."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "adl-paper"


@dataclass(frozen=True)
class WaveReplay:
    """One wave: inputs, what the replay computes, and the published values it is checked against (USD)."""

    wave: int
    t_start_ms: int
    t_end_ms: int
    deficit_usd: float
    capacity_usd: float
    """``U_t``: the wave's winners' haircut capacity, sum of min(PnL, equity)."""
    budget_needed_usd: float
    """Recomputed: sum over coins of gap per contract x contracts."""
    budget_prod_usd: float
    """Input: the production queue's wealth-space haircut from the two-pass replay."""
    overshoot_prod_usd: float
    budget_pro_rata_usd: float
    overshoot_pro_rata_usd: float
    pro_rata_fraction: float
    """Share of its capacity every winner gives up under wealth pro-rata."""
    theta_prod: float
    theta_needed: float
    published: dict[str, float]
    """The same quantities as published (``policy_per_wave_metrics.csv``)."""


@dataclass(frozen=True)
class ShockTotals:
    """The per-coin stylised queue and pro-rata over the 1,125 shocks (USD)."""

    shocks: int
    queue_budget_usd: float
    queue_overshoot_usd: float
    queue_residual_usd: float
    pro_rata_overshoot_usd: float
    pro_rata_residual_usd: float
    published_overshoot_usd: float
    published_residual_usd: float


@dataclass(frozen=True)
class AdlWavesReplay:
    data_dir: Path
    waves: list[WaveReplay]
    overshoot_by_horizon_usd: dict[int, float]
    """Production overshoot summed over waves, equities valued ``horizon`` ms after each wave's end."""
    published_overshoot_by_horizon_usd: dict[int, float]
    published_headline_overshoot_usd: float
    published_band_max_usd: float
    shocks: ShockTotals

    @property
    def total_overshoot_prod_usd(self) -> float:
        return self.overshoot_by_horizon_usd[0]

    @property
    def band_max_usd(self) -> float:
        return max(self.overshoot_by_horizon_usd.values())

    def mismatches(self) -> list[str]:
        """Every reproduced number outside its tolerance, as ``what: reproduced vs published``; empty when the
        replay reproduces the publication."""
        out = []
        for w in self.waves:
            p = w.published
            for name, ours, theirs in (
                ("budget_needed", w.budget_needed_usd, p["budget_needed"]),
                ("overshoot_prod", w.overshoot_prod_usd, p["overshoot_prod"]),
                ("budget_pr", w.budget_pro_rata_usd, p["budget_pr"]),
                ("theta_prod_capped", w.theta_prod, p["theta_prod_capped"]),
                ("theta_needed_capped", w.theta_needed, p["theta_needed_capped"]),
            ):
                if not close(ours, theirs):
                    out.append(f"wave {w.wave} {name}: {ours!r} vs {theirs!r}")
            if abs(w.overshoot_pro_rata_usd - p["overshoot_pr"]) > 1e-6 * max(w.budget_needed_usd, 1.0):
                out.append(f"wave {w.wave} overshoot_pr: {w.overshoot_pro_rata_usd!r} vs {p['overshoot_pr']!r}")
            if p["max_pct_pr"] > w.pro_rata_fraction * (1 + REL_TOL):
                out.append(f"wave {w.wave} max_pct_pr {p['max_pct_pr']!r} above the common fraction")
        for h, ours in self.overshoot_by_horizon_usd.items():
            if not close(ours, self.published_overshoot_by_horizon_usd[h]):
                out.append(f"horizon {h} ms overshoot: {ours!r} vs {self.published_overshoot_by_horizon_usd[h]!r}")
        if not close(self.total_overshoot_prod_usd, self.published_headline_overshoot_usd):
            out.append(f"headline overshoot: {self.total_overshoot_prod_usd!r}")
        if not close(self.band_max_usd, self.published_band_max_usd):
            out.append(f"band max: {self.band_max_usd!r} vs {self.published_band_max_usd!r}")
        s = self.shocks
        if not close(s.queue_overshoot_usd, s.published_overshoot_usd):
            out.append(f"queue overshoot: {s.queue_overshoot_usd!r} vs {s.published_overshoot_usd!r}")
        if not close(s.queue_residual_usd, s.published_residual_usd):
            out.append(f"queue residual: {s.queue_residual_usd!r} vs {s.published_residual_usd!r}")
        return out


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL_TOL, abs_tol=ABS_TOL_USD)


def replay_adl_waves(data_dir: str | Path | None = None) -> AdlWavesReplay:
    """Replay the 16 waves and the 1,125 coin shocks from the published outputs in ``data_dir``."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if not root.is_dir():
        raise DataError(
            [
                f"{root}: no such directory; the ADL replay reads the published outputs of Chitra et al. "
                "(pluriholonomic/autodeleveraging-analysis out/); pass the directory that holds them"
            ]
        )
    policy = {int(r["wave"]): r for r in _rows(root / "policy_per_wave_metrics.csv")}
    losers = {int(r["wave"]): r for r in _rows(root / "bad_debt_loser_waves.csv")}
    overshoot_by_h: dict[int, float] = {}
    published_by_h: dict[int, float] = {}
    for r in _rows(root / f"eval_horizon_sweep_gap_ms={GAP_MS}.csv"):
        published_by_h[int(r["eval_horizon_ms"])] = _f(r["total_overshoot_prod_minus_needed_usd"])
    waves: list[WaveReplay] = []
    for h in HORIZONS_MS:
        folder = root / f"eval_horizon_sweep_gap_ms={GAP_MS}" / f"horizon_ms={h}"
        needed = _needed_budgets(_rows(folder / "two_pass_wave_coin_gap_per_contract.csv"))
        prod = {int(r["wave"]): _f(r["budget_prod_usd"]) for r in _rows(folder / "two_pass_equity_delta_by_wave.csv")}
        overshoot_by_h[h] = math.fsum(prod[w] - needed[w] for w in sorted(prod))
        if h == 0:
            waves = [_wave(w, losers[w], policy[w], needed[w], prod[w]) for w in sorted(prod)]
    headlines = _json(root / "headlines.json")
    robustness = _json(root / "overshoot_robustness.json")
    return AdlWavesReplay(
        data_dir=root,
        waves=waves,
        overshoot_by_horizon_usd=overshoot_by_h,
        published_overshoot_by_horizon_usd=published_by_h,
        published_headline_overshoot_usd=float(headlines["headline"]["prod_overshoot_vs_needed_usd"]),
        published_band_max_usd=float(robustness["O_max_band"]),
        shocks=_shocks(root),
    )


def _needed_budgets(rows: list[dict[str, str]]) -> dict[int, float]:
    """``B_needed`` per wave: gap per contract x contracts closed, summed over the wave's coins."""
    parts: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        parts[int(r["wave"])].append(_f(r["gap_per_contract_usd"]) * _f(r["qty_contracts"]))
    return {w: math.fsum(v) for w, v in parts.items()}


def _wave(wave: int, loser: dict[str, str], policy: dict[str, str], needed: float, prod: float) -> WaveReplay:
    deficit = _f(loser["deficit_usd"])
    capacity = _f(policy["total_cap"])
    # Wealth pro-rata with the wave's winners as one capacity: what a water-fill raises is min(target, sum of caps).
    taken, _unmet = allocate_wealth_pro_rata(needed, np.array([capacity]), np.array([capacity]))
    budget_pr = float(taken.sum())
    published = {
        k: _f(policy[k])
        for k in ("budget_needed", "budget_prod", "budget_pr", "overshoot_prod", "overshoot_pr", "max_pct_pr",
                  "theta_prod_capped", "theta_needed_capped", "total_cap")
    }  # fmt: skip
    return WaveReplay(
        wave=wave,
        t_start_ms=int(loser["t_start_ms"]),
        t_end_ms=int(loser["t_end_ms"]),
        deficit_usd=deficit,
        capacity_usd=capacity,
        budget_needed_usd=needed,
        budget_prod_usd=prod,
        overshoot_prod_usd=prod - needed,
        budget_pro_rata_usd=budget_pr,
        overshoot_pro_rata_usd=budget_pr - needed,
        pro_rata_fraction=budget_pr / capacity if capacity > 0 else math.nan,
        theta_prod=_capped(prod, deficit),
        theta_needed=_capped(needed, deficit),
        published=published,
    )


def _capped(budget: float, deficit: float) -> float:
    return 0.0 if deficit <= 1e-12 else min(max(budget / deficit, 0.0), 1.0)


def _shocks(root: Path) -> ShockTotals:
    rows = _rows(root / "per_shock_metrics_queue.csv")
    totals = _rows(root / "summary_totals.csv")
    queue = next((r for r in totals if r["policy"] == "queue"), None)
    if queue is None:
        raise DataError([f"{root / 'summary_totals.csv'}: no row for policy queue"])
    budget, over, resid, pr_over, pr_resid = [], [], [], [], []
    for r in rows:
        deficit, capacity, target = _f(r["deficit_usd"]), _f(r["total_capacity_usd"]), _f(r["budget_queue_usd"])
        caps = np.array([capacity])
        taken, _ = allocate_queue(target, caps, np.arange(caps.size))  # queue order over the shock's winners
        got = float(taken.sum())
        budget.append(got)
        over.append(max(got - deficit, 0.0))
        resid.append(max(deficit - got, 0.0))
        pr, _ = allocate_wealth_pro_rata(deficit, caps, caps)  # pro-rata targets the deficit itself
        pr_got = float(pr.sum())
        pr_over.append(max(pr_got - deficit, 0.0))
        pr_resid.append(max(deficit - pr_got, 0.0))
    return ShockTotals(
        shocks=len(rows),
        queue_budget_usd=math.fsum(budget),
        queue_overshoot_usd=math.fsum(over),
        queue_residual_usd=math.fsum(resid),
        pro_rata_overshoot_usd=math.fsum(pr_over),
        pro_rata_residual_usd=math.fsum(pr_resid),
        published_overshoot_usd=_f(queue["total_overshoot"]),
        published_residual_usd=_f(queue["total_residual"]),
    )


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError([f"{path}: missing; expected the published output of the ADL analysis"])
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError([f"{path}: missing; expected the published output of the ADL analysis"])
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _f(text: str) -> float:
    return float(text) if text not in {"", "nan", "NaN"} else math.nan
