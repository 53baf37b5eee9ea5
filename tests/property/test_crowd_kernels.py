"""The crowd's trigger walk (:func:`perpstress.mechanisms.agents.crowd.crowd_topups`), compiled and plain, against the
per-position loop over :class:`~perpstress.mechanisms.accounting.Accounting` that ``CrowdStops.act`` ran before it was
compiled, bit for bit.

Worlds are small and random: accounts holding one position (the crowd's shape) or several, cross and isolated, long
and short, some closed; Binance-like tiers (every preset's real tables); marks away from entries so that equity runs
from comfortably positive to at or below zero; reserves zero, tiny or ample; stops absent, hit or not. The stops the
walk hands back are executed by a stand-in for the book (a full, partial or no fill at a price past mark) that also
charges every other open position in the market, as a socialised loss does, so a top-up after a stop sees what the
stop left: the walk must resume in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from perpstress.calculator import available_presets, load_venue
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.agents.crowd import _crowd_topups_py, crowd_topups
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

REAL_TABLES = [p.tier_table() for v in available_presets() for p in load_venue(v).perpetuals.values()]
LOTS = (1e-3, 0.01, 1.0, 10.0)


@dataclass
class CrowdWorld:
    """Arrays the walk reads and writes, and how the stand-in book fills each position's stop."""

    markets: Markets
    accounts: Accounts
    positions: Positions
    stop_price: np.ndarray
    topup_reserve: np.ndarray
    fill_share: np.ndarray
    """Per position, the share of its size a stop fills (0, a part, or 1)."""
    charge: float
    """USD a filled stop charges every other open position in its market."""
    fired: np.ndarray
    ratio: float
    delay: np.ndarray
    """Per position, ms from a margin call to its top-up (0 at once, inf never)."""
    call_ms: np.ndarray
    """Per position, when its outstanding call was made (NaN: none)."""
    now_ms: float

    def copy(self) -> CrowdWorld:
        mk, acc, pos = self.markets, self.accounts, self.positions
        markets = Markets(mk.venue, mk.lot_size, mk.tick_size, mk.tier_cap, mk.tier_mmr, mk.tier_cum,
                          mk.tier_max_leverage, mk.mark.copy())  # fmt: skip
        accounts = Accounts(acc.venue, acc.wallet.copy(), acc.pos_start, acc.pos_count)
        positions = Positions(pos.account, pos.market, pos.size_lots.copy(), pos.entry_price.copy(),
                              pos.isolated_margin.copy())  # fmt: skip
        return CrowdWorld(markets, accounts, positions, self.stop_price.copy(), self.topup_reserve.copy(),
                          self.fill_share, self.charge, self.fired, self.ratio, self.delay, self.call_ms.copy(),
                          self.now_ms)  # fmt: skip


@st.composite
def crowd_worlds(draw: st.DrawFn) -> CrowdWorld:
    n_m = draw(st.integers(1, 3))
    tables = draw(st.lists(st.sampled_from(REAL_TABLES), min_size=n_m, max_size=n_m))
    lot = draw(st.lists(st.sampled_from(LOTS), min_size=n_m, max_size=n_m))
    markets = Markets.from_tables([0] * n_m, lot, [1e-6] * n_m, tables)
    markets.mark[:] = draw(st.lists(st.floats(0.5, 2e5), min_size=n_m, max_size=n_m))
    n_a = draw(st.integers(1, 8))
    wallet = np.zeros(n_a)
    account, market, lots, entry, iso, stop, reserve = [], [], [], [], [], [], []
    for a in range(n_a):
        held = draw(st.sampled_from([1, 1, 1, 2, 3]))  # mostly the crowd's one position per account
        cross_notional = 0.0
        for _ in range(held):
            m = draw(st.integers(0, n_m - 1))
            mark = float(markets.mark[m])
            notional = float(10.0 ** draw(st.floats(2.0, 8.0)))
            q = max(1, int(notional / mark / lot[m]))
            side = draw(st.sampled_from([1, -1]))
            account.append(a)
            market.append(m)
            lots.append(0 if draw(st.integers(0, 9)) == 0 else side * q)
            leverage = draw(st.floats(1.0, 150.0))
            loss = draw(st.one_of(st.floats(-0.1, 0.3), st.floats(-0.02, 0.02).map(lambda d, x=leverage: 1 / x + d)))
            ep = max(mark * (1 + side * loss), 0.05 * mark)  # lost ``loss`` x notional: about the margin, or any
            entry.append(ep)
            margin = q * lot[m] * ep / leverage
            isolated = draw(st.booleans())
            iso.append(margin if isolated else np.nan)
            cross_notional += 0.0 if isolated else q * lot[m] * ep
            stop.append(
                draw(st.one_of(st.just(np.nan), st.floats(0.9, 1.1).map(lambda f, mark=mark: mark * f)))  # hit or not
            )
            reserve.append(draw(st.sampled_from([0.0, 0.0, 1e-9, 1.0, 1e3, 1e9])))
        wallet[a] = cross_notional / draw(st.floats(1.0, 150.0)) if draw(st.integers(0, 5)) else 0.0
    acc = np.array(account, dtype=np.int32)
    start, count = group_by_account(n_a, acc)
    accounts = Accounts(np.zeros(n_a, np.int32), wallet, start, count)
    positions = Positions(acc, np.array(market, dtype=np.int32), np.array(lots, dtype=np.int64), np.array(entry),
                          np.array(iso))  # fmt: skip
    n_p = acc.size
    fill_share = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.0]), min_size=n_p, max_size=n_p)))
    fired = np.array(
        draw(st.lists(st.integers(0, n_p - 1), min_size=1, max_size=2 * n_p)), dtype=np.int64
    )  # repeats too
    now = 1_000_000.0
    delays = [0.0, 0.0, 5_000.0, 60_000.0, np.inf] if draw(st.booleans()) else [0.0]
    delay = np.array(draw(st.lists(st.sampled_from(delays), min_size=n_p, max_size=n_p)))
    # an outstanding call made long enough ago to be answered, too recently, or none
    call_ms = np.array(draw(st.lists(st.sampled_from([np.nan, np.nan, now - 10_000.0, now]), min_size=n_p,
                                     max_size=n_p)))  # fmt: skip
    return CrowdWorld(markets, accounts, positions, np.array(stop), np.array(reserve), fill_share,
                      draw(st.sampled_from([0.0, 10.0, 1e4])), fired, draw(st.floats(0.3, 0.95)), delay, call_ms,
                      now)  # fmt: skip


def stand_in_stop(w: CrowdWorld, accounting: Accounting, p: int) -> int:
    """Execute position ``p``'s due stop against a stand-in book: fill ``fill_share`` of it 2 % past mark, then (if
    anything filled) charge every other open position in its market; returns the lots filled (signed)."""
    pos, mk = w.positions, w.markets
    lots = int(pos.size_lots[p])
    m = int(pos.market[p])
    side = 1 if lots > 0 else -1
    filled = -int(lots * w.fill_share[p])
    if filled:
        unit = accounting.unit_of(p)
        accounting.close(*unit, p, filled, float(mk.mark[m]) * (1 - side * 0.02))
        for q in np.flatnonzero((pos.market == m) & (pos.size_lots != 0)):
            if q != p:
                accounting.credit(*accounting.unit_of(int(q)), -w.charge)
    if pos.size_lots[p] == 0:
        w.stop_price[p] = np.nan
    return filled


def act_per_position(w: CrowdWorld, calls: list[int]) -> tuple[list[int], int, float, float]:
    """``CrowdStops.act`` as it was (per position, over :class:`Accounting`), stops through :func:`stand_in_stop`,
    with margin calls answered after each position's delay (counted into ``calls``: made, made never to be
    answered). Returns the stops executed and the top-ups' count, USD and the external inflow."""
    accounting = Accounting(w.markets, w.accounts, w.positions)
    pos, mk = w.positions, w.markets
    dry: set[tuple[int, int]] = set()
    stops: list[int] = []
    count, usd, external = 0, 0.0, 0.0
    for p in w.fired:
        p = int(p)
        lots = int(pos.size_lots[p])
        if lots == 0:
            continue
        m = int(pos.market[p])
        mark = float(mk.mark[m])
        stop = w.stop_price[p]
        if stop == stop and (mark <= stop if lots > 0 else mark >= stop):
            side = 1 if lots > 0 else -1
            if (m, side) in dry:
                continue
            stops.append(p)
            if stand_in_stop(w, accounting, p) != -lots:
                dry.add((m, side))
            continue
        if w.topup_reserve[p] > 0:
            unit = accounting.unit_of(p)
            equity = accounting.unit_equity(*unit)
            mm = accounting.maintenance(p)
            due = equity <= 0 or mm / equity >= w.ratio
            if not due:
                w.call_ms[p] = np.nan  # recovered: the call lapses
                continue
            if w.delay[p] > 0:
                if np.isnan(w.call_ms[p]):
                    w.call_ms[p] = w.now_ms
                    calls[0] += 1
                    calls[1] += int(np.isinf(w.delay[p]))
                if w.now_ms - w.call_ms[p] < w.delay[p]:
                    event("a margin call waits")
                    continue
                w.call_ms[p] = np.nan
                event("a margin call answered")
            if due:
                add = min(w.topup_reserve[p], max(mm / (0.5 * w.ratio) - equity, 0.0))
                if add > 0:
                    event(
                        f"a top-up: {'isolated' if unit[1] >= 0 else 'cross'}, equity {'<=' if equity <= 0 else '>'} 0"
                        f", {'the whole reserve' if add == w.topup_reserve[p] else 'part of the reserve'}"
                    )
                    accounting.credit(*unit, add)
                    w.topup_reserve[p] -= add
                    external += add
                    count += 1
                    usd += add
    return stops, count, usd, external


def act_walking(w: CrowdWorld, kernel: Any, calls: np.ndarray) -> tuple[list[int], int, float, float]:
    """``CrowdStops.act``'s loop: the walk (``kernel``: :func:`crowd_topups` or its twin), each stop it hands back
    executed by :func:`stand_in_stop`, then the walk resumed after it; ``calls`` counts the margin calls."""
    accounting = Accounting(w.markets, w.accounts, w.positions)
    pos, mk = w.positions, w.markets
    dry = np.zeros((mk.n, 2), dtype=np.bool_)
    stops: list[int] = []
    i, count, usd, external = 0, 0, 0.0, 0.0
    while True:
        i, count, usd, external = kernel(
            w.fired, i, dry, pos.account, w.accounts.pos_start, w.accounts.pos_count, w.accounts.wallet, pos.market,
            pos.size_lots, pos.entry_price, pos.isolated_margin, mk.lot_size, mk.mark, mk.tier_cap, mk.tier_mmr,
            mk.tier_cum, w.stop_price, w.topup_reserve, w.delay, w.call_ms, w.now_ms, calls, w.ratio, count, usd,
            external,
        )  # fmt: skip
        if i == w.fired.size:
            return stops, count, usd, external
        p = int(w.fired[i])
        lots = int(pos.size_lots[p])
        stops.append(p)
        if stand_in_stop(w, accounting, p) != -lots:
            dry[int(pos.market[p]), 0 if lots > 0 else 1] = True
        i += 1


def state(w: CrowdWorld) -> tuple[np.ndarray, ...]:
    return (w.accounts.wallet, w.positions.isolated_margin, w.positions.size_lots, w.topup_reserve, w.stop_price,
            w.call_ms)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(world=crowd_worlds())
def test_crowd_topups(world: CrowdWorld) -> None:
    """Compiled, plain and the per-position loop over Accounting: the same stops in the same order, the same top-ups
    (the same arrays afterwards, NaN equal to NaN) and the same sums, added one by one in the same order."""
    runs = []
    fast_calls, plain_calls, ref_calls = np.zeros(2, np.int64), np.zeros(2, np.int64), [0, 0]
    for w, run in ((world.copy(), lambda w: act_walking(w, crowd_topups, fast_calls)),
                   (world.copy(), lambda w: act_walking(w, _crowd_topups_py, plain_calls)),
                   (world.copy(), lambda w: act_per_position(w, ref_calls))):  # fmt: skip
        runs.append((run(w), state(w)))
    (fast, fast_state), (plain, plain_state), (ref, ref_state) = runs
    assert fast == plain
    assert fast == ref
    assert fast_calls.tolist() == plain_calls.tolist() == ref_calls
    for f, p, r in zip(fast_state, plain_state, ref_state, strict=True):
        np.testing.assert_array_equal(f, p)
        np.testing.assert_array_equal(f, r)
    stops, count, _, _ = ref
    event(f"stops executed: {min(len(stops), 3)}{'+' if len(stops) >= 3 else ''}")
    event(f"top-ups: {min(count, 3)}{'+' if count >= 3 else ''}")
    if stops and count:
        event("a stop and a top-up in one walk")


def two_longs() -> dict[str, Any]:
    """Two cross accounts long 0.1 BTC from 100,000 at a mark of 90,000 (-1,000 each): the first with its stop at
    91,000 (due), the second with no stop and 50 of equity (its top-up due at a ratio of 0.5)."""
    markets = Markets.from_tables([0], [0.001], [0.1], [load_venue("binance").perpetuals["BTCUSDT"].tier_table()])
    markets.mark[:] = 90_000.0
    acc = np.arange(2, dtype=np.int32)
    start, count = group_by_account(2, acc)
    wallet, reserve = np.array([2_000.0, 1_050.0]), np.array([500.0, 500.0])
    args = (acc, start, count, wallet, np.zeros(2, np.int32), np.array([100, 100], np.int64), np.full(2, 100_000.0),
            np.full(2, np.nan), markets.lot_size, markets.mark, markets.tier_cap, markets.tier_mmr, markets.tier_cum,
            np.array([91_000.0, np.nan]), reserve, np.zeros(2), np.full(2, np.nan), 0.0, np.zeros(2, np.int64),
            0.5)  # fmt: skip
    return {"fired": np.array([0, 1], np.int64), "dry": np.zeros((1, 2), np.bool_), "args": args, "wallet": wallet,
            "reserve": reserve}  # fmt: skip


def test_the_walk_stops_at_a_due_stop_and_resumes_after_it() -> None:
    """The walk hands the due stop back before touching anything; resumed after it, it makes the top-up; on a dry
    long side it walks past the stop. Compiled and plain alike."""
    fast, plain = two_longs(), two_longs()

    def walk(i: int, totals: tuple[int, float, float]) -> tuple[int, int, float, float]:
        got = crowd_topups(fast["fired"], i, fast["dry"], *fast["args"], *totals)
        assert _crowd_topups_py(plain["fired"], i, plain["dry"], *plain["args"], *totals) == got
        for key in ("wallet", "reserve"):
            np.testing.assert_array_equal(fast[key], plain[key])
        return got

    assert walk(0, (3, 7.0, 11.0)) == (0, 3, 7.0, 11.0)
    assert list(fast["wallet"]) == [2_000.0, 1_050.0]
    i, n, usd, external = walk(1, (3, 7.0, 11.0))
    mm = 9_000.0 * 0.004  # Binance BTCUSDT's first tier
    add = mm / 0.25 - 50.0  # back to half the ratio; less than the reserve
    assert (i, n) == (2, 4)
    assert usd == pytest.approx(7.0 + add, rel=1e-9)
    assert external == pytest.approx(11.0 + add, rel=1e-9)
    assert fast["wallet"][1] == 1_050.0 + (500.0 - fast["reserve"][1])
    for state in (fast, plain):
        state["dry"][0, 0] = True
    assert walk(0, (0, 0.0, 0.0)) == (2, 0, 0.0, 0.0)  # the long side is dry: past the stop; the top-up was made


@pytest.mark.parametrize("kernel", [crowd_topups, _crowd_topups_py])
def test_a_margin_call_is_answered_after_its_delay_or_never(kernel: Any) -> None:
    """The second of :func:`two_longs` (top-up due, no stop) with a 30 s delay: the first walk makes the call and
    adds nothing; a walk 29.999 s later still nothing; at 30 s the top-up, the call closed. With an infinite delay the
    call is made once, counted as never answered, and nothing is ever added."""
    for delay, answered in ((30_000.0, True), (np.inf, False)):
        case = two_longs()
        args = list(case["args"])
        args[15] = np.array([0.0, delay])  # topup_delay
        call_ms, calls = args[16], args[18]
        fired = np.array([1], np.int64)
        for now, added in ((0.0, False), (29_999.0, False), (30_000.0, answered)):
            args[17] = now
            _, n, _, _ = kernel(fired, 0, case["dry"], *args, 0, 0.0, 0.0)
            assert (n == 1) is added
            assert bool(case["wallet"][1] > 1_050.0) is added
            if not added:
                assert call_ms[1] == 0.0  # the call made at the first walk is still outstanding
        assert bool(np.isnan(call_ms[1])) is answered
        assert calls.tolist() == [1, 0 if answered else 1]
