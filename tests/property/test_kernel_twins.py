"""Every numba kernel equals its plain-Python twin, and both agree with a naive reference.

Each kernel in the package is written as a plain function ``foo_py`` and compiled as ``foo = njit(cache=True)(foo_py)``
(STYLE.md: "the plain version is the test oracle for the fast one"). Here Hypothesis draws valid inputs, runs the
compiled kernel and its twin on copies of them, and asserts the outputs are identical, bit for bit (the same
arithmetic in the same order; NaN equal to NaN where NaN is a legitimate output). The twin of a kernel that calls
other kernels calls their compiled versions, so it is run inside :func:`all_plain`, which swaps every compiled callee
for its twin: the oracle is then plain Python all the way down.

A twin comparison cannot see a bug written in the shared source (both are built from it), so each kernel is also
checked against an independent reference: :func:`perpstress.rules.margin.maintenance_margin` and
:func:`perpstress.rules.liquidation.liquidation_price` for the margin kernels, a per-account loop, lists for the
books, the equity-crosses-maintenance definition for the trigger bands.

Inputs are realistic: tier tables as venues publish them (increasing caps and rates, maintenance amounts derived by
continuity, padded as :meth:`Markets.from_tables` pads them; every preset's real tables and made-up ones), accounts
holding several long and short, isolated and cross positions in markets whose marks run from 1e-4 to 2e5.

Kernels compared elsewhere: ``_replace_ladder`` and ``_match`` in tests/property/test_orderbook.py; the compiled
liquidation in tests/property/test_liquidation_kernels.py, the ADL queue walk in tests/property/test_adl_contract.py.
This file's :func:`test_every_kernel_is_compared_with_its_twin` keeps the list complete.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from numba.core.registry import CPUDispatcher

import perpstress
from perpstress.calculator import available_presets, load_venue
from perpstress.config.agents import MarketMakerConfig
from perpstress.engine import cascade
from perpstress.mechanisms import accounting as ac
from perpstress.mechanisms import collateral as col
from perpstress.mechanisms import funding as fd
from perpstress.mechanisms import margin_kernels as mk
from perpstress.mechanisms import market_makers as mm
from perpstress.rules.liquidation import liquidation_price
from perpstress.rules.margin import TierTable, maintenance_margin
from perpstress.state import orderbook as ob
from perpstress.state import triggers as tr
from perpstress.state.orderbook import ASK, BID, OrderBooks
from perpstress.state.portfolio import Markets, group_by_account

SETTINGS = settings(max_examples=100, deadline=None)

# --- where each kernel is compared with its twin ---------------------------------------------------------------
HERE = "tests/property/test_kernel_twins.py"
PRICES = "tests/property/test_price_kernels.py"
TAKERS = "tests/property/test_takers_kernel.py"
COMPARED = {
    "perpstress.mechanisms.margin_kernels": {
        "_maintenance": HERE,
        "_liquidation_price": HERE,
        "_cross_sums": HERE,
        "unit_balances": HERE,
        "isolated_balances": HERE,
        "_exact_band": HERE,
        "position_bands": HERE,
        "fold_triggers": "tests/unit/mechanisms/test_fold_triggers.py",
    },
    "perpstress.mechanisms.accounting": {"settle_maker_fills": HERE},
    "perpstress.mechanisms.fund_unwind": {"unwind_funds": "tests/property/test_fund_unwind.py"},
    "perpstress.mechanisms.funding": {"impact_prices_of": HERE},
    "perpstress.mechanisms.agents.crowd": {
        "crowd_topups": "tests/property/test_crowd_kernels.py",
        "crowd_stop": "tests/property/test_crowd_stops_kernel.py",
        "crowd_act": "tests/property/test_crowd_stops_kernel.py",
    },
    "perpstress.mechanisms.agents.flow": {
        "window_extreme": HERE,
        "flow_signals": "tests/property/test_flow_kernels.py",
        "plan_orders": "tests/property/test_flow_kernels.py",
    },
    "perpstress.mechanisms.market_makers": {"post_ladder": HERE, "makers_step": HERE},
    "perpstress.state.orderbook": {
        "_remove_owner": HERE,
        "_better_nb": HERE,
        "_insert": HERE,
        "_replace_ladder": "tests/property/test_orderbook.py",
        "_replace_sorted_ladder": HERE,
        "_depth_all": HERE,
        "_match": "tests/property/test_orderbook.py",
    },
    "perpstress.state.triggers": {"_fire_sorted": HERE, "_scan_pending": HERE, "_merge_runs": HERE},
    "perpstress.mechanisms.collateral": {"revalue_rows": HERE, "band_cushion_of": HERE},
    "perpstress.engine.exact_sum": {"_accumulate": "tests/property/test_exact_sum.py"},
    "perpstress.engine.cascade": {"sorted_union": HERE},
    "perpstress.engine.invariants": {"recount_positions": "tests/property/test_invariant_kernels.py"},
    "perpstress.mechanisms.agents.takers": {"draw_step": TAKERS, "takers_step": TAKERS},
    "perpstress.mechanisms.price_kernels": {
        "insert_sorted": PRICES,
        "median_sorted": PRICES,
        "_block_sum": PRICES,
        "_pairwise_sum": PRICES,
        "numpy_sum": PRICES,
        "dot_fma": PRICES,
        "weighted_mean": PRICES,
        "weighted_median": PRICES,
        "index_step": PRICES,
        "median_of_three": PRICES,
        "hyperliquid_mark": PRICES,
        "mark_step": PRICES,
        "book_quotes": PRICES,
        "peer_medians": PRICES,
        "publish_marks": PRICES,
    },
    "perpstress.mechanisms.liquidation.kernels": {
        k: "tests/property/test_liquidation_kernels.py"
        for k in (
            "_execute",
            "_fund_trade",
            "_fund_equity",
            "_take_over",
            "_settle_gap",
            "_order_then_takeover",
            "_backstop",
            "liquidate_units",
            "_fund_pay",
            "_socialise",
            "_record",
            "_fillable_price_ioc",
            "_keeper",
            "settle_gaps",
        )
    },
    "perpstress.mechanisms.unit_kernels": {
        k: "tests/property/test_liquidation_kernels.py"
        for k in ("_unit_positions", "_unit_equity", "_close", "_bankruptcy_price", "_trade", "_unit_maintenance")
    },
    "perpstress.mechanisms.adl.kernels": {
        k: "tests/property/test_adl_contract.py"
        for k in (
            "walk_queue",
            "_round_to_lots",
            "_water_fill_finite",
            "_water_fill",
            "allocate_requests",
            "adl_closes",
        )
    },
}

# Compiled callees of composite kernels, and their twins (a twin looks its callees up at call time).
PLAIN = [
    (mk, "_maintenance", mk._maintenance_py),
    (mk, "_liquidation_price", mk._liquidation_price_py),
    (mk, "_cross_sums", mk._cross_sums_py),
    (mk, "_exact_band", mk._exact_band_py),
    (ob, "_remove_owner", ob._remove_owner_py),
    (ob, "_better_nb", ob._better),
    (ob, "_insert", ob._insert_py),
    (mm, "_replace_sorted_ladder", ob._replace_sorted_ladder_py),
    (mm, "_remove_owner", ob._remove_owner_py),
    (mm, "post_ladder", mm._post_ladder_py),
]


@contextmanager
def all_plain() -> Iterator[None]:
    """Run twins with every compiled callee swapped for its twin. Call compiled kernels only outside this block:
    a kernel compiled inside it would see a plain function where it expects a compiled one."""
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in PLAIN]
    try:
        for mod, name, twin in PLAIN:
            setattr(mod, name, twin)
        yield
    finally:
        for mod, name, kernel in saved:
            setattr(mod, name, kernel)


def test_every_kernel_is_compared_with_its_twin() -> None:
    """Every compiled kernel in the package has a plain twin it was compiled from, and a test that calls both."""
    root = Path(perpstress.__file__).parent
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "njit" not in path.read_text():
            continue
        name = "perpstress." + ".".join(path.relative_to(root).with_suffix("").parts)
        module = importlib.import_module(name)
        kernels = {k for k, v in vars(module).items() if isinstance(v, CPUDispatcher) and v.__module__ == name}
        for k in kernels:
            twin = getattr(module, k).py_func
            assert getattr(module, twin.__name__) is twin, f"{name}.{k}: its twin {twin.__name__} is not in the module"
        found[name] = kernels
    listed = {m: set(ks) for m, ks in COMPARED.items()}
    assert found == listed, f"kernels in the package {found}, listed here {listed}: list each with where it is compared"
    repo = Path(__file__).resolve().parents[2]
    for m, ks in COMPARED.items():
        module = importlib.import_module(m)
        for k, where in ks.items():
            twin = getattr(module, k).py_func.__name__
            if where == HERE:
                assert "test_" + k.strip("_").removesuffix("_nb") in globals(), f"no test of {m}.{k} here"
            else:
                text = (repo / where).read_text()
                assert re.search(rf"\b{k}\(", text), f"{where} does not call {m}.{k}"
                assert re.search(rf"\b{twin}\(", text), f"{where} does not call its twin {twin}"


# --- tier tables and books of positions --------------------------------------------------------------------------
REAL_TABLES = [p.tier_table() for v in available_presets() for p in load_venue(v).perpetuals.values()]
LOTS = (1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0)


@st.composite
def made_up_tiers(draw: st.DrawFn) -> TierTable:
    """A venue-like table: caps growing from 1e3-1e7 USD, strictly increasing rates from 0.1-5 % up to 61 %, each tier's
    floor the previous cap and its maintenance amount derived by continuity (:meth:`TierTable.from_rates`)."""
    n = draw(st.integers(1, 8))
    first = draw(st.floats(1e3, 1e7))
    growth = draw(st.lists(st.floats(1.1, 20.0), min_size=n - 1, max_size=n - 1))
    caps = first * np.cumprod([1.0, *growth])
    steps = draw(st.lists(st.floats(0.0005, 0.08), min_size=n - 1, max_size=n - 1))
    rates = draw(st.floats(0.001, 0.05)) + np.cumsum([0.0, *steps])
    floors = np.concatenate(([0.0], caps[:-1]))
    return TierTable.from_rates(list(floors), list(caps), list(rates), list(0.5 / rates))


tier_tables = st.one_of(st.sampled_from(REAL_TABLES), made_up_tiers())
prices = st.floats(-4.0, 5.3).map(lambda x: float(10.0**x))  # 0.0001 to 200,000 quote units


@dataclass
class Book:
    """Markets (padded tiers, marks) and accounts' positions, grouped by account as the engine stores them."""

    markets: Markets
    tables: list[TierTable]
    wallet: np.ndarray
    start: np.ndarray
    count: np.ndarray
    account: np.ndarray
    market: np.ndarray
    lots: np.ndarray
    entry: np.ndarray
    iso: np.ndarray

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Fresh copies of ``pos_start .. cum``, the kernels' common arguments, in their order."""
        mk_ = self.markets
        return tuple(
            a.copy()
            for a in (self.start, self.count, self.wallet, self.market, self.lots, self.entry, self.iso,
                      mk_.lot_size, mk_.mark, mk_.tier_cap, mk_.tier_mmr, mk_.tier_cum)
        )  # fmt: skip

    def base(self, p: int) -> float:
        return float(self.lots[p] * self.markets.lot_size[self.market[p]])

    def positions_of(self, a: int) -> range:
        return range(int(self.start[a]), int(self.start[a] + self.count[a]))

    def cross(self, a: int) -> list[int]:
        return [p for p in self.positions_of(a) if self.lots[p] != 0 and np.isnan(self.iso[p])]


@st.composite
def books(draw: st.DrawFn, max_accounts: int = 8) -> Book:
    n_m = draw(st.sampled_from([1, 2, 3, 4]))
    tables = draw(st.lists(tier_tables, min_size=n_m, max_size=n_m))
    lot = draw(st.lists(st.sampled_from(LOTS), min_size=n_m, max_size=n_m))
    markets = Markets.from_tables([0] * n_m, lot, [1e-6] * n_m, tables)
    markets.mark[:] = draw(st.lists(prices, min_size=n_m, max_size=n_m))
    n_a = draw(st.integers(1, max_accounts))
    wallet = np.zeros(n_a)
    account, market, lots, entry, iso = [], [], [], [], []
    for a in range(n_a):
        kind = draw(st.sampled_from(["cross", "isolated", "mixed"]))
        held = draw(st.permutations(range(n_m)))[: draw(st.integers(0 if a == 0 else 1, n_m))]  # one-way: each
        cross_notional = 0.0  # market at most once
        for m in held:
            notional = float(10.0 ** draw(st.floats(1.0, 9.0)))  # USD, through every tier
            q = max(1, int(notional / markets.mark[m] / lot[m]))
            closed = draw(st.integers(0, 9)) == 0  # a closed position keeps its row
            isolated = kind == "isolated" or (kind == "mixed" and draw(st.booleans()))
            leverage = draw(st.floats(1.0, 125.0))
            account.append(a)
            market.append(m)
            lots.append(0 if closed else draw(st.sampled_from([1, -1])) * q)
            entry.append(markets.mark[m] * draw(st.one_of(st.floats(0.95, 1.05), st.floats(0.3, 3.0))))
            iso.append(q * lot[m] * entry[-1] / leverage if isolated else np.nan)
            cross_notional += 0.0 if isolated else q * lot[m] * entry[-1]
        wallet[a] = cross_notional / draw(st.floats(1.0, 200.0)) if draw(st.integers(0, 7)) else 0.0
    acc = np.array(account, dtype=np.int32)
    start, count = group_by_account(n_a, acc)
    return Book(markets, tables, wallet, start, count, acc, np.array(market, dtype=np.int32),
                np.array(lots, dtype=np.int64), np.array(entry), np.array(iso))  # fmt: skip


def accounts_of(data: st.DataObject, book: Book) -> np.ndarray:
    """Some of the book's accounts, in any order."""
    order = data.draw(st.permutations(range(book.wallet.size)))
    return np.array(order[: data.draw(st.integers(0, len(order)))], dtype=np.int32)


def brute_cross(book: Book, a: int, mark: np.ndarray) -> tuple[float, float, float, int, int]:
    """Account ``a``'s cross balance, requirement, exposure, cross count and last cross position, by the rules."""
    bal, req, exposure, last = float(book.wallet[a]), 0.0, 0.0, -1
    for p in book.cross(a):
        m = book.market[p]
        q = book.base(p)
        bal += q * (mark[m] - book.entry[p])
        req += float(maintenance_margin(book.tables[m], abs(q) * mark[m]))
        exposure += abs(q) * mark[m] * (1.0 + book.tables[m].mmr[-1])
        last = p
    return bal, req, exposure, len(book.cross(a)), last


def cross_scale(book: Book, a: int, mark: np.ndarray) -> float:
    """USD size of the terms in ``a``'s cross balance and requirement: the rounding tolerance is relative to it."""
    ps = book.cross(a)
    return abs(float(book.wallet[a])) + sum(abs(book.base(p)) * float(mark[book.market[p]] + book.entry[p]) for p in ps)


# --- margin kernels ------------------------------------------------------------------------------------------------
@st.composite
def tier_rows(draw: st.DrawFn) -> tuple[TierTable, np.ndarray, np.ndarray, np.ndarray]:
    """A table and its padded row of ``Markets`` (width at least the table's: padding beyond is cap inf)."""
    table = draw(tier_tables)
    markets = Markets.from_tables(
        [0, 0], [1.0, 1.0], [1.0, 1.0], [table, REAL_TABLES[draw(st.integers(0, len(REAL_TABLES) - 1))]]
    )
    return table, markets.tier_cap[0], markets.tier_mmr[0], markets.tier_cum[0]


@st.composite
def notionals(draw: st.DrawFn, table: TierTable) -> float:
    """Anywhere, or on a tier edge, or a hair either side of one."""
    edge = float(table.cap[draw(st.integers(0, table.tiers - 1))])
    return draw(st.one_of(st.just(0.0), st.floats(-2.0, 12.0).map(lambda x: float(10.0**x)),
                          st.sampled_from([edge, edge * (1 - 1e-15), edge * (1 + 1e-15)])))  # fmt: skip


@SETTINGS
@given(row=tier_rows(), data=st.data())
def test_maintenance(row: tuple[TierTable, np.ndarray, np.ndarray, np.ndarray], data: st.DataObject) -> None:
    table, caps, mmr, cum = row
    for _ in range(5):
        n = data.draw(notionals(table))
        fast = mk._maintenance(n, caps.copy(), mmr.copy(), cum.copy())
        plain = mk._maintenance_py(n, caps.copy(), mmr.copy(), cum.copy())
        assert fast == plain
        assert fast == float(maintenance_margin(table, n))  # the same tier and arithmetic: bit for bit


def liquidation_residual(table: TierTable, side: float, q: float, ep: float, c: float, price: float) -> float:
    """Margin balance minus maintenance margin at ``price``, by the rules (negative: liquidatable)."""
    return c + side * q * (price - ep) - float(maintenance_margin(table, q * price))


def assert_is_liquidation_price(table: TierTable, side: float, q: float, ep: float, c: float, lp: float) -> None:
    """``lp`` is where equity crosses maintenance: liquidatable just beyond it, safe just inside (where that is
    resolvable in float64); 0 exactly for a long whose collateral covers its whole notional."""
    if side > 0 and c >= q * ep:
        event("liquidation price: a long no price liquidates")
        assert lp == 0.0
        return
    assert np.isfinite(lp)
    assert lp > 0.0
    tol = 1e-9 * (abs(c) + q * ep + q * lp)
    assert abs(liquidation_residual(table, side, q, ep, c, lp)) <= tol
    delta = 1e-6
    resolvable = q * lp * delta * (1.0 - table.mmr[-1]) > 10.0 * tol
    event(f"liquidation price: tier {int(np.searchsorted(table.cap, q * lp))}, bracket checked: {resolvable}")
    if resolvable:  # the move is resolvable above rounding
        beyond, inside = (lp * (1 - delta), lp * (1 + delta)) if side > 0 else (lp * (1 + delta), lp * (1 - delta))
        assert liquidation_residual(table, side, q, ep, c, beyond) < 0.0
        assert liquidation_residual(table, side, q, ep, c, inside) > 0.0


@settings(max_examples=300, deadline=None)
@given(row=tier_rows(), side=st.sampled_from([1.0, -1.0]), ep=prices, data=st.data())
def test_liquidation_price(
    row: tuple[TierTable, np.ndarray, np.ndarray, np.ndarray], side: float, ep: float, data: st.DataObject
) -> None:
    table, caps, mmr, cum = row
    if table.tiers == 1 or data.draw(st.integers(0, 2)) == 0:  # collateral from a leverage
        notional = float(10.0 ** data.draw(st.floats(1.0, 11.0)))
        q = notional / ep
        c = notional / data.draw(st.one_of(st.floats(0.5, 1.0), st.floats(1.0, 125.0)))  # < 1: a long never liquidated
        root = None
    else:  # the root placed on an inner tier edge or a hair either side of it, where the bracket test decides
        edge = float(table.cap[data.draw(st.integers(0, table.tiers - 2))])
        n_root = edge * data.draw(st.sampled_from([1.0, 1 - 1e-12, 1 + 1e-12, 1 - 1e-9, 1 + 1e-9, 1 - 1e-6, 1 + 1e-6,
                                                   1 - 1e-3, 1 + 1e-3]))  # fmt: skip
        root = ep * (data.draw(st.floats(0.3, 0.999)) if side > 0 else data.draw(st.floats(1.001, 3.0)))
        q = n_root / root
        c = float(maintenance_margin(table, n_root)) - side * q * (root - ep)  # equity = maintenance at the root
    fast = mk._liquidation_price(side, q, ep, c, caps.copy(), mmr.copy(), cum.copy())
    plain = mk._liquidation_price_py(side, q, ep, c, caps.copy(), mmr.copy(), cum.copy())
    np.testing.assert_array_equal(fast, plain)
    assert_is_liquidation_price(table, side, q, ep, c, fast)
    assert fast == pytest.approx(float(liquidation_price(table, side, q, ep, c)), rel=1e-9)
    if root is not None:
        assert fast == pytest.approx(root, rel=1e-9)


def test_a_hopeless_short_fires_at_once() -> None:
    """A short whose collateral is below -Q*EP has no liquidation price (NaN): every price liquidates it, so its
    band must fire at once (it used to be NaN, which the trigger index never fires)."""
    markets = Markets.from_tables([0], [0.001], [0.1], [REAL_TABLES[0]])  # Binance BTCUSDT
    markets.mark[:] = 100_000.0
    start, count = group_by_account(1, np.zeros(1, np.int32))
    lo, hi = np.zeros(1), np.zeros(1)
    iso = np.array([-150_000.0])  # 1 BTC short from 100,000 with -150,000 USD of isolated margin
    mk.position_bands(np.zeros(1, np.int32), start, count, np.zeros(1), np.zeros(1), np.zeros(1, np.int32),
                      np.array([-1000], np.int64), np.array([100_000.0]), iso, markets.lot_size, markets.mark,
                      markets.tier_cap, markets.tier_mmr, markets.tier_cum, lo, hi)  # fmt: skip
    bal, req = mk.isolated_balances(np.zeros(1, np.int64), np.zeros(1, np.int32), np.array([-1000], np.int64),
                                    np.array([100_000.0]), iso, markets.lot_size, markets.mark, markets.tier_cap,
                                    markets.tier_mmr, markets.tier_cum)  # fmt: skip
    assert bal[0] < req[0]  # liquidatable now, and at every price
    assert hi[0] <= markets.mark[0]  # so its band fires at once


@SETTINGS
@given(book=books())
def test_cross_sums(book: Book) -> None:
    for a in range(book.wallet.size):
        fast = mk._cross_sums(a, *book.arrays())
        plain = mk._cross_sums_py(a, *book.arrays())
        assert fast == plain
        assert fast == brute_cross(book, a, book.markets.mark)  # the same sums in the same order: bit for bit


@SETTINGS
@given(book=books(), data=st.data())
def test_unit_balances(book: Book, data: st.DataObject) -> None:
    accounts = accounts_of(data, book)
    fast = mk.unit_balances(accounts.copy(), *book.arrays())
    with all_plain():
        plain = mk.unit_balances_py(accounts.copy(), *book.arrays())
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(f, p)
    for i, a in enumerate(accounts):  # a per-account loop over the rules, bit for bit
        bal, req, _, _, _ = brute_cross(book, int(a), book.markets.mark)
        assert (fast[0][i], fast[1][i]) == (bal, req)


@SETTINGS
@given(book=books(), data=st.data())
def test_isolated_balances(book: Book, data: st.DataObject) -> None:
    isolated = np.flatnonzero(~np.isnan(book.iso)).astype(np.int64)
    positions = np.array(data.draw(st.permutations(list(isolated))), dtype=np.int64)
    fast = mk.isolated_balances(positions.copy(), *book.arrays()[3:])  # pos_market .. cum
    plain = mk.isolated_balances_py(positions.copy(), *book.arrays()[3:])
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(f, p)
    mark = book.markets.mark
    for i, p in enumerate(positions):  # by the rules, bit for bit
        m = book.market[p]
        q = book.base(int(p))
        assert fast[0][i] == book.iso[p] + q * (mark[m] - book.entry[p])
        assert fast[1][i] == float(maintenance_margin(book.tables[m], abs(q) * mark[m]))


SENTINEL = 12345.678  # band entries a kernel must not touch


@SETTINGS
@given(book=books())
def test_exact_band(book: Book) -> None:
    _, _, _, mkt, lots, entry, _, lot, _, caps, mmr, cum = book.arrays()
    for p in np.flatnonzero(book.lots != 0):
        collateral = float(book.iso[p]) if not np.isnan(book.iso[p]) else float(book.wallet[book.account[p]])
        bands = [np.full(lots.size, SENTINEL) for _ in range(4)]
        mk._exact_band(int(p), collateral, mkt, lots, entry, lot, caps, mmr, cum, bands[0], bands[1])
        with all_plain():
            mk._exact_band_py(int(p), collateral, mkt, lots, entry, lot, caps, mmr, cum, bands[2], bands[3])
        np.testing.assert_array_equal(bands[0], bands[2])
        np.testing.assert_array_equal(bands[1], bands[3])
        q = book.base(int(p))
        side = 1.0 if q > 0 else -1.0
        written, untouched = (bands[0], bands[1]) if q > 0 else (bands[1], bands[0])
        assert np.all(untouched == SENTINEL)
        assert np.all(np.delete(written, p) == SENTINEL)
        table = book.tables[book.market[p]]
        expected = float(liquidation_price(table, side, abs(q), book.entry[p], collateral))
        np.testing.assert_allclose(written[p], expected, rtol=1e-9)


def assert_bands_hold(book: Book, accounts: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """The bands against the definition: a unit with one position has its exact liquidation price as the edge;
    a cross account with several is safe with every position at its edge at once, or fires at once if it is at
    or below maintenance already; closed positions never fire; other accounts' entries are untouched."""
    mark = book.markets.mark
    mine = np.zeros(lo.size, dtype=bool)
    for a in map(int, accounts):
        ps = book.positions_of(a)
        mine[ps.start : ps.stop] = True
        cross = book.cross(a)
        for p in ps:
            q = book.base(p)
            if q == 0:
                assert (lo[p], hi[p]) == (-np.inf, np.inf)
                continue
            if np.isnan(book.iso[p]) and len(cross) > 1:
                continue  # checked below, with the account's other cross positions
            c = float(book.iso[p]) if not np.isnan(book.iso[p]) else float(book.wallet[a])
            edge, other = (lo[p], hi[p]) if q > 0 else (hi[p], lo[p])
            assert other == (np.inf if q > 0 else -np.inf)
            table = book.tables[book.market[p]]
            assert_is_liquidation_price(table, 1.0 if q > 0 else -1.0, abs(q), book.entry[p], c, edge)
        if len(cross) < 2:
            continue
        bal, req, _, _, _ = brute_cross(book, a, mark)
        tol = 1e-9 * cross_scale(book, a, mark)
        fire_now = [lo[p] == np.inf if book.lots[p] > 0 else hi[p] == -np.inf for p in cross]
        event(f"bands: cross account of {len(cross)} positions, fires at once: {any(fire_now)}")
        if any(fire_now):
            assert all(fire_now)
            assert bal - req <= tol  # at or below maintenance now
            continue
        assert bal - req >= -tol
        at_edge = mark.copy()
        for p in cross:
            m = book.market[p]
            long = book.lots[p] > 0
            assert (hi[p] == np.inf and lo[p] <= mark[m]) if long else (lo[p] == -np.inf and hi[p] >= mark[m])
            at_edge[m] = max(lo[p], 0.0) if long else hi[p]  # a price does not go below 0
        bal_edge, req_edge, _, _, _ = brute_cross(book, a, at_edge)
        assert bal_edge - req_edge >= -tol  # every position at its edge at once: still not liquidatable
    assert np.all(lo[~mine] == SENTINEL)
    assert np.all(hi[~mine] == SENTINEL)


@SETTINGS
@given(book=books(), data=st.data())
def test_position_bands(book: Book, data: st.DataObject) -> None:
    accounts = accounts_of(data, book)
    bands = [np.full(book.lots.size, SENTINEL) for _ in range(4)]
    cushion = np.zeros(book.wallet.size)  # no collateral allowance: the exact band
    a = book.arrays()
    mk.position_bands(accounts.copy(), *a[:3], cushion, *a[3:], bands[0], bands[1])
    with all_plain():
        a = book.arrays()
        mk.position_bands_py(accounts.copy(), *a[:3], cushion, *a[3:], bands[2], bands[3])
    np.testing.assert_array_equal(bands[0], bands[2])
    np.testing.assert_array_equal(bands[1], bands[3])
    assert_bands_hold(book, accounts, bands[0], bands[1])


# --- makers' settlement ----------------------------------------------------------------------------------------
@SETTINGS
@given(
    n_makers=st.integers(1, 5),
    data=st.data(),
    sign=st.sampled_from([1, -1]),
    lot=st.sampled_from(LOTS),
    maker_rate=st.sampled_from([-0.0001, 0.0, 0.0002]),
)
def test_settle_maker_fills(n_makers: int, data: st.DataObject, sign: int, lot: float, maker_rate: float) -> None:
    lot_size = np.array([lot, 0.01])
    pos_market = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n_makers, max_size=n_makers)), np.int32)
    size = np.array(data.draw(st.lists(st.integers(-1000, 1000), min_size=n_makers, max_size=n_makers)), np.int64)
    mid = data.draw(prices)
    entry = np.where(size != 0, mid * np.array(data.draw(st.lists(st.floats(0.5, 2.0), min_size=n_makers,
                                                                  max_size=n_makers))), 0.0)  # fmt: skip
    wallet = np.array(data.draw(st.lists(st.floats(0.0, 1e7), min_size=n_makers, max_size=n_makers)))
    long_lots = np.bincount(pos_market, np.maximum(size, 0), 2).astype(np.int64)
    fill = st.tuples(st.integers(0, n_makers - 1), st.floats(0.5, 2.0), st.integers(1, 1500))
    fills = data.draw(st.lists(fill, min_size=1, max_size=10))
    owners = np.array([o for o, _, _ in fills], np.int64)
    fill_prices = np.array([mid * x for _, x, _ in fills])
    filled = np.array([n for _, _, n in fills], np.int64)
    state = (pos_market, lot_size, size, entry, wallet, long_lots, np.zeros(n_makers, bool), np.zeros(2))
    fast = [a.copy() for a in state]
    plain = [a.copy() for a in state]
    ac.settle_maker_fills(owners.copy(), fill_prices.copy(), filled.copy(), sign, lot, maker_rate, 1, *fast)
    ac._settle_maker_fills_py(owners.copy(), fill_prices.copy(), filled.copy(), sign, lot, maker_rate, 1, *plain)
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(f, p)
    _, _, size_after, _, _, long_after, touched, pool = fast
    traded = np.bincount(owners, filled, n_makers).astype(np.int64)  # makers take the other side of the taker
    np.testing.assert_array_equal(size_after, size - sign * traded)
    np.testing.assert_array_equal(long_after, np.bincount(pos_market, np.maximum(size_after, 0), 2))
    np.testing.assert_array_equal(touched, np.bincount(owners, minlength=n_makers) > 0)
    assert pool[0] == 0.0
    fees = 0.0
    for n, price in zip(filled, fill_prices, strict=True):
        fees += maker_rate * n * lot * price
    assert pool[1] == fees  # the venue's pool gets every fee, summed in book order


# --- order books -------------------------------------------------------------------------------------------------
CAPACITY = 8  # small, so that sides fill up
TICK = np.array([0.5, 0.01])
LOT = np.array([0.001, 1.0])


@st.composite
def order_books(draw: st.DrawFn, centre: int = 1000, spread: int = 40) -> OrderBooks:
    """Two markets' books built by random makers' ladders through the compiled replace (sorted, never crossed,
    sides sometimes full)."""
    books = OrderBooks(2, CAPACITY, TICK, LOT)
    ladder = st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 4),
                       st.lists(st.tuples(st.integers(0, spread), st.integers(1, 50)), max_size=6))  # fmt: skip
    for m, side, who, levels in draw(st.lists(ladder, max_size=12)):
        ticks = np.array([centre - 1 - d if side == BID else centre + 1 + d for d, _ in levels], np.int64)
        sizes = np.array([n for _, n in levels], np.int64)
        ob._replace_ladder(books.price, books.lots, books.owner, books.count, m, side, who, ticks, sizes)
    return books


def book_arrays(books: OrderBooks) -> list[np.ndarray]:
    return [books.price.copy(), books.lots.copy(), books.owner.copy(), books.count.copy()]


def side_rows(arrays: list[np.ndarray], m: int, side: int) -> list[tuple[int, int, int]]:
    price, lots, owner, count = arrays
    return [(int(price[m, side, i]), int(lots[m, side, i]), int(owner[m, side, i])) for i in range(count[m, side])]


def assert_other_sides_unchanged(before: list[np.ndarray], after: list[np.ndarray], m: int, side: int) -> None:
    for mm_ in range(2):
        for s in (BID, ASK):
            if (mm_, s) != (m, side):
                assert side_rows(after, mm_, s) == side_rows(before, mm_, s)


@SETTINGS
@given(books=order_books(), m=st.integers(0, 1), side=st.integers(0, 1), who=st.integers(0, 5))
def test_remove_owner(books: OrderBooks, m: int, side: int, who: int) -> None:
    before = book_arrays(books)
    fast, plain = book_arrays(books), book_arrays(books)
    ob._remove_owner(*fast, m, side, who)
    ob._remove_owner_py(*plain, m, side, who)
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(f, p)
    assert side_rows(fast, m, side) == [r for r in side_rows(before, m, side) if r[2] != who]
    assert_other_sides_unchanged(before, fast, m, side)


@settings(max_examples=200, deadline=None)
@given(
    books=order_books(),
    m=st.integers(0, 1),
    side=st.integers(0, 1),
    size=st.integers(-2, 60),
    who=st.integers(0, 5),
    data=st.data(),
)
def test_insert(books: OrderBooks, m: int, side: int, size: int, who: int, data: st.DataObject) -> None:
    for k in range(data.draw(st.integers(0, CAPACITY))):  # fill the side to any depth, up to full
        ob._insert(books.price, books.lots, books.owner, books.count, m, side, 990 - k if side == BID else 1010 + k,
                   1, 9)  # fmt: skip
    before = book_arrays(books)
    own = [r[0] for r in side_rows(before, m, side)]  # ties with resting orders, and the touch, matter most
    other = [r[0] + d for r in side_rows(before, m, 1 - side)[:1] for d in (-1, 0, 1)]
    near = {"touch": other, "tie": own, "anywhere": list(range(950, 1051))}
    tick = data.draw(st.sampled_from([near[k] for k in ("touch", "touch", "tie", "anywhere") if near[k]]).flatmap(
        st.sampled_from))  # fmt: skip
    fast, plain = book_arrays(books), book_arrays(books)
    ok = ob._insert(*fast, m, side, tick, size, who)
    with all_plain():
        ok_py = ob._insert_py(*plain, m, side, tick, size, who)
    assert ok == ok_py
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(f, p)
    rows = side_rows(before, m, side)  # a list model: refused if no size, full or crossing; else placed after
    other = side_rows(before, m, 1 - side)  # every resting order at an equal or better price
    crosses = bool(other) and (tick >= other[0][0] if side == BID else tick <= other[0][0])
    expected_ok = size > 0 and len(rows) < CAPACITY and not crosses
    event(f"insert: side full {len(rows) == CAPACITY}, crosses {crosses}, posted {expected_ok}")
    assert ok == expected_ok
    if expected_ok:
        at = sum(1 for r in rows if (r[0] >= tick if side == BID else r[0] <= tick))
        rows.insert(at, (tick, size, who))
    assert side_rows(fast, m, side) == rows
    assert_other_sides_unchanged(before, fast, m, side)


def test_better() -> None:
    for side in (BID, ASK):
        for a in range(-3, 4):
            for b in range(-3, 4):
                assert ob._better_nb(side, a, b) == ob._better(side, a, b) == (a > b if side == BID else a < b)


@SETTINGS
@given(
    books=order_books(),
    reference=st.lists(st.floats(960.0, 1040.0), min_size=2, max_size=2),
    fraction=st.sampled_from([0.0, 0.001, 0.002, 0.01, 0.05, 1.0]),
)
def test_depth_all(books: OrderBooks, reference: list[float], fraction: float) -> None:
    ref = np.array(reference) * TICK
    outs = [np.full(2, SENTINEL) for _ in range(4)]
    ob._depth_all(books.price, books.lots, books.count, TICK, LOT, ref, fraction, outs[0], outs[1])
    ob._depth_all_py(books.price, books.lots, books.count, TICK, LOT, ref, fraction, outs[2], outs[3])
    np.testing.assert_array_equal(outs[0], outs[2])
    np.testing.assert_array_equal(outs[1], outs[3])
    for m in range(2):  # brute force: every resting order inside the band, no early stop
        arrays = book_arrays(books)
        bid = sum(
            p * TICK[m] * n * LOT[m] for p, n, _ in side_rows(arrays, m, BID) if p * TICK[m] >= ref[m] * (1 - fraction)
        )
        ask = sum(
            p * TICK[m] * n * LOT[m] for p, n, _ in side_rows(arrays, m, ASK) if p * TICK[m] <= ref[m] * (1 + fraction)
        )
        assert (outs[0][m], outs[1][m]) == (bid, ask)  # the same sums in the same order (the books are sorted)


@SETTINGS
@given(
    books=order_books(),
    rows=st.lists(st.integers(0, 1), max_size=4),
    notional=st.lists(st.sampled_from([0.0, 1.0, 50.0, 400.0, 1e3, 1e4, 5e4, 1e6]) | st.floats(0.0, 2e4), min_size=4,
                      max_size=4),
    side=st.integers(0, 1),
)  # fmt: skip
def test_impact_prices_of(books: OrderBooks, rows: list[int], notional: list[float], side: int) -> None:
    """Every row's impact price, compiled and plain, is :meth:`OrderBooks.impact_price`'s (NumPy's cumsum,
    searchsorted and sum), bit for bit, NaN where the side is too thin (and for a notional of 0: NumPy's 0 / 0, whose
    sign is the CPU's); and a brute-force walk of the levels gives it
    up to rounding."""
    r = np.array(rows, np.int64)
    q = np.array(notional[: len(rows)])
    outs = [np.full(len(rows), SENTINEL) for _ in range(2)]
    fd.impact_prices_of(books.price, books.lots, books.count, TICK, LOT, r, q, side, outs[0])
    fd._impact_prices_py(books.price, books.lots, books.count, TICK, LOT, r, q, side, outs[1])
    with np.errstate(invalid="ignore"):  # a notional of 0: NumPy's 0 / 0
        expected = np.array([books.impact_price(int(m), side, float(x)) for m, x in zip(r, q, strict=True)])
    canon = [np.where(np.isnan(x), np.nan, x).tobytes() for x in (outs[0], outs[1], expected)]  # NaN of either sign
    assert canon[0] == canon[1] == canon[2]
    arrays = book_arrays(books)
    for j, m in enumerate(rows):  # brute force: take levels best first until the notional is spent
        need, size = q[j], 0.0
        for p, n, _ in side_rows(arrays, m, side):
            px, value = p * TICK[m], p * TICK[m] * n * LOT[m]
            if value >= need:
                size += need / px
                need = 0.0
                break
            need -= value
            size += n * LOT[m]
        if need > 1e-9 * max(q[j], 1.0) or size == 0:
            event("too thin or nothing asked")
            continue
        assert outs[0][j] == pytest.approx(q[j] / size, rel=1e-9)


@SETTINGS
@given(
    books=order_books(),
    m=st.integers(0, 1),
    side=st.integers(0, 1),
    who=st.integers(0, 5),
    levels=st.lists(st.tuples(st.integers(-6, 40), st.integers(-1, 50)), max_size=10),
)
def test_replace_sorted_ladder(books: OrderBooks, m: int, side: int, who: int, levels: list[tuple[int, int]]) -> None:
    """A ladder best first (ticks repeating, some crossing the other side, sizes zero or negative, sides filling
    up): the merge leaves the book exactly as one insertion per order does, unused slots included."""
    distance = sorted(d for d, _ in levels)
    ticks = np.array([1000 - 1 - d if side == BID else 1000 + 1 + d for d in distance], np.int64)
    sizes = np.array([n for _, n in levels], np.int64)
    fast, plain, ref = book_arrays(books), book_arrays(books), book_arrays(books)
    posted = ob._replace_sorted_ladder(*fast, m, side, who, ticks, sizes)
    with all_plain():
        assert ob._replace_sorted_ladder_py(*plain, m, side, who, ticks, sizes) == posted
        assert ob._replace_ladder_py(*ref, m, side, who, ticks, sizes) == posted
    for f, p, r in zip(fast, plain, ref, strict=True):
        np.testing.assert_array_equal(f, p)
        np.testing.assert_array_equal(f, r)
    event(f"posted {posted} of {len(levels)}")


@SETTINGS
@given(
    fair=st.floats(0.01, 200_000.0),
    vol=st.floats(1e-6, 1e-2),
    inventory=st.floats(-2e6, 2e6),
    appetite=st.floats(0.05, 1.0),
    levels=st.integers(1, 8),
    who=st.integers(0, 5),
    m=st.integers(0, 1),
    data=st.data(),
)
def test_post_ladder(
    fair: float, vol: float, inventory: float, appetite: float, levels: int, who: int, m: int, data: st.DataObject
) -> None:
    cfg = MarketMakerConfig(capital_usd=1e6, depth_usd=5e5, inventory_limit_usd=1e6, loss_limit_usd=1e5,
                            levels=levels, inventory_skew_bps=30.0)  # fmt: skip
    state = mm.MakerState(active=True, ramp=1.0, peak_equity=1e6)
    shape = mm.quote_shape(cfg, state, fair, vol, inventory, appetite)
    assert shape is not None
    tick, lot = fair * 1e-5, 1e-3
    resting = data.draw(order_books(centre=100_000, spread=4_000))  # other makers' (and its own old) orders
    args = (m, who, shape.mid, shape.half, shape.spacing, shape.levels, shape.side_usd, shape.bid_scale,
            shape.ask_scale, tick, lot)  # fmt: skip
    fast, plain = book_arrays(resting), book_arrays(resting)
    mm.post_ladder(*fast, *args)
    with all_plain():
        mm._post_ladder_py(*plain, *args)
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(f, p)
    ref = OrderBooks(2, CAPACITY, np.array([tick, tick]), np.array([lot, lot]))  # the plain ladder, rounded by
    ref.price[:], ref.lots[:], ref.owner[:], ref.count[:] = book_arrays(resting)  # the book's own replace
    ladder = mm.quote(cfg, state, fair, vol, inventory, appetite)
    ref.replace_ladder(m, BID, who, ladder.bid_price, ladder.bid_size)
    ref.replace_ladder(m, ASK, who, ladder.ask_price, ladder.ask_size)
    for side in (BID, ASK):
        for mm_ in range(2):
            assert side_rows(fast, mm_, side) == side_rows(book_arrays(ref), mm_, side)


@st.composite
def maker_steps(draw: st.DrawFn) -> dict[str, Any]:
    """:func:`mm.makers_step`'s inputs: two markets' books with other makers' orders, six one-position accounts
    (account ``a`` holds position ``a``, cross or isolated, long, short or flat), some of them makers in states
    active, withdrawn or ramping back, with last quotes unset or close to now (so the requote test can skip), and
    volatility from calm to past the withdraw threshold."""
    n = 6
    off = draw(st.lists(st.floats(-0.003, 0.003), min_size=2, max_size=2))
    fair = np.array([1000 * TICK[0], 1000 * TICK[1]]) * (1 + np.array(off))
    makers = np.array(sorted(draw(st.sets(st.integers(0, n - 1), min_size=1))), dtype=np.int64)
    k = makers.size
    pos_market = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    size_lots = np.array(draw(st.lists(st.integers(-3000, 3000), min_size=n, max_size=n)), dtype=np.int64)
    entry = fair[pos_market] * (1 + np.array(draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))))
    iso = np.array([draw(st.sampled_from([np.nan, 1e4])) for _ in range(n)])
    wallet = np.array(draw(st.lists(st.floats(1e3, 1e6), min_size=n, max_size=n)))
    cfgs = [MarketMakerConfig(capital_usd=1e6, depth_usd=draw(st.floats(1e3, 1e5)), inventory_limit_usd=5e4,
                              loss_limit_usd=draw(st.floats(1e2, 1e5)), levels=draw(st.integers(1, 6)),
                              requote_bps=draw(st.sampled_from([0.0, 3.0])),
                              inventory_skew_bps=draw(st.sampled_from([None, 30.0])),
                              spread_vol_elasticity=draw(st.sampled_from([1.0, 0.7])),
                              size_vol_elasticity=draw(st.sampled_from([1.0, 1.3])),
                              adl_exposure_limit=draw(st.sampled_from([0.5, 0.1])),
                              sweep_size_cut=draw(st.sampled_from([0.0, 0.5, 1.0])),
                              refill_half_life_s=draw(st.sampled_from([10.0, 2.0])),
                              inventory_skew_permanent=draw(st.sampled_from([1.0, 0.6, 0.0])),
                              inventory_skew_half_life_s=draw(st.sampled_from([300.0, 2.0])))
            for _ in range(2)]  # fmt: skip
    vol = np.array(draw(st.lists(st.sampled_from([0.0, 5e-5, 2e-4, 5e-4, 1e-3]) | st.floats(0.0, 2e-3),
                                 min_size=2, max_size=2)))  # fmt: skip
    start_lots = size_lots[makers] - np.array(draw(st.lists(st.integers(-500, 500), min_size=k, max_size=k)))
    lot = LOT[pos_market[makers]]
    inventory = (size_lots[makers] - start_lots) * lot * fair[pos_market[makers]]
    appetite = draw(st.sampled_from([1.0, 0.6, 0.0]))
    ramp = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0), min_size=k, max_size=k)))
    refill = np.array(draw(st.lists(st.sampled_from([1.0, 0.3]) | st.floats(0.0, 1.0), min_size=k, max_size=k)))
    settled = (size_lots[makers] - start_lots) * np.array(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(-1, 2),
                                                                      min_size=k, max_size=k)))  # fmt: skip
    last = np.full((k, 7), np.nan)
    for i in range(k):
        if draw(st.booleans()):
            m = pos_market[makers[i]]
            moved = draw(st.sampled_from([0.0, 1.0]) | st.floats(-3e5, 3e5))  # inventory since the last quote
            skewed = inventory[i] - moved * draw(st.sampled_from([1.0, 0.0]) | st.floats(-1, 1))
            last[i] = (fair[m] * (1 + draw(st.floats(-4e-4, 4e-4))), vol[m], inventory[i] - moved, appetite, ramp[i],
                       refill[i], skewed)  # fmt: skip
    return {
        "books": draw(order_books()),
        "makers": makers,
        "start_lots": start_lots,
        "active": np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k))),
        "ramp": ramp,
        "refill": refill,
        "settled": settled,
        "peak": wallet[makers] * np.array(draw(st.lists(st.floats(0.9, 1.2), min_size=k, max_size=k))),
        "last": last,
        "filled": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
        "pos_market": pos_market,
        "size_lots": size_lots,
        "entry": entry,
        "iso": iso,
        "wallet": wallet,
        "adl_lots": np.array(
            draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 3000.0), min_size=n, max_size=n))
        ),
        "vol": vol,
        "fair": fair,
        "appetite": appetite,
        "cfgs": cfgs,
        "dt": draw(st.sampled_from([1.0, 0.25])),
    }


MAKER_OUTPUTS = ("price", "lots", "owner", "count", "active", "ramp", "peak", "refill", "settled", "last", "filled")


def run_makers_step(kernel: Any, d: dict[str, Any]) -> dict[str, np.ndarray]:
    """Call ``kernel`` (:func:`mm.makers_step` or its twin) on copies of ``d``'s inputs; the arrays it updates."""
    out = dict(zip(("price", "lots", "owner", "count"), book_arrays(d["books"]), strict=True))
    for key in MAKER_OUTPUTS[4:]:
        out[key] = d[key].copy()
    n = d["size_lots"].size
    table, levels = mm.maker_config_table(d["cfgs"], d["dt"])
    kernel(out["price"], out["lots"], out["owner"], out["count"], d["makers"], d["start_lots"], out["active"],
           out["ramp"], out["peak"], out["refill"], out["settled"], out["last"], out["filled"], d["pos_market"],
           d["size_lots"], d["entry"], d["iso"], np.arange(n, dtype=np.int64), np.ones(n, dtype=np.int32),
           d["wallet"], LOT, TICK, d["fair"].copy(), d["adl_lots"], d["vol"], d["fair"], d["appetite"], table,
           levels)  # fmt: skip
    return out


def makers_by_the_rules(d: dict[str, Any]) -> dict[str, np.ndarray]:
    """The per-maker loop :class:`perpstress.mechanisms.agents.makers.MakersPhase` ran before it was compiled:
    :func:`mm.update_state`, the requote test, :func:`mm.quote_shape` and :func:`mm.post_ladder` per maker."""
    price, lots, owner, count = book_arrays(d["books"])
    filled = d["filled"].copy()
    mark = d["fair"]
    states, last, settled = [], [], []
    for i, a in enumerate(d["makers"]):
        m = int(d["pos_market"][a])
        cfg = d["cfgs"][m]
        held_lots = float(d["size_lots"][a] - d["start_lots"][i])
        inventory = float((d["size_lots"][a] - d["start_lots"][i]) * LOT[m] * mark[m])
        settled.append(mm.settle(cfg, float(d["settled"][i]), held_lots, d["dt"]))
        skewed = mm.skew_lots(cfg, settled[-1], held_lots) * LOT[m] * mark[m]
        equity = float(d["wallet"][a])
        if d["size_lots"][a] != 0 and np.isnan(d["iso"][a]):
            equity += float(d["size_lots"][a] * LOT[m]) * (mark[m] - d["entry"][a])
        held = abs(float(d["size_lots"][a]))
        adl_share = d["adl_lots"][a] / max(held + d["adl_lots"][a], 1.0)
        old = mm.MakerState(bool(d["active"][i]), float(d["ramp"][i]), float(d["peak"][i]), float(d["refill"][i]))
        f0, v0, i0, ap0, r0, rf0, s0 = d["last"][i]
        swept = abs(inventory - i0) / cfg.depth_usd if filled[a] and not np.isnan(i0) else 0.0
        state = mm.update_state(cfg, old, d["vol"][m], equity, adl_share, d["dt"], swept)
        states.append(state)
        vol, fair, appetite = d["vol"][m], float(d["fair"][m]), d["appetite"]
        if (cfg.requote_bps > 0 and not filled[a] and state.active == old.active
                and abs(fair - f0) <= cfg.requote_bps * 1e-4 * f0 and abs(vol - v0) <= 0.1 * max(v0, cfg.vol_ref)
                and abs(inventory - i0) <= 0.02 * cfg.inventory_limit_usd and abs(appetite - ap0) <= 0.01
                and abs(state.ramp - r0) <= 0.02 and abs(state.refill - rf0) <= 0.02
                and abs(skewed - s0) <= 0.02 * cfg.inventory_limit_usd):  # fmt: skip
            last.append((f0, v0, i0, ap0, r0, rf0, s0))
            continue
        filled[a] = False
        last.append((fair, float(vol), inventory, appetite, state.ramp, state.refill, skewed))
        shape = mm.quote_shape(cfg, state, fair, vol, inventory, appetite, skewed)
        if shape is None:
            for side in (BID, ASK):
                ob._remove_owner(price, lots, owner, count, m, side, int(a))
        else:
            mm.post_ladder(price, lots, owner, count, m, int(a), shape.mid, shape.half, shape.spacing, shape.levels,
                           shape.side_usd, shape.bid_scale, shape.ask_scale, float(TICK[m]), float(LOT[m]))  # fmt: skip
    return {"price": price, "lots": lots, "owner": owner, "count": count,
            "active": np.array([s.active for s in states]), "ramp": np.array([s.ramp for s in states]),
            "peak": np.array([s.peak_equity for s in states]), "refill": np.array([s.refill for s in states]),
            "settled": np.array(settled),
            "last": np.array(last), "filled": filled}  # fmt: skip


@SETTINGS
@given(d=maker_steps())
def test_makers_step(d: dict[str, Any]) -> None:
    fast = run_makers_step(mm.makers_step, d)
    with all_plain():
        plain = run_makers_step(mm._makers_step_py, d)
    rules = makers_by_the_rules(d)
    for key in MAKER_OUTPUTS:
        np.testing.assert_array_equal(fast[key], plain[key], err_msg=key)
        np.testing.assert_array_equal(fast[key], rules[key], err_msg=key)  # bit for bit (NaN equal to NaN)
    kept = np.all(fast["last"] == d["last"], axis=1)
    event("a maker kept its ladder" if kept.any() else "every maker requoted")
    event("a maker withdrew" if np.any(d["active"] & ~fast["active"]) else "no maker withdrew")
    event("a maker came back" if np.any(~d["active"] & fast["active"]) else "no maker came back")
    event("a maker posted" if np.isin(fast["owner"], d["makers"]).any() else "no maker order in the books")
    event("a sweep cut a maker's size" if np.any(fast["refill"] < d["refill"]) else "no sweep cut")
    skew_apart = ~np.isnan(fast["last"][:, 6]) & (fast["last"][:, 6] != fast["last"][:, 2])
    event("a maker's quotes skewed against less than its inventory" if skew_apart.any() else "skew = inventory")


# --- trigger index -------------------------------------------------------------------------------------------------
@st.composite
def sorted_edges(draw: st.DrawFn) -> dict[str, Any]:
    """Per-market segments of band edges sorted as :meth:`TriggerIndex.rebuild` sorts them, each entry's version
    current or stale, a cursor somewhere in each segment, and marks anywhere around the edges."""
    n_m = draw(st.integers(1, 4))
    descending = draw(st.booleans())
    sizes = draw(st.lists(st.integers(0, 8), min_size=n_m, max_size=n_m))
    n = sum(sizes)
    ids = np.array(draw(st.permutations(range(n))), dtype=np.int64)  # position ids, each once
    version = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    stale = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    ver = version[ids] - stale
    edge, start, cursor = [], [], []
    at = 0
    for k in sizes:
        seg = sorted(draw(st.lists(st.floats(50.0, 150.0), min_size=k, max_size=k)), reverse=descending)
        edge += seg
        start.append(at)
        cursor.append(at + draw(st.integers(0, k)))
        at += k
    marks = np.array(draw(st.lists(st.floats(40.0, 160.0), min_size=n_m, max_size=n_m)))
    start_ = np.array(start, dtype=np.int64)
    return {"n_markets": n_m, "mark": marks, "seg_start": start_, "seg_end": start_ + np.array(sizes, np.int64),
            "cursor": np.array(cursor, np.int64), "edge": np.array(edge), "ids": ids, "ver": ver.astype(np.int64),
            "version": version, "descending": descending, "n_out": draw(st.integers(0, 3))}  # fmt: skip


@SETTINGS
@given(case=sorted_edges())
def test_fire_sorted(case: dict[str, Any]) -> None:
    out_len = case["ids"].size + case["n_out"]
    runs = []
    for kernel in (tr._fire_sorted, tr._fire_sorted_py):
        args = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        out = np.full(out_len, -7, dtype=np.int64)
        n = kernel(args["n_markets"], args["mark"], args["seg_start"], args["seg_end"], args["cursor"], args["edge"],
                   args["ids"], args["ver"], args["version"], args["descending"], out, args["n_out"])  # fmt: skip
        runs.append((n, out, args["cursor"]))
    (n, out, cursor), (n_py, out_py, cursor_py) = runs
    assert n == n_py
    np.testing.assert_array_equal(out, out_py)
    np.testing.assert_array_equal(cursor, cursor_py)
    expected, expected_cursor = [], []  # brute force: walk each segment from its cursor while the mark has reached it
    for m in range(case["n_markets"]):
        i = int(case["cursor"][m])
        while i < case["seg_end"][m]:
            e, mark = case["edge"][i], case["mark"][m]
            if not (e >= mark if case["descending"] else e <= mark):
                break
            p = int(case["ids"][i])
            if case["ver"][i] == case["version"][p]:
                expected.append(p)
            i += 1
        expected_cursor.append(i)
    assert n == case["n_out"] + len(expected)
    assert list(out[case["n_out"] : n]) == expected
    assert np.all(out[: case["n_out"]] == -7)
    assert np.all(out[n:] == -7)
    assert list(cursor) == expected_cursor


edges = st.one_of(st.floats(40.0, 160.0), st.sampled_from([np.inf, -np.inf, np.nan]))


@SETTINGS
@given(data=st.data(), n=st.integers(1, 30), n_m=st.integers(1, 3))
def test_scan_pending(data: st.DataObject, n: int, n_m: int) -> None:
    """Pending positions, each once, active or closed, with bands anywhere (never-firing infinities and NaN too):
    the same kept set and hits as the array expressions :meth:`TriggerIndex.fired` used, in pending order."""
    pending = np.array(data.draw(st.permutations(range(n)))[: data.draw(st.integers(0, n))], dtype=np.int64)
    active = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    in_pending = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    in_pending[pending] = True
    market = np.array(data.draw(st.lists(st.integers(0, n_m - 1), min_size=n, max_size=n)), dtype=np.int32)
    lo = np.array(data.draw(st.lists(edges, min_size=n, max_size=n)))
    hi = np.array(data.draw(st.lists(edges, min_size=n, max_size=n)))
    mark = np.array(data.draw(st.lists(st.floats(40.0, 160.0), min_size=n_m, max_size=n_m)))
    runs = []
    for kernel in (tr._scan_pending, tr._scan_pending_py):
        pend, flags, hits = pending.copy(), in_pending.copy(), np.full(pending.size, -7, dtype=np.int64)
        kept, n_hits = kernel(pend, active, flags, market, lo, hi, mark, hits)
        runs.append((pend[:kept], flags, hits[:n_hits], hits[n_hits:]))
    keep = active[pending]  # the array expressions, as fired() had them
    flags = in_pending.copy()
    flags[pending[~keep]] = False
    pend = pending[keep]
    m = market[pend]
    hit = active[pend] & ((lo[pend] >= mark[m]) | (hi[pend] <= mark[m]))
    for got in runs:
        np.testing.assert_array_equal(got[0], pend)
        np.testing.assert_array_equal(got[1], flags)
        np.testing.assert_array_equal(got[2], pend[hit])
        assert np.all(got[3] == -7)
    event(f"pending {min(pending.size, 3)}{'+' if pending.size >= 3 else ''}, hit {min(int(hit.sum()), 2)}")


# --- collateral revaluation ---------------------------------------------------------------------------------------


@st.composite
def holdings(draw: st.DrawFn) -> dict[str, Any]:
    """Holding rows of distinct accounts over a few pairs, some repriced: values that moved, barely moved, or not."""
    n_rows = draw(st.integers(1, 30))
    n_pairs = draw(st.integers(1, 3))
    accounts = np.array(draw(st.permutations(range(40)))[:n_rows], dtype=np.int64)
    quantity = np.array(draw(st.lists(st.floats(0.0, 1e7), min_size=n_rows, max_size=n_rows)))
    pair = np.array(draw(st.lists(st.integers(0, n_pairs - 1), min_size=n_rows, max_size=n_rows)), dtype=np.int64)
    old_price = np.array(draw(st.lists(st.floats(0.5, 1.1), min_size=n_pairs, max_size=n_pairs)))
    step = np.array(draw(st.lists(st.sampled_from([0.0, 1e-13, 1e-6, -0.01, 0.2]), min_size=n_pairs,
                                  max_size=n_pairs)))  # fmt: skip
    rows = np.array(sorted(draw(st.sets(st.integers(0, n_rows - 1), min_size=1))), dtype=np.int64)
    wallet = np.array(draw(st.lists(st.floats(-1e6, 1e7), min_size=40, max_size=40)))
    return {"rows": rows, "quantity": quantity, "pair": pair, "price": old_price * (1 + step),
            "value": quantity * old_price[pair], "account": accounts, "wallet": wallet}  # fmt: skip


@SETTINGS
@given(case=holdings())
def test_revalue_rows(case: dict[str, Any]) -> None:
    from perpstress.mechanisms import collateral as co

    runs = []
    for kernel in (co.revalue_rows, co._revalue_rows_py):
        value, wallet = case["value"].copy(), case["wallet"].copy()
        moved = np.full(case["rows"].size, -1, dtype=np.int64)
        n = kernel(case["rows"], case["quantity"], case["pair"], case["price"], value, case["account"], wallet, moved)
        runs.append((moved[:n], value, wallet))
    for got in runs[1:]:
        for a, b in zip(runs[0], got, strict=True):
            np.testing.assert_array_equal(a, b)
    # the NumPy expressions the kernel replaced (one row per account)
    rows, value, wallet = case["rows"], case["value"].copy(), case["wallet"].copy()
    new = case["quantity"][rows] * case["price"][case["pair"][rows]]
    delta = new - value[rows]
    moved = np.abs(delta) > 1e-9 * np.maximum(np.abs(value[rows]), 1.0)
    wallet[case["account"][rows]] += delta
    value[rows] = new
    np.testing.assert_array_equal(runs[0][0], case["account"][rows[moved]])
    np.testing.assert_array_equal(runs[0][1], value)
    np.testing.assert_array_equal(runs[0][2], wallet)


@SETTINGS
@given(
    a=st.lists(st.integers(0, 60), max_size=20),
    b=st.lists(st.integers(0, 60), max_size=20),
    sort_a=st.booleans(),
    sort_b=st.booleans(),
)
def test_sorted_union(a: list[int], b: list[int], sort_a: bool, sort_b: bool) -> None:
    """Fired positions and watched accounts, sorted and unique or not (repeats, any order): compiled and plain give
    ``np.unique`` of the concatenation, or -1 for an input that is not strictly increasing; the cascade's
    candidates are ``np.unique``'s either way."""
    x = np.array(sorted(set(a)) if sort_a else a, dtype=np.int64)
    y = np.array(sorted(set(b)) if sort_b else b, dtype=np.int64)
    expected = np.unique(np.concatenate([x, y]))
    increasing = all(np.all(np.diff(v) > 0) for v in (x, y))
    for kernel in (cascade.sorted_union, cascade._sorted_union_py):
        out = np.full(x.size + y.size, -7, dtype=np.int64)
        n = kernel(x, y, out)
        if increasing:
            assert n == expected.size
            assert list(out[:n]) == list(expected)
        else:
            assert n == -1
    got = cascade.candidates_of(x, y)
    assert got.dtype == np.int64
    assert list(got) == list(expected)


@SETTINGS
@given(
    marks=st.lists(st.sampled_from([1.0, 2.0, 3.0]) | st.floats(0.5, 5.0), min_size=1, max_size=60),
    recent=st.integers(1, 12),
    sign=st.sampled_from([1.0, -1.0]),
)
def test_window_extreme(marks: list[float], recent: int, sign: float) -> None:
    """Step by step, the compiled queue and its twin return the same extreme, and it is the largest (``sign = 1``)
    or smallest mark of the last ``recent`` steps (ties included: equal marks on the grid)."""
    from perpstress.mechanisms.agents import flow as fl

    n_l = recent + 1
    state = [(np.zeros(n_l), np.zeros(n_l, np.int64), np.zeros(2, np.int64)) for _ in range(2)]
    for step, x in enumerate(marks):
        got = []
        for kernel, (hist, queue, ends) in zip((fl.window_extreme, fl._window_extreme_py), state, strict=True):
            hist[step % n_l] = x
            got.append(kernel(hist, queue, ends, step, x, sign, recent))
        window = marks[max(0, step - recent + 1) : step + 1]
        assert got[0] == got[1] == (max(window) if sign > 0 else min(window))
    np.testing.assert_array_equal(state[0][1], state[1][1])
    np.testing.assert_array_equal(state[0][2], state[1][2])


@SETTINGS
@given(data=st.data(), n=st.integers(1, 40), n_m=st.integers(1, 4), descending=st.booleans())
def test_merge_runs(data: st.DataObject, n: int, n_m: int, descending: bool) -> None:
    """A run's sorted segments (edges on a coarse grid, so keys tie; cursors part-way) and new positions sorted by
    key within their market: the merge is, market by market, what the per-market ``np.searchsorted`` and
    ``np.insert`` of the trigger index's Python merge gave (the reference), compiled and plain alike."""
    grid = st.integers(0, 12).map(lambda x: 90.0 + 2.5 * x)
    market = np.array(data.draw(st.lists(st.integers(0, n_m - 1), min_size=n, max_size=n)), dtype=np.int32)
    edge = np.array(data.draw(st.lists(grid, min_size=n, max_size=n)))
    version = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    parts_e, parts_i, parts_v, start, end, cursor = [], [], [], [], [], []
    for _ in range(n_m):  # each market's old segment: sorted best first, some entries already fired
        old = sorted(data.draw(st.lists(grid, max_size=6)), reverse=descending)
        start.append(sum(len(p) for p in parts_e))
        parts_e.append(old)
        parts_i.append(data.draw(st.lists(st.integers(0, n - 1), min_size=len(old), max_size=len(old))))
        parts_v.append(data.draw(st.lists(st.integers(0, 3), min_size=len(old), max_size=len(old))))
        end.append(start[-1] + len(old))
        cursor.append(start[-1] + data.draw(st.integers(0, len(old))))
    edges = np.array([e for p in parts_e for e in p])
    ids = np.array([i for p in parts_i for i in p], dtype=np.int64)
    ver = np.array([v for p in parts_v for v in p], dtype=np.int64)
    new = np.array(data.draw(st.permutations(range(n)))[: data.draw(st.integers(0, n))], dtype=np.int64)
    key = -edge[new] if descending else edge[new]
    order = np.lexsort((key, market[new]))
    new, key = new[order], key[order]
    new_start = np.searchsorted(market[new], np.arange(n_m + 1)).astype(np.int64)
    size = sum(e - c for e, c in zip(end, cursor, strict=True)) + new.size
    runs = []
    for kernel in (tr._merge_runs, tr._merge_runs_py):
        out = (np.full(size, -1.0), np.full(size, -7, np.int64), np.full(size, -7, np.int64), np.zeros(n_m, np.int64))
        k = kernel(n_m, np.array(cursor, np.int64), np.array(end, np.int64), edges, ids, ver, new, key, new_start,
                   edge, version, descending, *out)  # fmt: skip
        runs.append((k, *out))
    assert runs[0][0] == runs[1][0] == size
    for a, b in zip(runs[0][1:], runs[1][1:], strict=True):
        assert a.tobytes() == b.tobytes()
    expected_e, expected_i, expected_v = [], [], []
    for m in range(n_m):
        old_e = edges[cursor[m] : end[m]]
        a, b = int(new_start[m]), int(new_start[m + 1])
        at = np.searchsorted(-old_e if descending else old_e, key[a:b], side="right")
        expected_e += list(np.insert(old_e, at, edge[new[a:b]]))
        expected_i += list(np.insert(ids[cursor[m] : end[m]], at, new[a:b]))
        expected_v += list(np.insert(ver[cursor[m] : end[m]], at, version[new[a:b]]))
        assert runs[0][4][m] == end[m] - cursor[m] + b - a
    assert list(runs[0][1]) == expected_e
    assert list(runs[0][2]) == expected_i
    assert list(runs[0][3]) == expected_v
    event(f"ties: {len(set(expected_e)) < len(expected_e)}")


@SETTINGS
@given(data=st.data(), n_rows=st.integers(0, 8), n_pairs=st.integers(1, 3))
def test_band_cushion_of(data: st.DataObject, n_rows: int, n_pairs: int) -> None:
    """Accounts with and without a holding row (some past the row table's end), floors finite, infinite or NaN
    (a pair not banded yet), values above and below them: compiled and plain, the NumPy expression
    ``CollateralHoldings.band_cushion`` used, bit for bit."""
    n_acc = 12
    holders = np.array(data.draw(st.permutations(range(n_acc - 2)))[:n_rows], dtype=np.int64)
    row_of = np.full(n_acc - 2, -1, dtype=np.int64)  # the last two accounts are past the table's end
    row_of[holders] = np.arange(n_rows)
    quantity = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, 250.0, 1e300]), min_size=n_rows,
                                           max_size=n_rows)))  # fmt: skip
    pair = np.array(data.draw(st.lists(st.integers(0, n_pairs - 1), min_size=n_rows, max_size=n_rows)), np.int64)
    banded = np.array(data.draw(st.lists(st.sampled_from([np.nan, 0.65, 1.0, 1e10, np.inf]), min_size=n_pairs,
                                         max_size=n_pairs)))  # fmt: skip
    value = np.array(data.draw(st.lists(st.sampled_from([0.0, -0.0, 100.0, 240.0, 1e308, np.nan]), min_size=n_rows,
                                        max_size=n_rows)))  # fmt: skip
    cushion = data.draw(st.sampled_from([0.0, 0.05, 0.5]))
    accounts = np.array(data.draw(st.lists(st.integers(0, n_acc - 1), max_size=10)), dtype=np.int64)
    outs = [np.full(accounts.size, SENTINEL) for _ in range(2)]
    with np.errstate(invalid="ignore", over="ignore"):
        col.band_cushion_of(accounts, row_of, quantity, banded, pair, value, cushion, outs[0])
        col._band_cushion_py(accounts, row_of, quantity, banded, pair, value, cushion, outs[1])
        expected = np.zeros(accounts.size)  # the NumPy expression it replaces
        inside = accounts < row_of.size
        rows = np.full(accounts.size, -1, dtype=np.int64)
        rows[inside] = row_of[accounts[inside]]
        has = rows >= 0
        r = rows[has]
        floor = quantity[r] * banded[pair[r]] * (1.0 - cushion)
        expected[has] = np.maximum(value[r] - np.nan_to_num(floor, nan=0.0), 0.0)
    assert outs[0].tobytes() == outs[1].tobytes() == expected.tobytes()
