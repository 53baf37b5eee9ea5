"""Derive the crowd flow's intensities (``[flow]`` of oct-2025) from Binance's 1-minute klines of 10 Oct 2025 (prints
them; ``scripts/make_oct2025.py``'s ``crowd_flow_lines`` records them with this script named as their source).
Run: ``python scripts/derive_crowd_flow.py [DATA_DIR]`` (default ``../shared/data``).

What the klines give: per minute the quote volume and the taker-buy quote volume (so the taker-sell volume too) of
BTCUSDT and SOLUSDT, 20:30-23:00 UTC. What they do not give: who the takers were. So, stated plainly:

- MEASURED: the calm taker buy and sell rates (20:30-20:50, before the first leg), and per minute the excess over
  them; the rules' measures per minute from the closes, as the engine computes them from marks (recent peak and
  trough over 30 minutes, momentum over one minute).
- ASSUMED (UNCONFIRMED, no open-interest series in the data): a share ``NEW_POSITION_SHARE`` of the excess taker
  volume opened new positions (the rest is liquidations, stops, covers of older positions, hedges and arbitrage);
  excess buying while the squeeze's measure holds is the squeeze's, otherwise excess buying below the recent peak is
  the dip buyers'; excess selling while the momentum measure holds is the momentum shorts'.
- ASSUMED: the rules' thresholds (below) and order sizes (median $20k, log-sd 1.0, the noise takers' size).

Each rule's rate at its threshold (orders per second at ``rate_multiple`` 1, scale 1) is then the attributed
opening USD per second divided by the measure's multiple ``min(measure / threshold, max_multiple)``, summed over
the rule's minutes, over the mean order notional. Pool sizes: the orders the rates would open over the real path,
times ``POOL_HEADROOM``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

NEW_POSITION_SHARE = 0.25
"""Share of the excess taker volume that opened new positions (ASSUMED, UNCONFIRMED)."""
RECENT_WINDOW_MIN = 30
THRESHOLDS = {"dip": 0.02, "momentum": 0.005, "squeeze": 0.01}
"""The rules' thresholds (ASSUMED): dip 2 % below the 30-minute peak; momentum a 0.5 % fall in one minute; squeeze
1 % above the 30-minute trough after a fall of at least ``AFTER_FALL``."""
AFTER_FALL = 0.03
MAX_MULTIPLE = 4.0
MEDIAN_USD, SIGMA = 20_000.0, 1.0
POOL_HEADROOM = 2.0


def klines(path: Path) -> dict[str, np.ndarray]:
    with path.open() as f:
        rows = [r for r in csv.reader(f) if r and r[0].isdigit()]
    cols = {"t": 0, "high": 2, "low": 3, "close": 4, "quote": 7, "taker_buy_quote": 10}
    return {k: np.array([float(r[i]) for r in rows]) for k, i in cols.items()}


def measures(close: np.ndarray) -> dict[str, np.ndarray]:
    """Per minute, the three rules' measures from the closes (the engine's definitions at one-minute steps)."""
    n = close.size
    peak = np.array([close[max(0, i - RECENT_WINDOW_MIN + 1) : i + 1].max() for i in range(n)])
    trough = np.array([close[max(0, i - RECENT_WINDOW_MIN + 1) : i + 1].min() for i in range(n)])
    prev = np.concatenate([[close[0]], close[:-1]])
    fall = 1 - trough / peak
    return {"dip": 1 - close / peak, "momentum": 1 - close / prev,
            "squeeze": np.where(fall >= AFTER_FALL, close / trough - 1, 0.0)}  # fmt: skip


def derive(k: dict[str, np.ndarray], name: str) -> dict[str, float]:
    calm = k["t"] < k["t"][0] + 20 * 60_000
    buy = k["taker_buy_quote"] / 60.0
    sell = (k["quote"] - k["taker_buy_quote"]) / 60.0
    buy0, sell0 = buy[calm].mean(), sell[calm].mean()
    extra_buy, extra_sell = np.maximum(buy - buy0, 0.0), np.maximum(sell - sell0, 0.0)
    x = measures(k["close"])
    mult = {r: np.where(x[r] >= THRESHOLDS[r], np.minimum(x[r] / THRESHOLDS[r], MAX_MULTIPLE), 0.0) for r in x}
    squeeze_on = mult["squeeze"] > 0
    attributed = {"dip": np.where(~squeeze_on, extra_buy, 0.0), "momentum": extra_sell, "squeeze": extra_buy}
    mean_order = MEDIAN_USD * np.exp(SIGMA**2 / 2)
    print(f"{name}: calm taker buy ${buy0 / 1e3:,.0f}k/s, sell ${sell0 / 1e3:,.0f}k/s")
    out = {}
    for rule in ("dip", "momentum", "squeeze"):
        on = mult[rule] > 0
        usd = NEW_POSITION_SHARE * attributed[rule][on].sum() / max(mult[rule][on].sum(), 1e-12)
        rate = usd / mean_order
        opened = (rate * mult[rule] * 60.0).sum()
        out[rule] = rate
        out[f"{rule}_orders"] = opened
        print(f"  {rule}: {on.sum()} minutes on; opening ${usd / 1e6:,.2f}M/s at the threshold -> rate_per_s "
              f"{rate:.1f}; orders over the real path {opened:,.0f}")  # fmt: skip
    return out


def main(data: Path) -> None:
    b = data / "binance"
    btc = derive(klines(b / "BTCUSDT-1m-2025-10-10_2030-2300UTC.csv"), "BTCUSDT")
    sol = derive(klines(b / "SOLUSDT-1m-2025-10-10_2030-2300UTC.csv"), "SOLUSDT")
    for rule in ("dip", "momentum", "squeeze"):
        print(f"SOL/BTC rate ratio, {rule}: {sol[rule] / max(btc[rule], 1e-12):.3f}")
    orders = sum(btc[f"{r}_orders"] for r in ("dip", "momentum", "squeeze"))
    print(f"pool for Binance BTCUSDT at scale 1 (x{POOL_HEADROOM:g} headroom): {POOL_HEADROOM * orders:,.0f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data")
