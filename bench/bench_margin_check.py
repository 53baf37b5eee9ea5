"""Margin-check cost per step: the trigger index vs checking every position, at 10k, 100k and 1M positions.

Three ways to find the liquidatable units each step, on the same book and the same mark path:
- ``naive``: a per-account Python loop over every position (what a straightforward agent-based model does);
- ``full``: the compiled kernel over every account every step (accounts x steps, but compiled);
- ``index``: the trigger index, which reads only the band edges the marks crossed.

Run: ``python bench/bench_margin_check.py`` (add ``--quick`` for a smaller run). Ratios, not absolute times, are the
result: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from perpstress.calculator import load_venue
from perpstress.mechanisms.margin_kernels import position_bands, unit_balances
from perpstress.rules.margin import maintenance_margin
from perpstress.state.portfolio import Markets, group_by_account
from perpstress.state.triggers import TriggerIndex


def book(n_positions: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    venue = load_venue("binance")
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HIVEUSDT")
    tables = [venue.perpetuals[s].tier_table() for s in symbols]
    markets = Markets.from_tables([0] * 4, [0.001, 0.001, 0.01, 1.0], [0.1, 0.01, 0.01, 1e-5], tables)
    markets.mark[:] = [100_000.0, 4_000.0, 200.0, 0.25]
    n = n_positions
    mkt = rng.integers(0, 4, size=n).astype(np.int32)
    notional = np.exp(rng.uniform(np.log(200), np.log(2e6), size=n))
    lots = np.maximum(1, (notional / markets.mark[mkt] / markets.lot_size[mkt]).astype(np.int64))
    lots *= np.where(rng.random(n) < 0.7, 1, -1)
    entry = markets.mark[mkt] * np.exp(rng.normal(0, 0.02, size=n))
    lev = np.exp(rng.uniform(np.log(2), np.log(50), size=n))
    wallet = np.abs(lots) * markets.lot_size[mkt] * entry / lev  # one position per account, cross
    acc = np.arange(n, dtype=np.int32)
    start, count = group_by_account(n, acc)
    iso = np.full(n, np.nan)
    return markets, wallet, start, count, mkt, lots, entry, iso


def path(steps: int, seed: int = 2) -> np.ndarray:
    """A calm hour with a 12 % crash in the middle (multiplicative marks per step and market)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 2e-4, size=(steps, 4))
    crash = slice(steps // 2, steps // 2 + steps // 20)
    r[crash] -= 0.12 / (steps // 20)
    return np.exp(np.cumsum(r, axis=0))


def run_naive(markets, wallet, start, count, mkt, lots, entry, rel, steps):
    tables = [load_venue("binance").perpetuals[s].tier_table() for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HIVEUSDT")]
    base = markets.mark.copy()
    found = 0
    t0 = time.perf_counter()
    for t in range(steps):
        mark = base * rel[t]
        for a in range(len(start)):
            bal = wallet[a]
            req = 0.0
            for p in range(start[a], start[a] + count[a]):
                m = mkt[p]
                q = lots[p] * markets.lot_size[m]
                bal += q * (mark[m] - entry[p])
                req += float(maintenance_margin(tables[m], abs(q) * mark[m]))
            found += bal < req
    return time.perf_counter() - t0, found


def run_full(markets, wallet, start, count, mkt, lots, entry, iso, rel, steps):
    base = markets.mark.copy()
    accounts = np.arange(len(start), dtype=np.int32)
    tiers = (markets.tier_cap, markets.tier_mmr, markets.tier_cum)
    found = 0
    t0 = time.perf_counter()
    for t in range(steps):
        mark = base * rel[t]
        bal, req = unit_balances(accounts, start, count, wallet, mkt, lots, entry, iso, markets.lot_size, mark, *tiers)
        found += int(np.count_nonzero(bal < req))
    return time.perf_counter() - t0, found


def run_index(markets, wallet, start, count, mkt, lots, entry, iso, rel, steps):
    base = markets.mark.copy()
    tiers = (markets.tier_cap, markets.tier_mmr, markets.tier_cum)
    lo, hi = np.empty(lots.size), np.empty(lots.size)
    t0 = time.perf_counter()
    position_bands(np.arange(len(start), dtype=np.int32), start, count, wallet, np.zeros(wallet.size), mkt, lots, entry,
                   iso, markets.lot_size, markets.mark, *tiers, lo, hi)  # fmt: skip
    index = TriggerIndex(markets.n, mkt)
    index.set_bands(np.arange(lots.size), lo, hi)
    index.rebuild()
    fired_total = 0
    for t in range(steps):
        mark = base * rel[t]
        fired = index.fired(mark)
        if fired.size:
            accounts = fired.astype(np.int32)  # one position per account: position id == account id
            bal, req = unit_balances(accounts, start, count, wallet, mkt, lots, entry, iso, markets.lot_size, mark,
                                     *tiers)  # fmt: skip
            fired_total += int(np.count_nonzero(bal < req))
            index.deactivate(fired[bal < req])  # liquidated: closed
            keep = fired[bal >= req]
            if keep.size:
                position_bands(keep.astype(np.int32), start, count, wallet, np.zeros(wallet.size), mkt, lots, entry,
                               iso, markets.lot_size, mark, *tiers, lo, hi)  # fmt: skip
                index.set_bands(keep, lo[keep], hi[keep])
    return time.perf_counter() - t0, fired_total, index.entries_read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=3600)
    args = parser.parse_args()
    sizes = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
    steps = 600 if args.quick else args.steps
    rel = path(steps)
    warm = book(1000)
    run_full(*warm, rel[:2], 2)  # compile
    run_index(*warm, rel[:2], 2)
    print(f"{steps} steps of one second; a 12 % crash in the middle; one position per account, cross margin")
    print(f"{'positions':>10} {'index s':>9} {'full s':>9} {'naive s':>9} {'full/index':>10} {'naive/index':>11} "
          f"{'liquidated':>10} {'entries read/step':>17}")  # fmt: skip
    for n in sizes:
        markets, wallet, start, count, mkt, lots, entry, iso = book(n)
        t_index, liq, read = run_index(markets, wallet, start, count, mkt, lots.copy(), entry, iso, rel, steps)
        t_full, _ = run_full(markets, wallet, start, count, mkt, lots, entry, iso, rel, steps)
        naive_steps = max(1, min(steps, 2_000_000 // n))  # the naive loop is timed on fewer steps and scaled
        t_naive, _ = run_naive(markets, wallet, start, count, mkt, lots, entry, rel, naive_steps)
        t_naive *= steps / naive_steps
        print(f"{n:>10,} {t_index:>9.3f} {t_full:>9.3f} {t_naive:>9.1f} {t_full / t_index:>10.1f} "
              f"{t_naive / t_index:>11.0f} {liq:>10,} {read / steps:>17,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
