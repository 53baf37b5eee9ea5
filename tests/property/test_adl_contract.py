"""The ADL contract battery: every ADL rule, on Hypothesis-generated small books of winners and losers, keeps the
contract every venue's rule shares.

For a bankrupt position's request of ``L`` lots, split into one or two requests of a round:

- it closes at most ``L`` lots, and reports the rest as uncovered (a socialised-loss rule closes nothing);
- it never increases any account's exposure (no position grows or flips side);
- it never touches the bankrupt side's positions (other accounts on the bankrupt's side keep size, entry and
  collateral);
- money is conserved: the lots the winners close equal the lots the bankrupt closes, the total value at mark is
  unchanged, the bankrupt's gain against a close at mark is exactly the winners' recorded loss versus mark, each
  winner's collateral moves by exactly its recorded PnL on the closed lots, and at the bankruptcy price a fully
  covered bankrupt ends with zero collateral;
- it is deterministic for a given generator state.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.calculator import load_venue
from perpstress.config.venue import (
    AdlPrice,
    AdlRanking,
    ProRataAdl,
    RandomScanAdl,
    RankedQueueAdl,
    SocialisedLossAdl,
)
from perpstress.engine.cascade import Cascade
from perpstress.mechanisms import margin_kernels as mk
from perpstress.mechanisms import price_kernels as pk
from perpstress.mechanisms import unit_kernels as uk
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import ADL_RULES, AdlEngine, AdlRecord, AdlRequest
from perpstress.mechanisms.adl import kernels as adl_kernels
from perpstress.mechanisms.adl.base import round_to_lots
from perpstress.mechanisms.adl.pro_rata import ALLOCATIONS
from perpstress.mechanisms.liquidation import LiquidationRecord
from perpstress.rules import adl as adl_rules
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

MARK = 100.0
VENUE = load_venue("binance")
TIERS = VENUE.perpetuals[next(iter(VENUE.perpetuals))].tier_table()

RULES: list[Any] = [
    *(RankedQueueAdl(ranking=r, price=AdlPrice.BANKRUPTCY) for r in AdlRanking),
    RankedQueueAdl(ranking=AdlRanking.PNL_LEVERAGE, price=AdlPrice.MARK, price_when_fund_empty=AdlPrice.BANKRUPTCY),
    RankedQueueAdl(ranking=AdlRanking.HYPERLIQUID, price=AdlPrice.PREVIOUS_MARK),
    RandomScanAdl(max_accounts_scanned=2),
    RandomScanAdl(max_accounts_scanned=500),
    *(ProRataAdl(rule=r, price=AdlPrice.BANKRUPTCY) for r in ALLOCATIONS),
    *(ProRataAdl(rule=r, max_haircut=0.5, price=AdlPrice.ORACLE) for r in ALLOCATIONS),
    SocialisedLossAdl(),
]


def test_the_battery_covers_every_rule() -> None:
    assert {ADL_RULES[type(c)] for c in RULES} == set(ADL_RULES.values())
    assert {c.rule for c in RULES if isinstance(c, ProRataAdl)} == set(ALLOCATIONS)


@st.composite
def books(draw: st.DrawFn) -> dict[str, Any]:
    """Account 0 holds a bankrupt position (its bankruptcy price between mark and entry); accounts 1..n hold
    positions on either side, in profit or loss, cross or isolated."""
    side = draw(st.sampled_from([1, -1]))
    n = draw(st.integers(1, 7))
    lots0 = draw(st.integers(1, 30))
    gap = draw(st.floats(0.02, 0.3))
    entry0 = MARK * (1 + side * gap)  # the mark has moved against the bankrupt position
    wallet0 = draw(st.floats(0.0, 0.9)) * gap * MARK * lots0  # less than its loss at mark: bankrupt
    sizes = draw(st.lists(st.integers(1, 25) | st.integers(-25, -1), min_size=n, max_size=n))
    entries = draw(st.lists(st.floats(70.0, 130.0), min_size=n, max_size=n))
    wallets = draw(st.lists(st.floats(1.0, 2_000.0), min_size=n, max_size=n))
    isolated = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    split = draw(st.integers(0, lots0 - 1))
    return {
        "lots": [side * lots0, *sizes],
        "entry": [entry0, *entries],
        "wallet": [wallet0, *wallets],
        "isolated": [False, *isolated],
        "split": split,
        "previous": draw(st.floats(80.0, 120.0)),
        "index": draw(st.floats(80.0, 120.0)),
        "fund_empty": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def build(book: dict[str, Any], config: Any) -> tuple[AdlEngine, Accounting]:
    k = len(book["lots"])
    markets = Markets.from_tables([0], [1.0], [0.01], [TIERS])
    markets.mark[:] = MARK
    acc = np.arange(k, dtype=np.int32)
    start, count = group_by_account(k, acc)
    iso = np.array(book["isolated"])
    wallet = np.where(iso, 0.0, book["wallet"])
    margin = np.where(iso, book["wallet"], np.nan)
    accounts = Accounts(np.zeros(k, np.int32), wallet, start, count)
    positions = Positions(acc, np.zeros(k, np.int32), np.array(book["lots"], np.int64), np.array(book["entry"]),
                          margin)  # fmt: skip
    accounting = Accounting(markets, accounts, positions)
    venue = VENUE.model_copy(update={"adl": config})
    return AdlEngine([venue], accounting, np.random.default_rng(book["seed"])), accounting


def requests(book: dict[str, Any], accounting: Accounting) -> list[AdlRequest]:
    lots = int(book["lots"][0])
    side = 1 if lots > 0 else -1
    bp = accounting.bankruptcy_price(0, -1, 0)
    first = book["split"]
    parts = [first, abs(lots) - first] if first else [abs(lots)]
    return [AdlRequest(0, 0, 0, 0, side * q, bp) for q in parts]


def collateral(accounting: Accounting) -> np.ndarray:
    pos = accounting.positions
    return np.asarray(accounting.accounts.wallet + np.nan_to_num(pos.isolated_margin), dtype=np.float64)


def values(accounting: Accounting) -> np.ndarray:
    """Each account's collateral plus its position at mark."""
    pos = accounting.positions
    return collateral(accounting) + pos.size_lots * (MARK - pos.entry_price)


def run(book: dict[str, Any], config: Any) -> tuple[AdlEngine, Accounting, int, dict[str, np.ndarray]]:
    engine, accounting = build(book, config)
    pos = accounting.positions
    before = {"lots": pos.size_lots.copy(), "entry": pos.entry_price.copy(), "collateral": collateral(accounting),
              "value": values(accounting)}  # fmt: skip
    left = engine.execute_batch(0, requests(book, accounting), np.array([book["previous"]]),
                                np.array([book["index"]]), book["fund_empty"])  # fmt: skip
    return engine, accounting, left, before


@settings(max_examples=120, deadline=None)
@given(book=books(), which=st.integers(0, len(RULES) - 1))
def test_every_rule_keeps_the_adl_contract(book: dict[str, Any], which: int) -> None:
    config = RULES[which]
    engine, accounting, left, before = run(book, config)
    pos, rec = accounting.positions, engine.record
    want = abs(int(book["lots"][0]))
    closed = int(sum(rec.lots))
    # at most the bankrupt size, the rest reported uncovered
    assert 0 <= closed <= want
    assert left == want - closed
    if ADL_RULES[type(config)].socialises_losses:
        assert closed == 0
    if isinstance(config, ProRataAdl) and config.rule != "wealth_pro_rata":  # no winner above its cap (wealth
        # pro-rata has none: every winner gives up the same fraction of its profit)
        caps = np.floor(config.max_haircut * np.abs(before["lots"]) + 1e-9)
        assert all(n <= caps[a] for a, n in zip(rec.account, rec.lots, strict=True))
    # never increases anyone's exposure
    after = pos.size_lots
    assert np.all(np.abs(after) <= np.abs(before["lots"]))
    assert np.all(after * before["lots"] >= 0)
    # never touches the bankrupt side's positions (other accounts on the bankrupt's side)
    side = np.sign(before["lots"][0])
    same = np.flatnonzero(np.sign(before["lots"]) == side)[1:]
    np.testing.assert_array_equal(after[same], before["lots"][same])
    np.testing.assert_array_equal(pos.entry_price[same], before["entry"][same])
    np.testing.assert_array_equal(collateral(accounting)[same], before["collateral"][same])
    assert 0 not in rec.account
    assert set(rec.bankrupt_account) <= {0}
    # money conserved: lots balance, value at mark is unchanged, the bankrupt's gain is the winners' loss vs mark
    assert before["lots"][0] - after[0] == side * closed
    assert int(np.abs(before["lots"] - after).sum()) == 2 * closed
    scale = float(np.abs(before["value"]).sum()) + 1.0
    delta = values(accounting) - before["value"]
    assert abs(delta.sum()) <= 1e-9 * scale
    assert abs(delta[0] - sum(rec.loss_vs_mark_usd)) <= 1e-9 * scale
    realised = collateral(accounting) - before["collateral"]  # a winner's close realises its PnL into collateral
    recorded = np.zeros(realised.size)
    np.add.at(recorded, np.asarray(rec.account, dtype=np.int64), np.asarray(rec.winner_pnl_usd, dtype=float))
    np.testing.assert_allclose(realised[1:], recorded[1:], rtol=0, atol=1e-9 * scale)
    assert len(rec.winner_pnl_usd) == len(rec.lots)
    bankruptcy_price = isinstance(config, RandomScanAdl | ProRataAdl) and config.price is AdlPrice.BANKRUPTCY
    bankruptcy_price |= isinstance(config, RankedQueueAdl) and (
        config.price is AdlPrice.BANKRUPTCY
        or (book["fund_empty"] and config.price_when_fund_empty is AdlPrice.BANKRUPTCY)
    )
    if bankruptcy_price and left == 0:  # the winners' closes cover the bankrupt gap exactly
        assert abs(collateral(accounting)[0]) <= 1e-9 * scale


@settings(max_examples=15, deadline=None)
@given(book=books(), which=st.integers(0, len(RULES) - 1))
def test_every_rule_is_deterministic_for_a_generator_state(book: dict[str, Any], which: int) -> None:
    first, second = run(book, RULES[which])[0].record, run(book, RULES[which])[0].record
    assert first.__dict__ == second.__dict__


def outcome(book: dict[str, Any], config: Any, compiled: bool) -> tuple[Any, ...]:
    """The state, fills and uncovered lots after the round, with the queue walk compiled or in Python."""
    engine, accounting = build(book, config)
    engine.book.compiled = compiled
    left = engine.execute_batch(0, requests(book, accounting), np.array([book["previous"]]),
                                np.array([book["index"]]), book["fund_empty"])  # fmt: skip
    pos, accounts = accounting.positions, accounting.accounts
    state = [a.tobytes() for a in (pos.size_lots, pos.entry_price, pos.isolated_margin, accounts.wallet,
                                   accounting.long_lots)]  # fmt: skip
    fills = {k: [float(x).hex() if isinstance(x, float) else int(x) for x in v] for k, v in vars(engine.record).items()}
    return state, fills, left


@settings(max_examples=120, deadline=None)
@given(book=books(), which=st.sampled_from([i for i, c in enumerate(RULES) if isinstance(c, RankedQueueAdl)]))
def test_the_compiled_queue_walk_equals_the_python_walk_and_its_twin(book: dict[str, Any], which: int) -> None:
    """:func:`~perpstress.mechanisms.adl.kernels.walk_queue` (what a ranked queue's round runs), its plain twin
    (with the plain close) and the Python walk through :meth:`AdlBook.fill` leave the same state and fills, bit for
    bit."""
    reference = outcome(book, RULES[which], compiled=False)
    assert outcome(book, RULES[which], compiled=True) == reference
    saved = adl_kernels.walk_queue, adl_kernels._close
    try:
        adl_kernels.walk_queue = lambda *args: adl_kernels._walk_queue_py(*args)
        adl_kernels._close = uk._close_py
        assert outcome(book, RULES[which], compiled=True) == reference
    finally:
        adl_kernels.walk_queue, adl_kernels._close = saved
    _, accounting = build(book, RULES[which])  # the kernel and its twin called directly on one queue
    pos, accounts, mk = accounting.positions, accounting.accounts, accounting.markets
    lots0 = int(book["lots"][0])
    order = np.flatnonzero(np.sign(pos.size_lots) == -np.sign(lots0)).astype(np.int64)  # every opposite position
    args = (order, np.array([0], np.int64), np.array([lots0], np.int64), np.array([MARK]), 1 if lots0 > 0 else -1,
            0, pos.account)  # fmt: skip
    state = ((pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
             (accounts.pos_start, accounts.pos_count, accounts.wallet),
             (mk.mark, mk.lot_size), accounting.long_lots)  # fmt: skip
    rows = (np.zeros((order.size + 1, 3), np.int64), np.zeros((order.size + 1, 3)), np.zeros(1, np.int64))
    state_py, rows_py = copy.deepcopy(state), copy.deepcopy(rows)
    left = adl_kernels.walk_queue(*args, *state, *rows)
    left_py = adl_kernels._walk_queue_py(*args, *state_py, *rows_py)
    assert left == left_py
    flat = [state[0][1], state[0][3], state[1][2], state[3], *rows]
    flat_py = [state_py[0][1], state_py[0][3], state_py[1][2], state_py[3], *rows_py]
    assert [a.tobytes() for a in flat] == [a.tobytes() for a in flat_py]


ALLOCATING = [i for i, c in enumerate(RULES) if isinstance(c, RandomScanAdl | ProRataAdl)]
TWINS = {
    "allocate_requests": adl_kernels._allocate_requests_py,
    "_water_fill": adl_kernels._water_fill_py,
    "_water_fill_finite": adl_kernels._water_fill_finite_py,
    "_round_to_lots": adl_kernels._round_to_lots_py,
    "_close": uk._close_py,
    "numpy_sum": pk._numpy_sum_py,
    "_cross_sums": mk._cross_sums_py,
}
"""The ADL kernels' module names and the plain twins that stand in for them (callees included)."""


def outcome_with_draws(book: dict[str, Any], config: Any, compiled: bool) -> tuple[Any, ...]:
    """:func:`outcome`, and the generator's next draw (the same stream consumed the same way)."""
    engine, accounting = build(book, config)
    engine.book.compiled = compiled
    left = engine.execute_batch(0, requests(book, accounting), np.array([book["previous"]]),
                                np.array([book["index"]]), book["fund_empty"])  # fmt: skip
    pos, accounts = accounting.positions, accounting.accounts
    state = [a.tobytes() for a in (pos.size_lots, pos.entry_price, pos.isolated_margin, accounts.wallet,
                                   accounting.long_lots)]  # fmt: skip
    fills = {k: [float(x).hex() if isinstance(x, float | np.floating) else int(x) for x in v]
             for k, v in vars(engine.record).items()}  # fmt: skip
    return state, fills, left, int(engine.rng.integers(2**62))


@settings(max_examples=150, deadline=None)
@given(book=books(), which=st.sampled_from(ALLOCATING))
def test_the_compiled_allocation_equals_the_python_rules_and_its_twin(book: dict[str, Any], which: int) -> None:
    """:func:`~perpstress.mechanisms.adl.kernels.allocate_requests` (a venue's round of random-scan or pro-rata
    requests in one call), its plain twin (with plain callees) and the Python rules leave the same state, fills and
    generator state, bit for bit."""
    reference = outcome_with_draws(book, RULES[which], compiled=False)
    assert outcome_with_draws(book, RULES[which], compiled=True) == reference
    saved = {name: getattr(adl_kernels, name) for name in TWINS}
    try:
        for name, twin in TWINS.items():
            setattr(adl_kernels, name, twin)
        assert outcome_with_draws(book, RULES[which], compiled=True) == reference
    finally:
        for name, f in saved.items():
            setattr(adl_kernels, name, f)
    engine, accounting = build(book, RULES[which])  # the kernel and its twin called directly on the round
    rule, params, rng = engine.rules[0].kernel()  # type: ignore[attr-defined]
    pos, accounts, mk_ = accounting.positions, accounting.accounts, accounting.markets
    reqs = requests(book, accounting)
    order, bounds = engine.book.market_index
    args = (rule, params, 0, *(np.array([getattr(r, f) for r in reqs], np.int64) for f in ("market", "account",
            "position", "lots")), np.array([r.bankruptcy_price for r in reqs]), order, bounds, pos.account)  # fmt: skip
    state = ((pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
             (accounts.pos_start, accounts.pos_count, accounts.wallet),
             (mk_.mark, mk_.lot_size, mk_.tier_cap, mk_.tier_mmr, mk_.tier_cum), accounting.long_lots)  # fmt: skip
    rows = (np.zeros((64, 3), np.int64), np.zeros((64, 3)), np.zeros(2, np.int64))
    state_py, rows_py, rng_py = copy.deepcopy(state), copy.deepcopy(rows), copy.deepcopy(rng)
    left = adl_kernels.allocate_requests(*args, *state, rng, *rows)
    left_py = adl_kernels._allocate_requests_py(*args, *state_py, rng_py, *rows_py)
    assert left == left_py
    assert rng.integers(2**62) == rng_py.integers(2**62)
    flat = [state[0][1], state[0][3], state[1][2], state[3], *rows]
    flat_py = [state_py[0][1], state_py[0][3], state_py[1][2], state_py[3], *rows_py]
    assert [a.tobytes() for a in flat] == [a.tobytes() for a in flat_py]


weights = st.one_of(
    st.just(0.0), st.just(np.inf), st.floats(1e-300, 1e-290), st.floats(1e290, 1e300), st.floats(1e-6, 1e6)
)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), quantity=st.integers(0, 400))
def test_water_fill_and_round_to_lots_equal_the_rules(data: st.DataObject, n: int, quantity: int) -> None:
    """The compiled water fill (:func:`_water_fill`, :func:`_water_fill_finite`) and whole-lot rounding
    (:func:`_round_to_lots`) against their twins and the NumPy rules they stand for
    (:func:`perpstress.rules.adl.water_fill`, :func:`perpstress.mechanisms.adl.base.round_to_lots`), bit for bit:
    zero, tiny, huge and infinite weights, zero and fractional caps."""
    w = np.array(data.draw(st.lists(weights, min_size=n, max_size=n)))
    sizes = np.array(data.draw(st.lists(st.integers(0, 60), min_size=n, max_size=n)), dtype=np.int64)
    h = data.draw(st.sampled_from([1.0, 0.5, 0.3]))
    c = h * sizes
    expected, expected_left = adl_rules.water_fill(quantity, w, c)
    x, x_py = np.zeros(n), np.zeros(n)
    left = adl_kernels._water_fill(float(quantity), w, c, x)
    left_py = adl_kernels._water_fill_py(float(quantity), w, c, x_py)
    assert x.tobytes() == x_py.tobytes() == expected.tobytes()
    assert float(left).hex() == float(left_py).hex() == float(expected_left).hex()
    if not np.isinf(w).any():
        y, y_py = np.zeros(n), np.zeros(n)
        finite = adl_kernels._water_fill_finite(float(quantity), w, c, y)
        assert float(finite).hex() == float(adl_kernels._water_fill_finite_py(float(quantity), w, c, y_py)).hex()
        assert y.tobytes() == y_py.tobytes() == expected.tobytes()
    caps = np.floor(c + 1e-9).astype(np.int64)
    total = round(float(expected.sum()))
    lots, lots_py = np.zeros(n, np.int64), np.zeros(n, np.int64)
    adl_kernels._round_to_lots(expected, caps, total, lots)
    adl_kernels._round_to_lots_py(expected, caps, total, lots_py)
    assert lots.tolist() == lots_py.tolist() == round_to_lots(expected, caps, total).tolist()


@settings(max_examples=150, deadline=None)
@given(data=st.data(), k=st.integers(0, 40))
def test_adl_closes_equal_the_python_grouping(data: st.DataObject, k: int) -> None:
    """:meth:`Cascade.record_adl_closes` by :func:`~perpstress.mechanisms.adl.kernels.adl_closes` (and its twin)
    writes the rows the Python grouping writes (one per venue, market, bankrupt account and side, in first-seen
    order, sums in fill order), bit for bit."""
    small = st.integers(0, 2)
    rows = [(data.draw(small), data.draw(small), data.draw(st.integers(0, 3)), data.draw(st.sampled_from([1, -1])),
             data.draw(st.integers(1, 10**6)), data.draw(st.floats(1e-3, 1e9)), data.draw(st.floats(1e-3, 1e5)))
            for _ in range(k)]  # fmt: skip
    record = AdlRecord()
    for venue, market, bankrupt, side, lots, notional, mark in rows:
        record.add(5, venue, market, bankrupt, 7, side, lots, notional / lots, mark, notional, 0.0, 0.0)
    lot_size = np.array([1.0, 0.001, 10.0])

    def written(path: str) -> dict[str, list[Any]]:
        liq = LiquidationRecord()
        fake = SimpleNamespace(adl=SimpleNamespace(record=record, book=SimpleNamespace(compiled=path != "python")),
                               liquidation=SimpleNamespace(record=liq),
                               world=SimpleNamespace(now_ms=9, markets=SimpleNamespace(lot_size=lot_size)))  # fmt: skip
        fake._record_adl_closes_python = lambda adl_from: Cascade._record_adl_closes_python(fake, adl_from)
        if path == "twin":
            saved = adl_kernels.adl_closes
            adl_kernels.adl_closes = adl_kernels._adl_closes_py
            try:
                Cascade.record_adl_closes(fake, 1 if k else 0)  # type: ignore[arg-type]
            finally:
                adl_kernels.adl_closes = saved
        else:
            Cascade.record_adl_closes(fake, 1 if k else 0)  # type: ignore[arg-type]
        return {n: [float(x).hex() if isinstance(x, float | np.floating) else x for x in v]
                for n, v in vars(liq).items()}  # fmt: skip

    reference = written("python")
    assert written("compiled") == reference
    assert written("twin") == reference
    columns = [np.array(c, np.int64) for c in (record.venue, record.market, record.bankrupt_account, record.side,
                                               record.lots)]  # fmt: skip
    floats = [np.array(record.notional_usd, np.float64), np.array(record.mark, np.float64), lot_size]
    out = (np.zeros((k, 5), np.int64), np.zeros((k, 3)))
    out_py = copy.deepcopy(out)
    n = adl_kernels.adl_closes(*columns, *floats, *out)
    assert n == adl_kernels._adl_closes_py(*columns, *floats, *out_py) == len({row[:4] for row in rows})
    assert [a.tobytes() for a in out] == [a.tobytes() for a in out_py]
