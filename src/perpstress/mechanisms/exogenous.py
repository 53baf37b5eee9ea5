"""Exogenous drivers: index paths and risk appetite for every step, generated once before the run.

The rule modelled is in :mod:`perpstress.config.shock`. Paths are drawn from the run's generator only, so the same
scenario and seed give the same paths; an asset that tracks another draws nothing (adding one leaves the other
assets' paths as they were). Left out: intraday seasonality, volume; correlation beyond one common factor.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from perpstress.config.shock import JumpRegimeShock, ReplayShock, ShockConfig
from perpstress.errors import DataError
from perpstress.mechanisms.wider_market import WiderMarket
from perpstress.state.clock import Clock
from perpstress.state.portfolio import F64
from perpstress.state.world import World


@dataclass(frozen=True)
class ExogenousPaths:
    """``index[step, asset]`` (quote units) and ``appetite[step]`` in [0, 1]; step 0 is the start."""

    assets: tuple[str, ...]
    index: F64
    appetite: F64

    def asset(self, name: str) -> int:
        return self.assets.index(name)


def generate(
    shock: ShockConfig, steps: int, step_s: float, ts_start_ms: int, rng: np.random.Generator
) -> ExogenousPaths:
    if isinstance(shock, JumpRegimeShock):
        return _jump_regime(shock, steps, step_s, rng)
    return _replay(shock, steps, step_s, ts_start_ms)


def _jump_regime(shock: JumpRegimeShock, steps: int, step_s: float, rng: np.random.Generator) -> ExogenousPaths:
    t = np.arange(steps) * step_s
    after = t >= shock.at_s
    since = np.where(after, t - shock.at_s, 0.0)
    decay = np.where(after, 0.5 ** (since / shock.half_life_s), 0.0)
    vol = shock.calm_vol + (shock.stress_vol - shock.calm_vol) * decay
    factor = rng.standard_normal(steps) * vol * np.sqrt(step_s)
    factor[0] = 0.0
    jump_step = int(np.searchsorted(t, shock.at_s))
    if jump_step < steps:
        drift_from = _spread(factor, jump_step, shock.jump, shock.jump_s, step_s)
        if shock.drift_s > 0:
            _spread(factor, drift_from, shock.drift, shock.drift_s, step_s)
    names = tuple(shock.assets)
    index = np.empty((steps, len(names)))
    for j, name in enumerate(names):
        a = shock.assets[name]
        if a.tracks is not None:
            continue
        own = rng.standard_normal(steps) * a.idio_vol * np.sqrt(step_s)
        own[0] = 0.0
        index[:, j] = shock.start_price(name) * np.exp(np.cumsum(a.beta * factor + own))
    for j, name in enumerate(names):
        a = shock.assets[name]
        if a.tracks is not None:
            index[:, j] = a.rate * index[:, names.index(a.tracks)]
    recovery = np.where(after, 0.5 ** (since / shock.appetite_half_life_s), 0.0)
    appetite = 1.0 - (1.0 - shock.appetite_floor) * recovery
    return ExogenousPaths(assets=names, index=index, appetite=appetite)


def _spread(factor: F64, start: int, move: float, seconds: float, step_s: float) -> int:
    """Add the log-move ``move`` to ``factor`` evenly over the steps ``seconds`` cover from ``start`` (at least one
    step); return the step after them."""
    n = max(1, round(seconds / step_s))
    factor[start : min(factor.size, start + n)] += move / n
    return start + n


def _replay(shock: ReplayShock, steps: int, step_s: float, ts_start_ms: int) -> ExogenousPaths:
    ts, cols = read_price_csv(shock.csv, shock.assets)
    grid = ts_start_ms + np.arange(steps) * step_s * 1000.0
    if grid[0] < ts[0] or grid[-1] > ts[-1]:
        raise DataError([f"{shock.csv}: covers {_iso(ts[0])} to {_iso(ts[-1])}, the run needs {_iso(grid[0])} to "
                         f"{_iso(grid[-1])}"])  # fmt: skip
    index = np.column_stack([np.interp(grid, ts, cols[:, j]) for j in range(cols.shape[1])])
    log_ret = np.abs(np.diff(np.log(index[:, 0]), prepend=np.log(index[0, 0])))
    calm = np.median(log_ret) + 1e-12
    window = max(1, int(300 / step_s))
    realised = np.convolve(log_ret, np.ones(window) / window, mode="same")
    appetite = np.clip(calm * 3.0 / np.maximum(realised, calm * 3.0), 0.0, 1.0)
    return ExogenousPaths(assets=tuple(shock.assets), index=index, appetite=appetite)


def read_price_csv(path: Path, assets: tuple[str, ...]) -> tuple[F64, F64]:
    """Read ``ts`` and the asset columns; every bad row is reported by line and field, and the file refused."""
    if not path.is_file():
        raise DataError([f"{path}: no such price file"])
    problems: list[str] = []
    ts: list[float] = []
    rows: list[list[float]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in ("ts", *assets) if c not in header]
        if missing:
            raise DataError([f"{path}: line 1: missing column(s) {', '.join(missing)} (has {', '.join(header)})"])
        for line, row in enumerate(reader, start=2):
            try:
                stamp = _parse_ts(row["ts"])
            except ValueError:
                problems.append(f"{path}: line {line}: ts: {row['ts']!r} is neither Unix ms nor ISO-8601")
                continue
            values = []
            for a in assets:
                try:
                    v = float(row[a])
                except (TypeError, ValueError):
                    problems.append(f"{path}: line {line}: {a}: {row[a]!r} is not a number")
                    continue
                if not v > 0:
                    problems.append(f"{path}: line {line}: {a}: price {v:g} must be positive")
                values.append(v)
            if ts and stamp <= ts[-1]:
                problems.append(f"{path}: line {line}: ts: not after the previous row")
            ts.append(stamp)
            rows.append(values)
    if problems:
        raise DataError(problems)
    if len(ts) < 2:
        raise DataError([f"{path}: needs at least two rows"])
    return np.asarray(ts), np.asarray(rows)


def _parse_ts(text: str) -> float:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000.0


def _iso(ms: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat()


class ExogenousPhase:
    """Sets the World's "now" from the clock and the paths: time, step, each market's fundamental value (the path,
    times the wider market's answer to the venues' flow when ``wider`` is given), the risk appetite, and the index
    too when no index is built from simulated spot books (``endogenous_index`` false)."""

    def __init__(self, world: World, endogenous_index: bool, wider: WiderMarket | None = None) -> None:
        self.world = world
        self.endogenous_index = endogenous_index
        self.wider = wider
        """The wider market's answer to the venues' flow (``[wider_market]``), or none."""

    def __call__(self, clock: Clock) -> None:
        w = self.world
        w.now_ms = clock.ts_ms
        w.step = clock.step
        w.fundamental = w.paths.index[clock.step, w.asset_of]
        if self.wider is not None:
            self.wider.update()
            w.fundamental = w.fundamental * self.wider.factor()
        if not self.endogenous_index:
            w.index_now = w.fundamental
        w.appetite = float(w.paths.appetite[clock.step])
