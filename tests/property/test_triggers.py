"""The trigger index finds exactly the liquidatable units a brute-force check of every position finds.

Random books of cross single-market, cross multi-market and isolated accounts on real tier tables; random mark paths
with jumps. Each step, the units the index fires are checked exactly; liquidatable ones are closed, the rest
re-banded. The set closed each step must equal the brute-force set, and the index must read far fewer entries than
positions x steps on a calm path.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.calculator import load_venue
from perpstress.mechanisms.margin_kernels import isolated_balances, position_bands, unit_balances
from perpstress.state.portfolio import Markets, group_by_account
from perpstress.state.triggers import TriggerIndex


def make_book(rng: np.random.Generator, n_accounts: int):
    venue = load_venue("binance")
    tables = [venue.perpetuals[s].tier_table() for s in ("BTCUSDT", "SOLUSDT", "HIVEUSDT")]
    markets = Markets.from_tables([0, 0, 0], [0.001, 0.01, 1.0], [0.1, 0.01, 1e-5], tables)
    markets.mark[:] = [100_000.0, 200.0, 0.25]
    acc_of, mkt, lots, entry, iso = [], [], [], [], []
    wallet = np.zeros(n_accounts)
    for a in range(n_accounts):
        kind = rng.integers(3)  # 0 cross single, 1 cross multi, 2 isolated
        held = [int(rng.integers(3))] if kind != 1 else list(rng.choice(3, size=2, replace=False))
        notional_total = 0.0
        for m in held:
            notional = float(np.exp(rng.uniform(np.log(1e3), np.log(5e7 if m == 0 else 2e6))))
            q = max(1, int(notional / markets.mark[m] / markets.lot_size[m]))
            side = 1 if rng.random() < 0.7 else -1
            acc_of.append(a)
            mkt.append(m)
            lots.append(side * q)
            entry.append(markets.mark[m] * (1 + rng.normal(0, 0.01)))
            lev = float(rng.uniform(2, 60))
            n = q * markets.lot_size[m] * markets.mark[m]
            notional_total += n
            iso.append(n / lev if kind == 2 else np.nan)
        wallet[a] = 0.0 if kind == 2 else notional_total / float(rng.uniform(2, 60))
    acc_of = np.array(acc_of, dtype=np.int32)
    start, count = group_by_account(n_accounts, acc_of)
    return markets, wallet, start, count, acc_of, np.array(mkt, dtype=np.int32), np.array(lots, dtype=np.int64), \
        np.array(entry), np.array(iso)  # fmt: skip


def liquidatable_units(markets, wallet, start, count, acc_of, mkt, lots, entry, iso, positions):
    """Brute force: the (account, -1) cross units and (account, position) isolated units below maintenance."""
    tiers = (markets.tier_cap, markets.tier_mmr, markets.tier_cum)
    accounts = np.unique(acc_of[positions]).astype(np.int32)
    bal, req = unit_balances(accounts, start, count, wallet, mkt, lots, entry, iso, markets.lot_size, markets.mark,
                             *tiers)  # fmt: skip
    has_cross = np.array([np.any(np.isnan(iso[s : s + c]) & (lots[s : s + c] != 0)) for s, c in
                          zip(start[accounts], count[accounts], strict=True)], dtype=bool)  # fmt: skip
    units = {(int(a), -1) for a in accounts[(bal < req) & has_cross]}
    iso_pos = positions[~np.isnan(iso[positions]) & (lots[positions] != 0)].astype(np.int64)
    ibal, ireq = isolated_balances(iso_pos, mkt, lots, entry, iso, markets.lot_size, markets.mark, *tiers)
    units |= {(int(acc_of[p]), int(p)) for p in iso_pos[ibal < ireq]}
    return units


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1), vol=st.sampled_from([0.0005, 0.003, 0.01]), fold_every=st.sampled_from([0, 1, 7])
)
def test_index_finds_exactly_the_liquidatable_units(seed: int, vol: float, fold_every: int) -> None:
    """``fold_every``: fold the pending set into the sorted arrays (a merge, or a rebuild when stale entries
    abound) every that many steps, besides the index's own choice (0: never)."""
    rng = np.random.default_rng(seed)
    markets, wallet, start, count, acc_of, mkt, lots, entry, iso = make_book(rng, 300)
    tiers = (markets.tier_cap, markets.tier_mmr, markets.tier_cum)
    everyone = np.arange(lots.size, dtype=np.int64)
    lo, hi = np.empty(lots.size), np.empty(lots.size)
    index = TriggerIndex(markets.n, mkt)

    def reband(accounts: np.ndarray) -> None:
        position_bands(accounts.astype(np.int32), start, count, wallet, np.zeros(wallet.size), mkt, lots, entry, iso,
                       markets.lot_size, markets.mark, *tiers, lo, hi)  # fmt: skip
        ps = np.concatenate([np.arange(start[a], start[a] + count[a]) for a in accounts]).astype(np.int64)
        open_ = ps[lots[ps] != 0]
        index.set_bands(open_, lo[open_], hi[open_])

    reband(np.arange(len(start)))
    index.rebuild()
    for step in range(120):
        if fold_every and step % fold_every == 0:
            index.fold_pending()
        shock = rng.normal(0, vol, size=3) + (rng.random(3) < 0.02) * rng.normal(0, 0.05, size=3)
        markets.mark *= np.exp(shock)
        expected = liquidatable_units(markets, wallet, start, count, acc_of, mkt, lots, entry, iso,
                                      everyone[lots != 0])  # fmt: skip
        fired = index.fired(markets.mark)
        found = liquidatable_units(markets, wallet, start, count, acc_of, mkt, lots, entry, iso, fired)
        assert found == expected
        for account, position in found:  # close what is liquidatable: the whole cross account or the position
            if position >= 0:
                closing = np.array([position])
            else:
                s, c = start[account], count[account]
                closing = np.arange(s, s + c)[np.isnan(iso[s : s + c])]
            lots[closing] = 0
            index.deactivate(closing)
        survivors = np.unique(acc_of[fired[lots[fired] != 0]])
        if survivors.size:
            reband(survivors)


def test_calm_markets_read_few_entries() -> None:
    rng = np.random.default_rng(3)
    markets, wallet, start, count, _acc_of, mkt, lots, entry, iso = make_book(rng, 3000)
    tiers = (markets.tier_cap, markets.tier_mmr, markets.tier_cum)
    lo, hi = np.empty(lots.size), np.empty(lots.size)
    accounts = np.arange(len(start), dtype=np.int32)
    position_bands(accounts, start, count, wallet, np.zeros(wallet.size), mkt, lots, entry, iso, markets.lot_size,
                   markets.mark, *tiers, lo, hi)  # fmt: skip
    index = TriggerIndex(markets.n, mkt)
    index.set_bands(np.arange(lots.size), lo, hi)
    index.rebuild()
    steps = 500
    for _ in range(steps):
        markets.mark *= np.exp(rng.normal(0, 1e-4, size=3))
        for p in index.fired(markets.mark):
            index.deactivate(np.array([p]))
    # Brute force would read positions x steps entries; the index reads what moved.
    assert index.entries_read < 0.01 * lots.size * steps


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 400), fold_every=st.sampled_from([0, 1, 3, 10]))
def test_the_index_fires_every_active_position_whose_band_the_mark_has_crossed(seed: int, n: int,
                                                                               fold_every: int) -> None:  # fmt: skip
    """Whatever the runs, merges and rebuilds inside, each step fires exactly the active positions whose long edge
    the mark has reached (``lo >= mark``) or whose short edge it has reached (``hi <= mark``), as a brute-force
    scan finds them; the caller re-bands some fired positions, closes some, leaves the rest crossed, and re-bands
    positions that did not fire (as a collateral re-band does)."""
    rng = np.random.default_rng(seed)
    n_m = 3
    market = rng.integers(0, n_m, n).astype(np.int32)
    mark = np.full(n_m, 100.0)
    index = TriggerIndex(n_m, market)

    def bands(ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        long = rng.random(ps.size) < 0.6
        width = rng.uniform(0.001, 0.2, ps.size) * mark[market[ps]]
        lo = np.where(long, mark[market[ps]] - width, -np.inf)
        hi = np.where(long, np.inf, mark[market[ps]] + width)
        return lo, hi

    everyone = np.arange(n, dtype=np.int64)
    index.set_bands(everyone, *bands(everyone))
    index.rebuild()
    for step in range(80):
        if fold_every and step % fold_every == 0:
            index.fold_pending()
        mark *= np.exp(rng.normal(0, 0.03, n_m))
        expected = everyone[index.active & ((index.lo >= mark[market]) | (index.hi <= mark[market]))]
        fired = index.fired(mark)
        np.testing.assert_array_equal(fired, expected)
        choice = rng.random(fired.size)
        index.deactivate(fired[choice < 0.2])
        reband = np.union1d(fired[(choice >= 0.2) & (choice < 0.7)], rng.choice(n, rng.integers(0, n // 4 + 1)))
        reband = reband[index.active[reband]]
        if reband.size:
            index.set_bands(reband, *bands(reband))
        revived = everyone[~index.active & (rng.random(n) < 0.02)]
        if revived.size:
            index.set_bands(revived, *bands(revived))
