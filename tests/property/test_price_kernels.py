"""The prices phase's kernels (:mod:`perpstress.mechanisms.price_kernels`) equal their plain-Python twins and the
rules they compile, bit for bit.

Three ways for each: the compiled kernel, its twin run with every compiled callee swapped for its twin
(:func:`plain`), and an independent reference: the rule functions of :mod:`perpstress.rules.index` and
:mod:`perpstress.rules.mark` with NumPy's own ``median``, ``sum`` and ``dot``, driven by the engines' NumPy code as
it was before it was compiled (:func:`index_by_the_rules`, :class:`MarkEngineByTheRules`). Inputs include empty
book sides (NaN quotes), sources that never quoted or went stale, external constituents, nothing traded, no peers
and every mark method.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from perpstress.calculator import available_presets, load_venue
from perpstress.config.venue import IndexMethod, MarkMethod
from perpstress.mechanisms import indices
from perpstress.mechanisms import price_kernels as pk
from perpstress.mechanisms import prices as pr
from perpstress.mechanisms.indices import INDEX_RULES, IndexEngine
from perpstress.mechanisms.prices import MARK_RULES, MarkEngine, MarkInputs
from perpstress.rules import index as index_rules
from perpstress.rules import mark as mark_rules
from perpstress.state.orderbook import OrderBooks

SETTINGS = settings(max_examples=100, deadline=None)

PLAIN = [
    (pk, "_fma", pk._fma_py),
    (pk, "insert_sorted", pk._insert_sorted_py),
    (pk, "median_sorted", pk._median_sorted_py),
    (pk, "_block_sum", pk._block_sum_py),
    (pk, "_pairwise_sum", pk._pairwise_sum_py),
    (pk, "numpy_sum", pk._numpy_sum_py),
    (pk, "dot_fma", pk._dot_fma_py),
    (pk, "weighted_mean", pk._weighted_mean_py),
    (pk, "weighted_median", pk._weighted_median_py),
    (pk, "median_of_three", pk._median_of_three_py),
    (pk, "hyperliquid_mark", pk._hyperliquid_mark_py),
    (pk, "index_step", pk._index_step_py),
    (pk, "mark_step", pk._mark_step_py),
    (indices, "index_step", pk._index_step_py),
    (pr, "mark_step", pk._mark_step_py),
]
"""Every compiled callee of the module's kernels, and the engines' kernels, with their twins."""


@contextmanager
def plain() -> Iterator[None]:
    """Twins see twins: every compiled callee (and the engines' kernels) swapped for its plain twin. Call compiled
    kernels only outside this block (one compiled inside it would bind a plain function)."""
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in PLAIN]
    try:
        for mod, name, twin in PLAIN:
            setattr(mod, name, twin)
        yield
    finally:
        for mod, name, kernel in saved:
            setattr(mod, name, kernel)


def same(a: Any, b: Any) -> bool:
    """Bit for bit, NaN equal to NaN."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


prices = st.floats(-3.0, 5.0).map(lambda x: float(10.0**x))
maybe_nan = st.one_of(st.just(float("nan")), prices)


# --- the small pieces --------------------------------------------------------------------------------------------
@SETTINGS
@given(values=st.lists(st.floats(-1e6, 1e6), max_size=12))
def test_insert_sorted_and_median_sorted(values: list[float]) -> None:
    fast, slow = np.empty(max(len(values), 1)), np.empty(max(len(values), 1))
    k = j = 0
    for x in values:
        k = pk.insert_sorted(fast, k, x)
        j = pk._insert_sorted_py(slow, j, x)
    assert k == j == len(values)
    assert same(fast[:k], sorted(values))
    assert same(slow[:k], sorted(values))
    med = pk.median_sorted(fast, k)
    assert same(med, pk._median_sorted_py(slow, k))
    if not values:
        assert np.isnan(med)
        return
    assert same(med, mark_rules.nanmedian(np.array(values)))
    assert same(med, np.median(values))


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 700), data=st.data())
def test_numpy_sum(n: int, data: st.DataObject) -> None:
    """np.sum's pairwise summation, spelt out: blocks below and above 8 and 128 terms, and the split halves."""
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.random(n) * 10.0 ** rng.uniform(-3.0, 5.0, n) * rng.choice([-1.0, 1.0], n)
    fast = pk.numpy_sum(a, n)
    with plain():
        slow = pk._numpy_sum_py(a, n)
        parts = pk._pairwise_sum_py(a, 0, n), pk._block_sum_py(a, 0, min(n, 128))
    assert same(fast, slow)
    assert same(fast, a.sum())
    assert same(parts[0], pk._pairwise_sum(a, 0, n))
    assert same(parts[1], pk._block_sum(a, 0, min(n, 128)))
    event("split" if n > 128 else "one block")


def exact_fma_dot(x: np.ndarray, y: np.ndarray) -> float:
    """The dot product as fused multiply-adds, each rounded once from the exact rational result."""
    s = 0.0
    for a, b in zip(x, y, strict=True):
        s = float(Fraction(float(a)) * Fraction(float(b)) + Fraction(s))
    return 0.0 + s


@SETTINGS
@given(n=st.integers(0, pk.FMA_DOT_MAX - 1), seed=st.integers(0, 2**32 - 1))
def test_dot_fma(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random(n) * 10.0 ** rng.uniform(-4.0, 5.0, n)
    y = rng.random(n) * 10.0 ** rng.uniform(-2.0, 2.0, n)
    fast = pk.dot_fma(x, y, n)
    with plain():
        slow = pk._dot_fma_py(x, y, n)
    assert same(fast, slow)
    assert same(fast, exact_fma_dot(x, y))
    if pk.fma_dot_is_numpys():
        assert same(fast, np.dot(x, y))


# --- the index ---------------------------------------------------------------------------------------------------
@st.composite
def live_sources(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Live sources as the index rules see them: positive prices near a centre with an outlier or two, and
    positive weights (equal, venue-like or arbitrary)."""
    k = draw(st.integers(1, pk.FMA_DOT_MAX - 1))
    centre = draw(prices)
    moves = draw(st.lists(st.floats(-0.01, 0.01) | st.sampled_from([-0.4, -0.05, 0.0, 0.05, 0.3]), min_size=k,
                          max_size=k))  # fmt: skip
    weights = draw(st.lists(st.sampled_from([1.0, 2.0, 3.0]) | st.floats(0.01, 10.0), min_size=k, max_size=k))
    return centre * (1.0 + np.array(moves)), np.array(weights)


@SETTINGS
@given(sources=live_sources(), band=st.sampled_from([0.01, 0.03]) | st.floats(0.0, 0.5))
def test_weighted_mean(sources: tuple[np.ndarray, np.ndarray], band: float) -> None:
    p, w = sources
    k = p.size
    fast = pk.weighted_mean(p.copy(), w.copy(), k, band, np.empty(k))
    with plain():
        slow = pk._weighted_mean_py(p.copy(), w.copy(), k, band, np.empty(k))
    assert same(fast, slow)
    if pk.fma_dot_is_numpys():
        assert same(fast, index_rules.weighted_mean_index(p, w, band))


@SETTINGS
@given(sources=live_sources(), halves=st.booleans())
def test_weighted_median(sources: tuple[np.ndarray, np.ndarray], halves: bool) -> None:
    p, w = sources
    if halves:  # equal weights on an even count: the exact half, where the rule takes the midpoint
        w = np.ones_like(w)
    k = p.size
    fast = pk.weighted_median(p.copy(), w.copy(), k, np.empty(k), np.empty(k))
    with plain():
        slow = pk._weighted_median_py(p.copy(), w.copy(), k, np.empty(k), np.empty(k))
    assert same(fast, slow)
    assert same(fast, index_rules.weighted_median_index(p, w))


@st.composite
def index_plans(draw: st.DrawFn) -> dict[str, Any]:
    """A world of perpetuals whose indices read spot books (rows ``n_perp..``) and external sources, with books
    that quote, go quiet (a NaN mid keeps the last one) or never quote, over several steps some far enough apart
    that a quiet book goes stale."""
    n_spot = draw(st.integers(1, 4))
    n_perp = draw(st.integers(1, 4))
    n = n_perp + n_spot
    plan = []
    for m in sorted(draw(st.sets(st.integers(0, n_perp - 1), min_size=1))):
        k = draw(st.integers(1, 12))
        books = draw(st.lists(st.integers(-1, n_spot - 1), min_size=k, max_size=k))
        if max(books) < 0:
            books[0] = 0
        books = np.array([b + n_perp if b >= 0 else -1 for b in books], dtype=np.int64)
        weights = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0]) | st.floats(0.1, 5.0), min_size=k,
                                         max_size=k)))  # fmt: skip
        method = draw(st.sampled_from(list(INDEX_RULES)))
        plan.append((m, INDEX_RULES[method], draw(st.sampled_from([0.01, 0.03, 0.5])), books, weights,
                     draw(st.sampled_from([2000.0, 300_000.0])), pk.INDEX_CODE[method]))  # fmt: skip
    centre = draw(prices)
    steps = []
    ts = 1_700_000_000_000
    for _ in range(draw(st.integers(1, 6))):
        ts += draw(st.sampled_from([1000, 1000, 5000]))
        moves = draw(st.lists(st.floats(-0.06, 0.06), min_size=n, max_size=n))
        mid = centre * (1 + np.array(moves))
        quiet = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        mid[quiet] = np.nan
        fundamental = centre * (1 + np.array(draw(st.lists(st.floats(-0.02, 0.02), min_size=n, max_size=n))))
        steps.append((ts, fundamental, mid))
    return {"n": n, "plan": plan, "steps": steps}


class PlanEngine(IndexEngine):
    """An :class:`IndexEngine` over a drawn plan (the constructor's venue lookups left out)."""

    def __init__(self, d: dict[str, Any]) -> None:
        plan = d["plan"]
        self.n = d["n"]
        self._plan = [p[:6] for p in plan]
        self._endogenous = [p[0] for p in plan]
        self._markets = np.array(self._endogenous, dtype=np.int64)
        self._method = np.array([p[6] for p in plan], dtype=np.int64)
        self._band = np.array([p[2] for p in plan])
        self._stale_ms = np.array([p[5] for p in plan])
        self._start = np.cumsum([0] + [p[3].size for p in plan]).astype(np.int64)
        self._book = np.concatenate([p[3] for p in plan])
        self._weight = np.concatenate([p[4] for p in plan])
        self._fallback = np.zeros(len(plan), dtype=bool)
        width = 2 * max(p[3].size for p in plan)
        self._scratch = (np.empty(width), np.empty(width))
        self._fma_dot = pk.fma_dot_is_numpys()
        self.last_mid = np.full(self.n, np.nan)
        self.last_mid_ms = np.full(self.n, -np.inf)
        self.index = np.full(self.n, np.nan)


def index_by_the_rules(engine: PlanEngine, ts_ms: int, fundamental: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """:meth:`IndexEngine.step` as it was before it was compiled: NumPy and the rule functions, market by market."""
    live = np.isfinite(mid)
    engine.last_mid[live] = mid[live]
    engine.last_mid_ms[live] = ts_ms
    index = fundamental.astype(np.float64).copy()
    for m, rule, band, books, weights, stale_ms in engine._plan:
        is_book = books >= 0
        b = np.where(is_book, books, 0)
        p = np.where(is_book, engine.last_mid[b], fundamental[m])
        fresh = ~is_book | (ts_ms - engine.last_mid_ms[b] <= stale_ms)
        w = np.where(fresh, weights, 0.0)
        value = rule(p, w, band)
        index[m] = (
            value if np.isfinite(value) else (engine.index[m] if np.isfinite(engine.index[m]) else fundamental[m])
        )
    engine.index = index
    return index


@SETTINGS
@given(d=index_plans(), fma_dot=st.booleans())
def test_index_step(d: dict[str, Any], fma_dot: bool) -> None:
    fast, slow, ref = PlanEngine(d), PlanEngine(d), PlanEngine(d)
    fast._fma_dot = slow._fma_dot = fma_dot and pk.fma_dot_is_numpys()  # without it: the rule function
    for ts, fundamental, mid in d["steps"]:
        a = fast.step(ts, fundamental, mid)
        with plain():
            b = slow.step(ts, fundamental, mid)
        c = index_by_the_rules(ref, ts, fundamental, mid)
        assert same(a, b)
        assert same(a, c)
        for e in (fast, slow):
            assert same(e.last_mid, ref.last_mid)
            assert same(e.last_mid_ms, ref.last_mid_ms)
    event("a fallback to the rule" if fast._fallback.any() else "all in the kernel")


def test_index_step_direct_call_matches_its_twin() -> None:
    """The kernel and its twin called directly, as the engine calls them (one market of each method)."""
    books, weights = np.array([3, -1, 4]), np.array([1.0, 2.0, 1.0])
    plan = [
        (m, INDEX_RULES[method], 0.03, books, weights, 3e5, pk.INDEX_CODE[method])
        for m, method in enumerate(INDEX_RULES)
    ]
    d = {"n": 5, "plan": plan}
    mid = np.array([np.nan, np.nan, np.nan, 101.0, 99.0])
    outs = []
    for twin in (False, True):
        e = PlanEngine(d)
        out, fallback = np.empty(5), np.zeros(3, dtype=bool)
        args = (1000, np.full(5, 100.0), mid, e.last_mid, e.last_mid_ms, e.index, e._markets, e._method, e._band,
                e._stale_ms, e._start, e._book, e._weight, True, out, fallback, *e._scratch)  # fmt: skip
        if twin:
            with plain():
                pk._index_step_py(*args)
        else:
            pk.index_step(*args)
        outs.append(out)
    assert same(outs[0], outs[1])
    assert outs[0][1] == 100.0
    assert outs[0][2] == 100.0


def test_a_venue_engine_matches_the_rules() -> None:
    """The engine built from real venues (Binance's weighted mean, Hyperliquid's weighted median, dYdX's median)
    over a run of books, against the rules."""
    venues = [load_venue(v) for v in ("binance", "okx", "hyperliquid", "dydx")]
    n_perp = len(venues)
    spot = {(0, "BTC"): n_perp, (1, "BTC"): n_perp + 1}
    n = n_perp + 2
    perpetual = np.arange(n) < n_perp
    engine = IndexEngine(venues, [0, 1, 2, 3, 0, 1], ["BTC"] * n, perpetual, spot, 1000)
    ref = PlanEngine({"n": n, "plan": [(*p, 0) for p in engine._plan]})
    assert len(set(engine._method)) == 3  # every method reads a book
    rng = np.random.default_rng(5)
    for t in range(700):
        fundamental = np.full(n, 100.0 + t * 0.01)
        mid = 100.0 + rng.normal(0.0, 2.0, n)
        mid[rng.random(n) < 0.3] = np.nan
        if 100 < t < 500:
            mid[n_perp:] = np.nan  # the books go quiet long enough to go stale (300 s)
        ts = 1_700_000_000_000 + t * 1000
        assert same(engine.step(ts, fundamental, mid), index_by_the_rules(ref, ts, fundamental, mid))


# --- the marks ---------------------------------------------------------------------------------------------------
@SETTINGS
@given(quotes=st.lists(maybe_nan, min_size=3, max_size=3), more=st.lists(maybe_nan, min_size=4, max_size=4))
def test_median_of_three_and_hyperliquid_mark(quotes: list[float], more: list[float]) -> None:
    a, b, c = quotes
    v = np.empty(4)
    fast = pk.median_of_three(a, b, c, v)
    assert same(fast, pk._median_of_three_py(a, b, c, v))
    assert same(fast, mark_rules.median_of_three(a, b, c))  # the scalar path
    assert same(fast, mark_rules.median_of_three(np.array([a, 1.0]), np.array([b, 2.0]), np.array([c, 3.0]))[0])
    oracle, ema, peer, ema_book = more
    ema = 0.0 if np.isnan(ema) else ema * 1e-3
    fast = pk.hyperliquid_mark(oracle, ema, a, b, c, peer, ema_book, v)
    with plain():
        slow = pk._hyperliquid_mark_py(oracle, ema, a, b, c, peer, ema_book, v)
    assert same(fast, slow)
    assert same(fast, mark_rules.hyperliquid_mark(oracle, ema, a, b, c, peer, ema_book))


FAIR_PRICE_VENUE = (
    lambda v: v.model_copy(update={"mark": v.mark.model_copy(update={"method": MarkMethod.FAIR_PRICE})})
)(load_venue("binance"))
MARK_VENUES = [load_venue(v) for v in available_presets()] + [FAIR_PRICE_VENUE]
assert {v.mark.method for v in MARK_VENUES} == set(MarkMethod)


class MarkEngineByTheRules(MarkEngine):
    """:meth:`MarkEngine.step` as it was before it was compiled: NumPy over all markets and each method's
    :class:`perpstress.mechanisms.prices.MarkRule` over its due markets."""

    def step(self, step: int, index: Any, best_bid: Any, best_ask: Any, last_trade: Any, funding_rate: Any,
             seconds_to_funding: Any, peer_mid: Any, sample: bool = True) -> Any:  # fmt: skip
        traded = ~np.isnan(last_trade)
        self.last_trade[traded] = last_trade[traded]
        mid = 0.5 * (best_bid + best_ask)
        basis = np.where(np.isnan(mid), 0.0, mid - index)
        take = (step % self.sample_every == 0) & sample
        rows = np.flatnonzero(take)
        if rows.size:
            slot = self._ring_i[rows]
            full = self._ring_n[rows] >= self.window[rows]
            self._ring_sum[rows] -= np.where(full, self._ring[rows, slot], 0.0)
            self._ring[rows, slot] = basis[rows]
            self._ring_sum[rows] += basis[rows]
            self._ring_i[rows] = (slot + 1) % self.window[rows]
            self._ring_n[rows] = np.minimum(self._ring_n[rows] + 1, self.window[rows])
        ma = np.where(self._ring_n > 0, self._ring_sum / np.maximum(self._ring_n, 1), 0.0)
        book_med = mark_rules.median_of_three(best_bid, best_ask, self.last_trade)
        num, den = mark_rules.ema_update(self._ema_basis[:, 0], self._ema_basis[:, 1], basis, self.step_s, self.tau)
        self._ema_basis[:, 0], self._ema_basis[:, 1] = num, den
        sample_book = np.where(np.isnan(book_med), index, book_med)
        bnum, bden = mark_rules.ema_update(self._ema_book[:, 0], self._ema_book[:, 1], sample_book, self.step_s, 30.0)
        self._ema_book[:, 0], self._ema_book[:, 1] = bnum, bden
        due = (step % self.update_every == 0) | np.isnan(self.mark)
        new = self.mark.copy()
        p1 = mark_rules.funding_basis_price(index, funding_rate, seconds_to_funding, self.funding_interval_s)
        p2 = index + ma
        last = np.where(np.isnan(self.last_trade), index, self.last_trade)
        inputs = MarkInputs(index, p1, p2, last, best_bid, best_ask, self.last_trade, peer_mid, (num, den),
                            (bnum, bden))  # fmt: skip
        code = np.array(self.method, dtype=object)
        for method in dict.fromkeys(self.method):
            rows = np.flatnonzero(code == method)
            sel = rows[due[rows]]
            if sel.size:
                new[sel] = MARK_RULES[method]().mark(sel, inputs)
        changed = due & (new != self.mark)
        self.previous[changed] = self.mark[changed]
        first = np.isnan(self.previous)
        self.previous[first] = new[first]
        self.mark = new
        return self.mark


MARK_STATE = ("mark", "previous", "last_trade", "_ring", "_ring_n", "_ring_i", "_ring_sum", "_ema_basis", "_ema_book")


@st.composite
def mark_runs(draw: st.DrawFn) -> dict[str, Any]:
    """Markets of every venue's method (with real update and sampling cadences), and steps of index, quotes (an
    empty side, an empty book), trades, funding and peers' mids; some steps repeated without sampling, as the
    cascade re-marks between liquidation rounds."""
    n = draw(st.integers(1, 8))
    venue_of = draw(st.lists(st.integers(0, len(MARK_VENUES) - 1), min_size=n, max_size=n))
    centre = draw(prices)
    steps = []
    step = 0
    for _ in range(draw(st.integers(1, 40))):
        repeat = steps and draw(st.integers(0, 4)) == 0
        if not repeat:
            step += draw(st.sampled_from([1, 1, 1, 2, 7]))
        index = centre * (1 + np.array(draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))))
        half = centre * np.array(draw(st.lists(st.floats(1e-5, 2e-3), min_size=n, max_size=n)))
        skew = centre * np.array(draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n)))
        bid, ask = index + skew - half, index + skew + half
        bid[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = np.nan
        ask[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = np.nan
        last = index * (1 + np.array(draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))))
        last[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = np.nan
        peer = index * (1 + np.array(draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))))
        peer[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = np.nan
        rate = np.array(draw(st.lists(st.floats(-0.003, 0.003), min_size=n, max_size=n)))
        to_funding = np.array(draw(st.lists(st.floats(1.0, 28_800.0), min_size=n, max_size=n)))
        steps.append((step, index, bid, ask, last, rate, to_funding, peer, not repeat))
    return {"venue_of": venue_of, "steps": steps, "step_s": draw(st.sampled_from([1.0, 0.5]))}


@SETTINGS
@given(d=mark_runs())
def test_mark_step(d: dict[str, Any]) -> None:
    engines = [cls(MARK_VENUES, d["venue_of"], d["step_s"]) for cls in (MarkEngine, MarkEngine, MarkEngineByTheRules)]
    fast, slow, ref = engines
    for step, *inputs, sample in d["steps"]:
        fast.step(step, *inputs, sample=sample)
        with plain():
            slow.step(step, *inputs, sample=sample)
        ref.step(step, *inputs, sample=sample)
        for name in MARK_STATE:
            a, b, c = (getattr(e, name) for e in engines)
            assert same(a, b), name
            assert same(a, c), name
    event("an update held the mark" if any(s[0] % 3 for s in d["steps"]) else "every step an update")


def test_mark_step_direct_call_matches_its_twin() -> None:
    """The kernel and its twin called directly on one step of every method."""
    n = len(MARK_VENUES)
    runs = []
    for twin in (False, True):
        e = MarkEngine(MARK_VENUES, list(range(n)), 1.0)
        x = np.full(n, 100.0)
        args = (30, True, 1.0, x, x - 0.1, x + 0.1, np.full(n, np.nan), np.full(n, 1e-4), np.full(n, 600.0), x + 0.2,
                e._code, e.sample_every, e.update_every, e.window, e.funding_interval_s, e._decay_basis,
                e._decay_book, e._ring, e._ring_n, e._ring_i, e._ring_sum, e._ema_basis, e._ema_book, e.last_trade,
                e.mark, e.previous)  # fmt: skip
        if twin:
            with plain():
                pk._mark_step_py(*args)
        else:
            pk.mark_step(*args)
        runs.append(e.mark.copy())
    assert same(runs[0], runs[1])
    assert np.isfinite(runs[0]).all()


# --- quotes, peers, publication ----------------------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), n=st.integers(1, 5))
def test_book_quotes_peer_medians_and_publish_marks(data: st.DataObject, n: int) -> None:
    books = OrderBooks(n, 4, np.array(data.draw(st.lists(st.sampled_from([0.01, 0.5, 1e-5]), min_size=n,
                                                          max_size=n))), np.ones(n))  # fmt: skip
    for m in range(n):
        for side in (0, 1):
            k = data.draw(st.integers(0, 3))
            books.count[m, side] = k
            books.price[m, side, :k] = 1000 + (1 if side else -1) * np.arange(1, k + 1) * data.draw(st.integers(1, 9))
    outs = [(np.empty(n), np.empty(n), np.empty(n)) for _ in range(2)]
    pk.book_quotes(books.price, books.count, books.tick_size, *outs[0])
    pk._book_quotes_py(books.price, books.count, books.tick_size, *outs[1])
    bid, ask = books.best_bid_ask()
    for fast, slow, ref in zip(outs[0], outs[1], (bid, ask, 0.5 * (bid + ask)), strict=True):
        assert same(fast, slow)
        assert same(fast, ref)
    mid = outs[0][2]

    peers = [(m, np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1))), dtype=np.int64))
             for m in sorted(data.draw(st.sets(st.integers(0, n - 1))))]  # fmt: skip
    rows = np.array([m for m, _ in peers], dtype=np.int64)
    start = np.cumsum([0] + [s.size for _, s in peers]).astype(np.int64)
    members = np.concatenate([np.zeros(0, np.int64)] + [s for _, s in peers])
    ref = np.full(n, np.nan)
    for m, s in peers:
        ref[m] = mark_rules.nanmedian(mid[s])
    fast, slow = np.empty(n), np.empty(n)
    pk.peer_medians(mid, rows, start, members, fast, np.empty(n))
    pk._peer_medians_py(mid, rows, start, members, slow, np.empty(n))
    assert same(fast, ref)
    assert same(slow, ref)

    n_perp = data.draw(st.integers(0, n))
    marks = np.array(data.draw(st.lists(maybe_nan, min_size=n, max_size=n)))
    index = np.array(data.draw(st.lists(prices, min_size=n, max_size=n)))
    last = np.array(data.draw(st.lists(maybe_nan, min_size=n, max_size=n)))
    before = np.array(data.draw(st.lists(prices, min_size=n, max_size=n)))
    expected = np.where(np.isnan(marks), index, marks)
    spot = slice(n_perp, None)
    expected[spot] = np.where(np.isnan(mid[spot]), np.where(np.isnan(last[spot]), before[spot], last[spot]), mid[spot])
    fast, slow = np.empty(n), np.empty(n)
    pk.publish_marks(marks, index, mid, last, before, n_perp, fast)
    pk._publish_marks_py(marks, index, mid, last, before, n_perp, slow)
    assert same(fast, expected)
    assert same(slow, expected)


@pytest.mark.parametrize("k", [1, 5, pk.FMA_DOT_MAX - 1])
def test_the_weighted_mean_falls_back_to_the_rule_where_the_kernel_cannot_match_numpy(k: int) -> None:
    """With the one-by-one FMA dot product not NumPy's (or 16 live sources), the engine asks the rule."""
    plan = [(0, INDEX_RULES[IndexMethod.WEIGHTED_MEAN], 0.03, np.full(k, 1), np.ones(k), 300_000.0, 0)]
    e = PlanEngine({"n": 2, "plan": plan})
    e._fma_dot = False
    out = e.step(1000, np.array([100.0, 100.0]), np.array([np.nan, 101.0]))
    assert e._fallback.all()
    assert out[0] == index_rules.weighted_mean_index(np.full(k, 101.0), np.ones(k), 0.03)
