"""The crowd flow's kernels (:mod:`perpstress.mechanisms.agents.flow`), compiled and plain, bit for bit, and against
independent references: the measures against the peak, trough and lagged mark found by brute force over the whole
path so far; the orders against a per-order loop over the venues' own tier tables
(:func:`perpstress.rules.margin.tier_index`)."""

from __future__ import annotations

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from perpstress.calculator import available_presets, load_venue
from perpstress.mechanisms.agents import flow as fl
from perpstress.rules.margin import TierTable, tier_index
from perpstress.state.portfolio import Markets

REAL_TABLES = [p.tier_table() for v in available_presets() for p in load_venue(v).perpetuals.values()]


@st.composite
def paths(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """Marks of 1-3 markets over up to 120 steps (a walk with jumps, repeats and ties), a recent window and a lag."""
    n_m = draw(st.integers(1, 3))
    steps = draw(st.integers(1, 120))
    start = draw(st.lists(st.floats(1e-4, 2e5), min_size=n_m, max_size=n_m))
    moves = draw(st.lists(st.sampled_from([0.0, 0.0, 0.001, -0.001, 0.02, -0.02, -0.1, 0.05]),
                          min_size=steps * n_m, max_size=steps * n_m))  # fmt: skip
    log = np.cumsum(np.array(moves).reshape(steps, n_m), axis=0)
    marks = np.array(start) * np.exp(log)
    return marks, draw(st.integers(1, 40)), draw(st.integers(1, 40))


RULES = st.tuples(st.floats(0.001, 0.2), st.sampled_from([0.0, 0.5, 3.0]), st.floats(1.0, 5.0), st.floats(0.0, 0.1))
"""One rule's (threshold, rate_per_s, max_multiple, after_fall); a rate of 0 is an absent rule."""


def run_signals(compiled: bool, marks: np.ndarray, recent: int, lag: int, markets: np.ndarray, rules: np.ndarray,
                multiple: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, list[bool]]:  # fmt: skip
    """Every step's measures (steps, 4, flow markets), rates (steps, 3, flow markets) and "any rate" from the kernel
    (or its twin) fed the path step by step."""
    n = markets.size
    n_l = max(recent, lag) + 1
    hist, peak_q, trough_q = np.zeros((n, n_l)), np.zeros((n, n_l), np.int64), np.zeros((n, n_l), np.int64)
    peak_ends, trough_ends, measures = np.zeros((n, 2), np.int64), np.zeros((n, 2), np.int64), np.zeros((4, n))
    rates = np.zeros((3, n))
    out_m, out_r, live = [], [], []
    for step in range(marks.shape[0]):
        args = (step, marks[step], markets, hist, peak_q, peak_ends, trough_q, trough_ends, recent, lag, rules,
                multiple, scale, measures, rates)  # fmt: skip
        live.append(bool(fl.flow_signals(*args) if compiled else fl._flow_signals_py(*args)))
        out_m.append(measures.copy())
        out_r.append(rates.copy())
    return np.array(out_m), np.array(out_r), live


def brute_force(marks: np.ndarray, recent: int, lag: int, markets: np.ndarray, rules: np.ndarray,
                multiple: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The measures from the window's marks by max and min, and the rates by the config's definition."""
    out = np.zeros((marks.shape[0], 4, markets.size))
    rates = np.zeros((marks.shape[0], 3, markets.size))
    for step in range(marks.shape[0]):
        for j, m in enumerate(markets):
            window = [float(marks[s, m]) for s in range(max(0, step - recent + 1), step + 1)]
            x, peak, trough = float(marks[step, m]), max(window), min(window)
            lagged = float(marks[max(step - lag, 0), m])
            fall = 1.0 - trough / peak
            out[step, :, j] = (1.0 - x / peak, 1.0 - x / lagged, x / trough - 1.0 if fall > 0 else 0.0, fall)
            for kind in range(3):
                threshold, rate, most, after_fall = (float(v) for v in rules[kind])
                measure = float(out[step, kind, j])
                on = rate > 0 and measure >= threshold and (kind != fl.SQUEEZE or fall >= after_fall)
                if on:
                    rates[step, kind, j] = rate * min(measure / threshold, most) * float(multiple[j]) * scale
    return out, rates


@settings(max_examples=150, deadline=None)
@given(case=paths(), pick=st.integers(0, 7), rules=st.lists(RULES, min_size=3, max_size=3),
       multiple=st.floats(0.0, 3.0), scale=st.sampled_from([0.05, 1.0]))  # fmt: skip
def test_flow_signals(case: tuple[np.ndarray, int, int], pick: int, rules: list[tuple[float, ...]], multiple: float,
                      scale: float) -> None:  # fmt: skip
    """Compiled, plain and brute force agree exactly at every step (the monotone queues find the window's peak and
    trough, the ring buffer the lagged mark, the rates follow the rules), for any subset of markets in any order."""
    marks, recent, lag = case
    n_m = marks.shape[1]
    markets = np.array([m for m in range(n_m) if (pick >> m) & 1][::-1] or [n_m - 1], dtype=np.int64)
    table = np.array(rules)
    mult = np.full(markets.size, multiple)
    fast = run_signals(True, marks, recent, lag, markets, table, mult, scale)
    plain = run_signals(False, marks, recent, lag, markets, table, mult, scale)
    ref_measures, ref_rates = brute_force(marks, recent, lag, markets, table, mult, scale)
    for a, b in zip(fast, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast[0], ref_measures)
    np.testing.assert_array_equal(fast[1], ref_rates)
    assert fast[2] == [bool((r > 0).any()) for r in ref_rates]
    event(f"window shorter than the path: {recent < marks.shape[0]}")
    event(f"a squeeze measure: {bool((ref_measures[:, 2] > 0).any())}")
    event(f"a rate on: {any(fast[2])}")


def reference_orders(counts: np.ndarray, factors: np.ndarray, markets: np.ndarray, mark: np.ndarray,
                     lot: np.ndarray, tables: list[TierTable], median: np.ndarray,
                     lev_median: float) -> list[tuple[int, int, int, float]]:  # fmt: skip
    """One order at a time: (flow market, kind, signed lots, leverage), the tier from the venue's own table (its last
    tier open-ended, as the engine pads it)."""
    out, k = [], 0
    for kind in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            m = int(markets[j])
            for _ in range(int(counts[kind, j])):
                usd = float(median[j]) * float(factors[k, 0])
                n = max(1, int(usd / float(mark[m]) / float(lot[m])))
                notional = n * float(lot[m]) * float(mark[m])
                table = tables[m]
                cap = float(table.max_leverage[min(int(tier_index(table, notional)), table.tiers - 1)])
                lev = max(min(lev_median * float(factors[k, 1]), cap), 1.0)
                out.append((j, kind, -n if kind == fl.MOMENTUM else n, lev))
                k += 1
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_plan_orders(data: st.DataObject) -> None:
    """Compiled, plain and the per-order reference write the same orders: sizes, sides and leverage capped by the
    tier at the order's notional (and never below 1)."""
    n_m = data.draw(st.integers(1, 3))
    tables = data.draw(st.lists(st.sampled_from(REAL_TABLES), min_size=n_m, max_size=n_m))
    lot = np.array(data.draw(st.lists(st.sampled_from([1e-3, 0.01, 1.0, 10.0]), min_size=n_m, max_size=n_m)))
    markets_ = Markets.from_tables([0] * n_m, list(lot), [1e-6] * n_m, tables)
    mark = np.array(data.draw(st.lists(st.floats(0.01, 2e5), min_size=n_m, max_size=n_m)))
    flow_markets = np.array(data.draw(st.lists(st.integers(0, n_m - 1), min_size=1, max_size=3, unique=True)))
    counts = np.array(data.draw(st.lists(st.integers(0, 4), min_size=3 * flow_markets.size,
                                         max_size=3 * flow_markets.size)), dtype=np.int64).reshape(3, -1)  # fmt: skip
    total = int(counts.sum())
    z = np.array(data.draw(st.lists(st.floats(-4, 4), min_size=2 * total, max_size=2 * total))).reshape(total, 2)
    median = np.array(data.draw(st.lists(st.floats(10.0, 1e8), min_size=flow_markets.size,
                                         max_size=flow_markets.size)))  # fmt: skip
    sigma, lev_median, lev_sigma = data.draw(st.floats(0, 3)), data.draw(st.floats(1, 200)), data.draw(st.floats(0, 2))
    outs = []
    factors = np.exp(z * np.array([sigma, lev_sigma]))  # as the phase computes them
    for compiled in (True, False):
        o = (np.zeros(total, np.int64), np.zeros(total, np.int64), np.zeros(total, np.int64), np.zeros(total))
        args = (counts, factors, flow_markets, mark, lot, markets_.tier_cap, markets_.tier_max_leverage, median,
                lev_median, *o)  # fmt: skip
        assert (fl.plan_orders(*args) if compiled else fl._plan_orders_py(*args)) == total
        outs.append(o)
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    ref = reference_orders(counts, factors, flow_markets, mark, lot, tables, median, lev_median)
    got = list(zip(*(x.tolist() for x in outs[0]), strict=True))
    assert got == ref
    capped = [r for r, g in zip(ref, got, strict=True) if g[3] < lev_median * 0.999]
    event(f"an order capped: {bool(capped)}")
