"""Compare a run with the real October 10-11, 2025 crash: targets, each with a source and a tolerance fixed up front.

The targets live in ``oct2025_targets.toml`` (shipped with the package): the real figure, its source and the band
``[low, high]`` a run must land in. Each target's ``id`` names a measure here, computed from the run directory
(``summary.json``, ``timeseries.parquet``, ``events/*.parquet``; markets keyed ``venue:SYMBOL``). Outcomes:

- ``pass``: the measure lies in the band; ``fail``: it does not, or the run lacks what the event had (no ADL at all);
- ``n/a``: the run cannot say (no ETH market, no USDe collateral, a run too short to cover the target's window);
  the reason is given. An n/a is never counted as a pass.

Price measures read the mark (what margin follows) except the small-perpetual wicks, read on trades as the reports
did. Depth is sampled every 30 s, like Binance's archive, before the same measure as the real data is applied
(:mod:`perpstress.validation.metrics`). Open interest is BTC's, as the published fall is, from the step before the
shock; ADL is weighed by the PnL it took from the winners it closed, as the real budget is, not by notional.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError

from perpstress.config.base import FrozenModel
from perpstress.errors import ConfigError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.validation.metrics import (
    MINUTE_MS,
    depth_episode,
    level_before,
    low_time,
    max_drawdown,
    pnl_taken,
    share_in,
    snapshots,
)
from perpstress.validation.rundata import RunData

TARGETS_FILE = "oct2025_targets.toml"
DAY_MS = 86_400_000
Unit = Literal["usd", "fraction", "minutes", "price", "utc_time"]


class EventSpec(FrozenModel):
    name: str
    shock_utc: datetime = Field(description="when the news hit the tape (real data)")
    majors: tuple[str, ...] = Field(min_length=1, description="bases that are not small perpetuals")
    reference_market: str = Field(description="venue:SYMBOL the BTC price and depth targets read")
    adl_source_venue: str | None = Field(None, description="the venue whose ADL the real ADL figure counts")


class TargetSpec(FrozenModel):
    id: str
    title: str
    unit: Unit
    real: float | datetime
    real_text: str
    low: float | datetime
    high: float | datetime
    source: str
    source_label: str = Field(description="a short name of the source for tables")
    tolerance_note: str
    min_markets: int = Field(3, ge=1, description="small_perp_drawdown: markets needed")
    recovery_fraction: float = Field(0.5, gt=0, le=1, description="depth recovery: share of the pre-crash level")


class CollateralLowSpec(FrozenModel):
    """A collateral asset on one venue whose lows are shown beside the targets, not judged: the lowest price of
    the venue's own spot book of the asset and of the venue's margin price, with the real book low beside them."""

    asset: str = Field(description="collateral asset as the scenario names it (WBETH)")
    venue: str
    title: str
    real: float = Field(gt=0, description="the real low of the venue's own spot book, quote units")
    real_text: str
    source: str
    source_label: str = Field(description="a short name of the source for tables")


class TargetFile(FrozenModel):
    event: EventSpec
    targets: tuple[TargetSpec, ...]
    collateral: tuple[CollateralLowSpec, ...] = Field((), description="collateral lows shown beside the targets")


def load_targets(path: str | Path | None = None) -> TargetFile:
    """The targets file (default: the package's ``oct2025_targets.toml``)."""
    if path is None:
        text = resources.files(__package__).joinpath(TARGETS_FILE).read_text(encoding="utf-8")
        name = f"perpstress/validation/{TARGETS_FILE}"
    else:
        text, name = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        spec = TargetFile.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError([f"{name}: {exc}"]) from None
    unknown = [t.id for t in spec.targets if t.id not in MEASURES]
    if unknown:
        raise ConfigError([f"{name}: targets {', '.join(unknown)}: no such measure ({', '.join(MEASURES)})"])
    return spec


@dataclass(frozen=True)
class Measurement:
    """What a run shows for one target. ``value`` None: n/a with ``reason`` (or fail when ``missing_fails``)."""

    value: float | None
    detail: str = ""
    reason: str = ""
    missing_fails: bool = False


@dataclass(frozen=True)
class TargetResult:
    spec: TargetSpec
    measurement: Measurement
    status: Literal["pass", "fail", "n/a"]

    @property
    def simulated_text(self) -> str:
        m = self.measurement
        if m.value is None:
            return f"n/a: {m.reason}" if self.status == "n/a" else m.reason
        return format_value(self.spec.unit, m.value)

    @property
    def tolerance_text(self) -> str:
        return f"{format_value(self.spec.unit, self.spec.low)} to {format_value(self.spec.unit, self.spec.high)}"

    def to_dict(self) -> dict[str, Any]:
        s, m = self.spec, self.measurement
        return {
            "id": s.id,
            "title": s.title,
            "status": self.status,
            "simulated": _json_value(s.unit, m.value),
            "simulated_text": self.simulated_text,
            "detail": m.detail,
            "reason": m.reason,
            "tolerance": {
                "low": _json_value(s.unit, s.low),
                "high": _json_value(s.unit, s.high),
                "text": self.tolerance_text,
                "note": s.tolerance_note,
            },
            "real": _json_value(s.unit, s.real),
            "real_text": s.real_text,
            "unit": s.unit,
            "source": s.source,
            "source_label": s.source_label,
        }


def format_value(unit: str, value: float | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%H:%M UTC")
    if unit == "utc_time":
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%H:%M:%S UTC")
    if unit == "usd":
        return f"${value / 1e9:,.2f}B" if abs(value) >= 1e8 else f"${value:,.0f}"
    if unit == "fraction":
        return f"{value:.1%}"
    if unit == "minutes":
        return f"{value:,.1f} min"
    return f"{value:.4f}"


def _json_value(unit: str, value: float | datetime | None) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if unit == "utc_time":
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return float(value)


def _bound(value: float | datetime) -> float:
    return value.timestamp() * 1000 if isinstance(value, datetime) else float(value)


def judge(spec: TargetSpec, m: Measurement) -> TargetResult:
    if m.value is not None and not math.isfinite(m.value):
        m = Measurement(None, detail=m.detail, reason=f"the measure is not a finite number ({m.value})")
    if m.value is None:
        return TargetResult(spec, m, "fail" if m.missing_fails else "n/a")
    ok = _bound(spec.low) <= m.value <= _bound(spec.high)
    return TargetResult(spec, m, "pass" if ok else "fail")


# --- measures --------------------------------------------------------------------------------------------------

Measure = Callable[[RunData, TargetSpec, EventSpec], Measurement]
MEASURES: dict[str, Measure] = {}


def _measure(fn: Measure) -> Measure:
    MEASURES[fn.__name__] = fn
    return fn


def _first_day_liquidations(run: RunData) -> tuple[float, float] | str:
    """(total, long) liquidated USD over the run's first 24 h, or why it cannot be said."""
    ev = run.events("liquidations")
    if ev is not None and "notional_usd" in ev:
        notional = ev["notional_usd"].astype(float)
        keep = np.ones(notional.size, dtype=bool)
        if run.start_ms is not None and "ts_ms" in ev:
            keep = ev["ts_ms"] < run.start_ms + DAY_MS
        side = ev["side"] if "side" in ev else np.zeros(notional.size)
        return float(math.fsum(notional[keep])), float(math.fsum(notional[keep & (side > 0)]))
    liq = run.summary.get("liquidations")
    seconds = run.summary.get("simulated_seconds")
    if isinstance(liq, dict) and "notional_usd" in liq and seconds is not None and seconds <= 86_400:
        return float(liq["notional_usd"]), float(liq.get("long_notional_usd", 0.0))
    return "no liquidation events and no summary covering the first day"


def _span(run: RunData) -> str:
    if run.start_ms is None or run.end_ms is None:
        return "the run"
    hours = (run.end_ms - run.start_ms) / 3_600_000
    return f"the run's first {min(hours, 24):.1f} h"


@_measure
def liquidations_24h_usd(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    got = _first_day_liquidations(run)
    if isinstance(got, str):
        return Measurement(None, reason=got)
    return Measurement(got[0], detail=f"liquidated notional over {_span(run)}")


@_measure
def liquidations_long_share(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    got = _first_day_liquidations(run)
    if isinstance(got, str):
        return Measurement(None, reason=got)
    total, long = got
    if total <= 0:
        return Measurement(None, reason="no liquidations in the run")
    return Measurement(long / total, detail=f"${long / 1e6:,.1f}M of ${total / 1e6:,.1f}M long")


def _reference(run: RunData, base: str, event: EventSpec) -> str | None:
    """The market a price target for ``base`` reads: the event's reference market if it is ``base``'s, else the
    first perpetual on ``base`` (run order)."""
    if event.reference_market in run.perpetuals and run.base(event.reference_market) == base:
        return event.reference_market
    return next((k for k in run.perpetuals if run.base(k) == base), None)


def _drawdown(run: RunData, base: str, event: EventSpec) -> Measurement:
    key = _reference(run, base, event)
    if key is None:
        return Measurement(None, reason=f"no {base} perpetual in the run")
    s = run.series(key, "mark")
    if s is not None:
        dd = max_drawdown(*s)
        return Measurement(dd.fraction, detail=f"{key} mark {dd.peak:,.2f} -> {dd.low:,.2f} at "
                                               f"{format_value('utc_time', dd.low_ts_ms)}")  # fmt: skip
    prices = (run.summary.get("prices") or {}).get(key)
    if prices and "max_drawdown" in prices:
        return Measurement(-float(prices["max_drawdown"]), detail=f"{key} mark (summary.json)")
    return Measurement(None, reason=f"no mark prices for {key}")


@_measure
def btc_drawdown(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    return _drawdown(run, "BTC", event)


@_measure
def eth_drawdown(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    return _drawdown(run, "ETH", event)


@_measure
def btc_low_time(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    key = _reference(run, "BTC", event)
    if key is None:
        return Measurement(None, reason="no BTC perpetual in the run")
    s = run.series(key, "mark")
    if s is None:
        return Measurement(None, reason=f"no mark time series for {key}")
    ts = s[0]
    lo, hi = _bound(spec.low), _bound(spec.high)
    if ts[0] > lo or ts[-1] < hi:
        covers = f"{_hm(int(ts[0]))}-{_hm(int(ts[-1]))} UTC on {_day(int(ts[0]))}"
        band = f"{_hm(int(lo))}-{_hm(int(hi))} UTC on {_day(int(lo))}"
        return Measurement(None, reason=f"the run covers {covers}, not the whole band {band}")
    low, at = low_time(*s)
    return Measurement(float(at), detail=f"{key} mark low {low:,.2f}")


def _hm(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%H:%M")


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _small(run: RunData, event: EventSpec) -> tuple[list[str], list[str]]:
    majors = {m.upper() for m in event.majors}
    small = [k for k in run.perpetuals if run.base(k) not in majors]
    return small, [k for k in run.perpetuals if k not in small]


@_measure
def small_perp_drawdown(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    small, _ = _small(run, event)
    if len(small) < spec.min_markets:
        names = ", ".join(small) or "none"
        return Measurement(None, reason=f"{len(small)} small perpetual(s) in the run ({names}); the target needs "
                                        f"{spec.min_markets}")  # fmt: skip
    falls = []
    for key in small:
        s = run.series(key, "last")
        if s is None or not np.isfinite(s[1]).any():
            s = run.series(key, "mark")
        if s is None or not np.isfinite(s[1]).any():
            return Measurement(None, reason=f"no prices for {key}")
        falls.append(max_drawdown(*s).fraction)
    f = np.array(falls)
    return Measurement(float(np.median(f)), detail=f"{len(small)} markets: {f.min():.0%} to {f.max():.0%}; "
                                                   f"{int((f >= 0.5).sum())} fell 50 % or more")  # fmt: skip


def _open_interest(run: RunData, keys: list[str]) -> tuple[float, float, int | None, str] | str:
    """Open interest in USD at mark summed over ``keys``: at the last step before the scenario's shock (the first
    step when its time is unknown) and at the last step, the start's time and how it was chosen; or why not."""
    start = end = 0.0
    at: int | None = None
    for key in keys:
        s = run.series(key, "open_interest_usd")
        if s is None:
            break
        level, at = level_before(*s, run.shock_ms)
        start += level
        end += float(s[1][-1])
    else:
        if at is not None and run.shock_ms is not None and at < run.shock_ms:
            return start, end, at, "the step before the shock"
        return start, end, at, "the first step"
    oi = run.summary.get("open_interest") or {}
    if not all(k in oi for k in keys):
        return "no open interest recorded"
    start = math.fsum(float(oi[k].get("start_usd", 0.0)) for k in keys)
    end = math.fsum(float(oi[k].get("end_usd", 0.0)) for k in keys)
    return start, end, None, "the first step (summary.json: no time series)"


@_measure
def open_interest_fall(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    btc = [k for k in run.perpetuals if run.base(k) == "BTC"]
    if not btc:
        return Measurement(None, reason="no BTC perpetual in the run")
    got = _open_interest(run, btc)
    if isinstance(got, str):
        return Measurement(None, reason=got)
    start, end, at, how = got
    if start <= 0:
        return Measurement(None, reason="no BTC open interest at the start")
    venues = sorted({k.split(":", 1)[0] for k in btc})
    when = f" at {format_value('utc_time', at)}" if at is not None else ""
    detail = (f"BTC perpetuals on {len(venues)} venue(s) ({', '.join(venues)}): ${start / 1e9:,.2f}B{when} ({how}) "
              f"-> ${end / 1e9:,.2f}B at the end")  # fmt: skip
    every = _open_interest(run, run.perpetuals)
    if not isinstance(every, str) and every[0] > 0:
        detail += f"; all {len(run.perpetuals)} perpetuals {every[1] / every[0] - 1:+.1%}"
    return Measurement(1.0 - end / start, detail=detail)


def _shock_ms(run: RunData, key: str) -> tuple[int | None, str]:
    if run.shock_ms is not None:
        return run.shock_ms, "the scenario's shock"
    s = run.series(key, "mark")
    if s is None or not np.isfinite(s[1]).any():
        return None, ""
    ts, mark = s
    low = int(np.nanargmin(mark))
    top = np.nanmax(mark[: low + 1])
    last_top = int(np.flatnonzero(mark[: low + 1] == top)[-1])  # where the fall to the low begins
    return int(ts[last_top]), "the mark's last peak before its low"


def _depth(run: RunData, spec: TargetSpec, event: EventSpec) -> tuple[Any, str] | Measurement:
    key = event.reference_market
    if key not in run.perpetuals:
        return Measurement(None, reason=f"no {key} in the run (the real depth is Binance BTCUSDT's)")
    s = run.series(key, "depth_ask_1pct_usd")
    if s is None:
        return Measurement(None, reason=f"no ask depth series for {key}")
    shock, how = _shock_ms(run, key)
    if shock is None:
        return Measurement(None, reason="the shock's time is unknown")
    grid, values = snapshots(*s)
    try:
        ep = depth_episode(grid, values, shock, recovery_fraction=spec.recovery_fraction)
    except ValueError as exc:
        return Measurement(None, reason=f"{key}: {exc}")
    if not ep.pre_level > 0:
        return Measurement(None, reason=f"{key} had no ask depth within 1 % before {how}: nothing to collapse")
    return ep, how


@_measure
def btc_ask_depth_collapse(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    got = _depth(run, spec, event)
    if isinstance(got, Measurement):
        return got
    ep, how = got
    return Measurement(ep.collapse, detail=f"${ep.pre_level / 1e6:,.1f}M before {how} -> ${ep.trough / 1e6:,.1f}M at "
                                           f"{format_value('utc_time', ep.trough_ts_ms)}")  # fmt: skip


@_measure
def btc_ask_depth_recovery_minutes(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    got = _depth(run, spec, event)
    if isinstance(got, Measurement):
        return got
    ep, _ = got
    if ep.recovery_minutes is not None:
        return Measurement(ep.recovery_minutes, detail=f"back to {spec.recovery_fraction:.0%} of "
                                                      f"${ep.pre_level / 1e6:,.1f}M at "
                                                      f"{format_value('utc_time', ep.recovered_ts_ms)}")  # fmt: skip
    left = ((run.end_ms or ep.trough_ts_ms) - ep.trough_ts_ms) / MINUTE_MS
    if left >= _bound(spec.high):
        return Measurement(None, reason=f"not back to {spec.recovery_fraction:.0%} within {left:,.0f} min of the "
                                        "trough", missing_fails=True)  # fmt: skip
    return Measurement(None, reason=f"the run ends {left:,.1f} min after the trough, before the depth is back to "
                                    f"{spec.recovery_fraction:.0%}")  # fmt: skip


def _adl_by_market(run: RunData) -> tuple[dict[str, float], dict[str, float]] | str:
    """ADL per market: the PnL taken from the winners closed (:func:`~perpstress.validation.metrics.pnl_taken` of
    each fill) and the notional, from ``events/adl.parquet`` (else ``summary.json``); or why not."""
    taken: dict[str, float] = {}
    notional: dict[str, float] = {}
    ev = run.events("adl")
    if ev is not None and {"market", "notional_usd"} <= set(ev):
        if "winner_pnl_usd" not in ev:
            return "the run's ADL table has no winner_pnl_usd column (written before it was recorded)"
        markets = ev["market"].tolist()
        for key, pnl, usd in zip(markets, pnl_taken(ev["winner_pnl_usd"]).tolist(),
                                 ev["notional_usd"].astype(float).tolist(), strict=True):  # fmt: skip
            taken[key] = taken.get(key, 0.0) + pnl
            notional[key] = notional.get(key, 0.0) + usd
        return taken, notional
    adl = run.summary.get("adl") or {}
    notional = {k: float(v) for k, v in (adl.get("by_market") or {}).items()}
    if "pnl_taken_by_market" not in adl:
        if math.fsum(notional.values()) > 0:
            return "the run's summary has ADL notional but not the PnL ADL took (written before it was recorded)"
        return taken, notional
    return {k: float(v) for k, v in adl["pnl_taken_by_market"].items()}, notional


@_measure
def adl_small_perp_share(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    small, majors = _small(run, event)
    if not small or not majors:
        return Measurement(None, reason=f"the run has {'no small' if not small else 'no major'} perpetuals")
    got = _adl_by_market(run)
    if isinstance(got, str):
        return Measurement(None, reason=got)
    taken, notional = got
    if not math.fsum(notional.values()) > 0:
        return Measurement(None, reason="no ADL in the run (the event had ADL)", missing_fails=True)
    keys = sorted(set(taken) | set(notional))
    small_keys = set(small)
    is_small = np.array([k in small_keys for k in keys], dtype=bool)
    share = share_in([taken.get(k, 0.0) for k in keys], is_small)
    if share is None:
        return Measurement(None, reason="ADL took no PnL from the winners it closed", missing_fails=True)
    venues = sorted({k.split(":", 1)[0] for k in keys if notional.get(k, 0.0) > 0})
    by_notional = share_in([notional.get(k, 0.0) for k in keys], is_small)
    detail = (f"${math.fsum(taken.values()) / 1e6:,.1f}M of PnL taken in ${math.fsum(notional.values()) / 1e6:,.1f}M "
              f"of ADL on {', '.join(venues)}; by notional {by_notional or 0.0:.1%} in small perpetuals")  # fmt: skip
    source = event.adl_source_venue
    if source is not None and source in venues:
        own = [k.startswith(f"{source}:") for k in keys]
        alone = share_in([taken.get(k, 0.0) if o else 0.0 for k, o in zip(keys, own, strict=True)], is_small)
        if alone is not None:
            detail += f"; {source} alone {alone:.1%}"
    oi = run.summary.get("open_interest") or {}
    oi_total = math.fsum(float(v.get("start_usd", 0.0)) for v in oi.values())
    oi_small = math.fsum(float(oi[k].get("start_usd", 0.0)) for k in small if k in oi)
    if oi_total > 0:
        detail += f"; small perpetuals hold {oi_small / oi_total:.1%} of open interest"
    return Measurement(share, detail=detail)


def _book_lows(run: RunData, asset: str) -> dict[str, float]:
    """Lowest last trade per venue of the venues' ``ASSET/...`` spot books in the time series."""
    lows: dict[str, float] = {}
    for key in sorted(set(run.timeseries.get("market", np.zeros(0)).tolist())):
        venue, _, symbol = key.partition(":")
        if symbol.upper().startswith(f"{asset.upper()}/"):
            s = run.series(key, "last")
            if s is not None and np.isfinite(s[1]).any():
                lows[venue] = min(lows.get(venue, np.inf), float(np.nanmin(s[1])))
    return lows


def collateral_margin_lows(run: RunData, asset: str) -> dict[str, float] | None:
    """Lowest margin price of collateral ``asset`` per venue: summary.json's collateral, else
    events/collateral.parquet, else the venues' ``ASSET/...`` spot books in the time series."""
    lows: dict[str, float] = {}
    for name, entry in (run.summary.get("collateral") or {}).items():
        held, _, venue = name.partition("@")
        if held.upper() == asset.upper() and isinstance(entry, dict) and "min_price" in entry:
            lows[venue] = float(entry["min_price"])
    if lows:
        return lows
    ev = run.events("collateral")
    if ev is not None and {"asset", "venue", "price"} <= set(ev):
        for venue, held, price in zip(ev["venue"].tolist(), ev["asset"].tolist(), ev["price"].astype(float),
                                      strict=True):  # fmt: skip
            if str(held).upper() == asset.upper() and np.isfinite(price):
                lows[venue] = min(lows.get(venue, np.inf), float(price))
        if lows:
            return lows
    return _book_lows(run, asset) or None


def collateral_low(run: RunData, spec: CollateralLowSpec) -> dict[str, Any]:
    """The run's lows of ``spec``'s asset (any case) on its venue: its own spot book's (summary.json's
    ``min_book_price``, else events/collateral.parquet's ``book_price``, else the book's last trades in the time
    series), the margin price's, and the book's deepest discount to the reference price (events/collateral.parquet);
    each None when the run cannot say."""
    entries = {k.upper(): v for k, v in (run.summary.get("collateral") or {}).items() if isinstance(v, dict)}
    entry = entries.get(f"{spec.asset}@{spec.venue}".upper(), {})
    book = entry.get("min_book_price")
    margin = entry.get("min_price")
    discount = None
    ev = run.events("collateral")
    if ev is not None and {"asset", "venue", "reference_price", "book_price"} <= set(ev):
        mine = (np.char.upper(ev["asset"].astype(str)) == spec.asset.upper()) & (ev["venue"] == spec.venue)
        books = ev["book_price"][mine].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = books / ev["reference_price"][mine].astype(float)
        if np.isfinite(ratio).any():
            discount = float(1.0 - np.nanmin(ratio))
        if book is None and np.isfinite(books).any():
            book = float(np.nanmin(books))
    if book is None:
        book = _book_lows(run, spec.asset).get(spec.venue)
    return {
        "asset": spec.asset,
        "venue": spec.venue,
        "title": spec.title,
        "real": spec.real,
        "real_text": spec.real_text,
        "source": spec.source,
        "source_label": spec.source_label,
        "book_low": None if book is None else float(book),
        "margin_low": None if margin is None else float(margin),
        "book_discount": discount,
        "liquidations_caused": entry.get("liquidations_caused"),
        "holders": entry.get("holders"),
    }


@_measure
def usde_depeg_low(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    lows = collateral_margin_lows(run, "USDE")
    if not lows:
        return Measurement(None, reason="no USDe collateral or book in the run")
    venue = min(lows, key=lambda v: lows[v])
    return Measurement(lows[venue], detail=f"on {venue}")


@_measure
def usde_other_venues_low(run: RunData, spec: TargetSpec, event: EventSpec) -> Measurement:
    lows = collateral_margin_lows(run, "USDE")
    if not lows or len(lows) < 2:
        return Measurement(None, reason=f"USDe on {len(lows or {})} venue(s); the target needs two or more")
    worst = min(lows, key=lambda v: lows[v])
    others = {v: p for v, p in lows.items() if v != worst}
    venue = min(others, key=lambda v: others[v])
    return Measurement(others[venue], detail=f"on {venue} ({worst} excluded: the depegged venue)")


# --- the whole comparison --------------------------------------------------------------------------------------


def evaluate(run_dir: str | Path, targets: TargetFile | None = None) -> list[TargetResult]:
    """Every target's outcome for the run in ``run_dir``."""
    spec = targets or load_targets()
    run = RunData(run_dir)
    return [judge(t, MEASURES[t.id](run, t, spec.event)) for t in spec.targets]


def report(
    run_dir: str | Path, results: list[TargetResult], event: EventSpec, collateral: Sequence[CollateralLowSpec] = ()
) -> dict[str, Any]:
    """The targets' outcomes, and the collateral lows shown beside them (``collateral``)."""
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "n/a")}
    run = RunData(run_dir) if collateral else None
    return {
        "run": str(run_dir),
        "event": event.name,
        "counts": counts,
        "targets": [r.to_dict() for r in results],
        "collateral": [collateral_low(run, c) for c in collateral] if run is not None else [],
    }


def validate_run(run_dir: str | Path, write: bool = True) -> dict[str, Any]:
    """Evaluate every target and (``write``) store the report as ``RUN_DIR/validation.json``, atomically."""
    spec = load_targets()
    results = evaluate(run_dir, spec)
    out = report(run_dir, results, spec.event, spec.collateral)
    if write:
        write_text_atomic(Path(run_dir) / "validation.json", json.dumps(out, indent=2, allow_nan=False) + "\n")
    return out


__all__ = ["MEASURES", "TargetResult", "evaluate", "load_targets", "validate_run"]
