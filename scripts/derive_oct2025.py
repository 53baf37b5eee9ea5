"""Derive the October 2025 scenario's calibration figures from ../shared/data (prints them; the scenario file
records each with this script named as its source). Run: ``python scripts/derive_oct2025.py [DATA_DIR]``.

- entry path: BTC mark every hour from 2025-10-01 to 2025-10-10 20:00 relative to 20:30 on 10 Oct (where the
  crowd's entries came from: ten days of positions opened along the path);
- normal-time volatility of long-tail perpetuals (NEAR, FIL in September) and of BTC on 10 Oct before 20:50, per
  square-root second, from 1-minute closes;
- BTCUSDT ask depth within 1 % before the crash, at the low and after (bookDepth), and the notional between 1 %
  and 5 % against that within 1 % (the resting orders beyond the makers' ladders);
- the 1-minute price impact of net taker flow on BTCUSDT and SOLUSDT before the news (the makers' inventory skew);
- how that impact decays (the makers' ``inventory_skew_permanent`` and ``inventory_skew_half_life_s``): the
  propagator of 1-minute returns on the last 60 minutes' net taker flow, fitted by least squares over September's
  NEAR and FIL bars (calm months before the crash), its cumulative response to one minute's flow as a permanent
  share plus a part that fades with a half-life;
- funding rates in force on 10 Oct for the symbols in the file;
- USDe on Binance's spot book: low and its time;
- how BTC took the day's first tariff post (14:57 UTC, six hours before the crash): from BTCUSDT's 5-minute mark
  bars, the move within the post's bar and to the lowest close of the hour after it, and when (the shape of the
  news in the scenario's shock).
"""

from __future__ import annotations

import csv
import gzip
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def closes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open() as f:
        rows = [r for r in csv.reader(f) if r and r[0].isdigit()]
    return np.array([int(r[0]) for r in rows]), np.array([float(r[4]) for r in rows])


def propagator(path: Path, lags: int = 60) -> np.ndarray:
    """The cumulative response of price to one minute's net taker flow, ``lags`` minutes on, as a share of the
    first minute's: least squares of each 1-minute log return on the net taker flow of that minute and the
    ``lags - 1`` before it (the transient-impact model of Bouchaud et al., 2004)."""
    with path.open() as f:
        rows = [r for r in csv.reader(f) if r and r[0].isdigit()]
    ret = np.log(np.array([float(r[4]) / float(r[1]) for r in rows]))
    net = np.array([2 * float(r[10]) - float(r[7]) for r in rows])  # taker buy less taker sell, quote units
    n = ret.size
    flows = np.column_stack([net[lags - k : n - k] for k in range(lags)])
    g = np.linalg.lstsq(flows, ret[lags:], rcond=None)[0]
    return np.cumsum(g) / g[0]


def fit_decay(response: np.ndarray) -> tuple[float, float]:
    """``(permanent share, half-life in minutes)`` of ``p + (1 - p) * 0.5 ** ((h - 1) / half_life)`` closest to
    ``response`` (h = 1, 2, ... minutes) in least squares, on a grid of 0.005 and 0.25 minutes."""
    h = np.arange(1, response.size + 1)
    best = (np.inf, 1.0, 1.0)
    for p in np.arange(0.3, 1.0, 0.005):
        for half in np.arange(0.5, 60.0, 0.25):
            err = float(np.sum((response - p - (1 - p) * 0.5 ** ((h - 1) / half)) ** 2))
            if err < best[0]:
                best = (err, float(p), float(half))
    return best[1], best[2]


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def main(data: Path) -> None:
    b = data / "binance"
    t, px = closes(b / "BTCUSDT-5m-markOrIndexPrice_2025-10-01_2025-12-30.csv")
    ref_i = int(np.searchsorted(t, ms("2025-10-10T20:30:00")))
    ref = px[ref_i]
    hours = np.arange(ms("2025-10-01T00:00:00"), ms("2025-10-10T20:00:00") + 1, 3_600_000)
    idx = np.clip(np.searchsorted(t, hours), 0, t.size - 1)
    ratios = px[idx] / ref
    print(f"BTC mark at 2025-10-10 20:30: {ref:.1f}")
    print("entry_path (hourly ratio to 20:30, 2025-10-01..10 20:00):", ", ".join(f"{r:.4f}" for r in ratios[::6]))
    print(f"  entry ratio quantiles 5/50/95: {np.percentile(ratios, [5, 50, 95]).round(4).tolist()}")
    for name in ("NEARUSDT-1m-2025-09.csv", "FILUSDT-1m-2025-09.csv"):
        _, c = closes(b / name)
        r = np.diff(np.log(c))
        print(f"{name}: calm vol per sqrt(s) {r.std() / np.sqrt(60):.2e}")
    t1, c1 = closes(b / "BTCUSDT-1m-2025-10-10_2030-2300UTC.csv")
    calm = t1 < ms("2025-10-10T20:50:00")
    r = np.diff(np.log(c1[calm]))
    with (b / "BTCUSDT-1m-2025-10-10_2030-2300UTC.csv").open() as f:
        low_rows = [(float(r[3]), int(r[0])) for r in csv.reader(f) if r and r[0].isdigit()]
    low_px, low_t = min(low_rows)
    print(f"BTC 1-minute low {low_px:.1f} in the {datetime.fromtimestamp(low_t / 1000, UTC):%H:%M} bar")
    print(f"BTC 20:30-20:50 vol per sqrt(s) {r.std() / np.sqrt(60):.2e}; low {c1.min():.1f} at "
          f"{datetime.fromtimestamp(t1[np.argmin(c1)] / 1000, UTC):%H:%M}")  # fmt: skip
    with (b / "BTCUSDT-bookDepth-2025-10-10.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if float(r["percentage"]) == 1.0]
    for hhmm in ("20:30", "21:22", "22:30"):
        target = f"2025-10-10 {hhmm}"
        row = min(rows, key=lambda r: abs(datetime.fromisoformat(r["timestamp"]) - datetime.fromisoformat(target)))
        print(f"BTCUSDT ask depth within 1% at {row['timestamp']}: ${float(row['notional']) / 1e6:,.0f}M")
    for name, oi in (("BTCUSDT", 16.0e9), ("SOLUSDT", 3.255e9)):  # Binance's open interest, data/oct2025
        with (b / f"{name}-1m-2025-10-10_2030-2300UTC.csv").open() as f:
            bars = [r for r in csv.reader(f) if r and r[0].isdigit() and int(r[0]) < ms("2025-10-10T20:50:00")]
        net = np.array([2 * float(r[10]) - float(r[7]) for r in bars])  # taker buy less taker sell, USD
        ret = np.log(np.array([float(r[4]) / float(r[1]) for r in bars]))
        lam = float(np.sum(net * ret) / np.sum(net * net))
        print(f"{name} 1-minute price impact 20:30-20:50 ({len(bars)} bars): {lam:.3e} per USD of net taker flow "
              f"(corr {np.corrcoef(net, ret)[0, 1]:.2f}); x open interest {lam * oi:.2f}")  # fmt: skip
    curves = []
    for name in ("NEARUSDT-1m-2025-09.csv", "FILUSDT-1m-2025-09.csv"):
        curves.append(propagator(b / name))
        p, half = fit_decay(curves[-1])
        print(f"{name} impact decay: permanent {p:.3f}, half-life {half:.2f} min "
              f"(response at 5/20/60 min {curves[-1][4]:.2f}/{curves[-1][19]:.2f}/{curves[-1][59]:.2f})")  # fmt: skip
    p, half = fit_decay(np.mean(curves, axis=0))
    print(f"impact decay, both curves' mean: permanent {p:.3f}, half-life {half:.2f} min ({half * 60:.0f} s)")
    with (b / "BTCUSDT-bookDepth-2025-10-10.csv").open() as f:
        book = [r for r in csv.DictReader(f) if "2025-10-10 20:30" <= r["timestamp"] < "2025-10-10 20:50"]
    inner = np.median([float(r["notional"]) for r in book if float(r["percentage"]) == 1.0])
    within5 = np.median([float(r["notional"]) for r in book if float(r["percentage"]) == 5.0])
    band = (within5 - inner) / inner
    print(f"BTCUSDT ask notional 1-5 % over 0-1 %, medians 20:30-20:50: {band:.3f} "
          f"({inner / 1e6:,.0f}M within 1 %, {within5 / 1e6:,.0f}M within 5 %); per unit of log-distance "
          f"{band / np.log(5):.4f}")  # fmt: skip
    with gzip.open(b / "funding_all.csv.gz", "rt") as f:
        rates: dict[str, float] = {}
        for r in csv.DictReader(f):
            if int(r["calc_time"]) <= ms("2025-10-10T16:00:00"):
                rates[r["symbol"]] = float(r["last_funding_rate"])
    for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT"):
        if sym in rates:
            print(f"funding {sym} at 2025-10-10 16:00: {rates[sym]:.6f}")
    with (b / "USDEUSDT-1m-binance-spot_2025-10-09_2025-10-12.csv").open() as f:
        usde = list(csv.DictReader(f))
    low, at = min((float(r["low"]), int(r["open_time_ms"])) for r in usde)
    print(f"USDe on Binance spot: low {low} at {datetime.fromtimestamp(at / 1000, UTC):%Y-%m-%d %H:%M}")
    calm = [r for r in usde if int(r["open_time_ms"]) < ms("2025-10-10T20:30:00")]
    per_min = np.mean([float(r["volume"]) * float(r["close"]) for r in calm])
    print(f"USDe on Binance spot before 2025-10-10 20:30 ({len(calm)} bars): ${per_min:,.0f} a minute on average, "
          f"{min(float(r['low']) for r in calm)} to {max(float(r['high']) for r in calm)}")  # fmt: skip
    first_post_reaction(b / "BTCUSDT-5m-markOrIndexPrice_2025-10-01_2025-12-30.csv")


def first_post_reaction(path: Path, post: str = "2025-10-10T14:57:00", hours: float = 1.0) -> None:
    """BTC's answer to the first tariff post, on 5-minute mark bars: the log-move from the close before the post's
    bar to that bar's close (the quick part), then to the lowest close within ``hours`` of the post (the rest), and
    how long each took."""
    ts, close = closes(path)
    bar = 5 * 60_000
    at = ms(post)
    i = int(np.searchsorted(ts, at, side="right")) - 1  # the bar the post falls in
    last = int(np.searchsorted(ts, at + hours * 3_600_000, side="right"))
    low = i + int(np.argmin(close[i:last]))
    before, quick, end = close[i - 1], close[i], close[low]
    total = np.log(end / before)
    quick_s = (ts[i] + bar - at) / 1000
    rest_s = (ts[low] - ts[i]) / 1000
    print(f"first tariff post {post} UTC, BTCUSDT mark: {before:,.1f} -> {quick:,.1f} at the post's bar close "
          f"({quick_s:.0f} s) -> {end:,.1f}, the lowest close within {hours:g} h ({rest_s:.0f} s later): "
          f"{100 * total:.2f} %, {100 * np.log(quick / before) / total:.1f} % of it in the post's bar")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1].parent / "shared" / "data")
