"""The noise takers' kernels (:mod:`perpstress.mechanisms.agents.takers`) equal their plain-Python twins and the
per-order loop through :class:`perpstress.mechanisms.execution.BookExecution` that the phase ran before it was
compiled, bit for bit: the same draws from the stream, the same fills, positions, wallets, fees, open interest,
last trades and volumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from kit import Kit, crowded_long_world
from perpstress.mechanisms import accounting as ac
from perpstress.mechanisms import price_kernels as pk
from perpstress.mechanisms.agents import takers as tk
from perpstress.state import orderbook as ob

SETTINGS = settings(max_examples=40, deadline=None)

PLAIN = [
    (tk, "_match", ob._match_py),
    (tk, "settle_maker_fills", ac._settle_maker_fills_py),
    (tk, "numpy_sum", pk._numpy_sum_py),
    (tk, "takers_step", tk._takers_step_py),
    (tk, "draw_step", tk._draw_step_py),
    (pk, "_pairwise_sum", pk._pairwise_sum_py),
    (pk, "_block_sum", pk._block_sum_py),
]


@contextmanager
def plain() -> Iterator[None]:
    """The phase with every compiled kernel and callee swapped for its plain twin."""
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in PLAIN]
    try:
        for mod, name, twin in PLAIN:
            setattr(mod, name, twin)
        yield
    finally:
        for mod, name, kernel in saved:
            setattr(mod, name, kernel)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lam=st.lists(st.sampled_from([0.0, 0.5, 2.0, 9.99]) | st.floats(0.0, 9.99),
                                                    max_size=30))  # fmt: skip
def test_draw_step(seed: int, lam: list[float]) -> None:
    """numba's generator draws NumPy's numbers, in the same order, and leaves the stream where NumPy would."""
    means = np.array(lam, dtype=np.float64)
    fast, slow, ref = (np.random.default_rng(seed) for _ in range(3))
    a = tk.draw_step(fast, means)
    b = tk._draw_step_py(slow, means)
    counts = ref.poisson(means, size=means.size)  # the draws as the phase made them: counts, then order by order
    orders = [(ref.standard_normal(), ref.random()) for _ in range(int(counts.sum()))]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[0], counts)
    np.testing.assert_array_equal(a[1], [o[0] for o in orders])
    np.testing.assert_array_equal(a[2], [o[1] for o in orders])
    assert fast.bit_generator.state == slow.bit_generator.state == ref.bit_generator.state
    event("orders" if orders else "no order")


def orders_one_by_one(kit: Kit, rng: np.random.Generator, rates: np.ndarray, step_s: float) -> None:
    """The phase's step as it was before it was compiled: the draws interleaved with the orders, each through
    :meth:`BookExecution.taker_trade`."""
    w = kit.world
    cfg = w.scenario.takers
    flow = [cfg.for_market(k) for k in w.market_keys]
    w.last_trade[:] = np.nan
    counts = rng.poisson(rates * step_s, size=w.markets.n)
    for m in np.flatnonzero(counts):
        _, median_usd, buy_bias, sell_bias = flow[m]
        for _ in range(int(counts[m])):
            usd = median_usd * float(np.exp(cfg.sigma * rng.standard_normal()))
            p_sell = 0.5 + sell_bias * (1.0 - w.appetite) - buy_bias
            side = -1 if rng.random() < p_sell else 1
            mark = float(w.markets.mark[m])
            lots = side * max(1, int(usd / mark / w.markets.lot_size[m]))
            kit.execution.taker_trade(int(w.noise_ids[m]), int(m), lots, mark * (1 + side * 0.02))


def state(kit: Kit) -> dict[str, np.ndarray]:
    w = kit.world
    b = w.books
    return {
        "size_lots": w.positions.size_lots, "entry_price": w.positions.entry_price, "wallet": w.accounts.wallet,
        "long_lots": kit.accounting.long_lots, "maker_filled": w.maker_filled, "fee_pool": w.ledger.fee_pool,
        "last_trade": w.last_trade, "volume_usd": w.volume_usd, "price": b.price, "lots": b.lots, "owner": b.owner,
        "count": b.count,
    }  # fmt: skip


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    rate=st.sampled_from([0.5, 3.0, 20.0]),
    appetite=st.sampled_from([1.0, 0.4]),
    steps=st.integers(1, 6),
    data=st.data(),
)
def test_takers_step(seed: int, rate: float, appetite: float, steps: int, data: st.DataObject) -> None:
    """The phase (compiled; its twins) against the per-order loop on the kit's World: its makers' ladders, long
    crowd and noise accounts, orders from one a step to dozens (the compiled draws), calm and after the news."""
    kits = [crowded_long_world() for _ in range(3)]
    held = data.draw(st.sampled_from([0, 7, -7]))  # the noise accounts start flat, long or short
    for kit in kits:
        kit.quote()
        w = kit.world
        w.appetite = appetite
        w.positions.size_lots[w.noise_ids] = held
        w.positions.entry_price[w.noise_ids] = w.markets.mark[w.positions.market[w.noise_ids]] if held else 0.0
    phases = [tk.TakersPhase(k.world, k.execution, np.random.default_rng(seed)) for k in kits[:2]]
    ref_rng = np.random.default_rng(seed)
    for phase in phases:
        phase.rates[:] = rate
    orders = 0
    for step in range(steps):
        clock = kits[0].clock(step)
        phases[0](clock)
        with plain():
            phases[1](clock)
        before = kits[2].world.volume_usd.sum()
        orders_one_by_one(kits[2], ref_rng, np.full(kits[2].world.markets.n, rate), clock.step_s)
        orders += int(kits[2].world.volume_usd.sum() > before)
        ref = state(kits[2])
        for k in kits[:2]:
            for name, value in state(k).items():
                np.testing.assert_array_equal(value, ref[name], err_msg=name)
    assert phases[0].rng.bit_generator.state == ref_rng.bit_generator.state
    event("some steps traded" if orders else "nothing traded")


def test_takers_step_direct_call_matches_its_twin() -> None:
    """The kernel and its twin called directly on one step's orders."""
    results = []
    for twin in (False, True):
        kit = crowded_long_world()
        kit.quote()
        w = kit.world
        phase = tk.TakersPhase(w, kit.execution, np.random.default_rng(1))
        n = w.markets.n
        counts = np.full(n, 3, dtype=np.int64)
        rng = np.random.default_rng(2)
        size_factor, u = np.exp(rng.standard_normal(3 * n)), rng.random(3 * n)
        args: tuple[Any, ...] = (
            counts, size_factor, u, phase._median_usd, phase._buy_bias, phase._sell_bias, 1.0, w.markets.mark,
            w.markets.lot_size, w.markets.tick_size, w.markets.venue, w.noise_ids, w.taker_fee, w.maker_fee,
            w.books.price, w.books.lots, w.books.owner, w.books.count, *phase._fills, w.positions.market,
            w.positions.size_lots, w.positions.entry_price, w.accounts.wallet, kit.accounting.long_lots,
            w.maker_filled, w.ledger.fee_pool, w.last_trade, w.volume_usd,
        )  # fmt: skip
        if twin:
            with plain():
                tk._takers_step_py(*args)
        else:
            tk.takers_step(*args)
        results.append({k: v.copy() for k, v in state(kit).items()})
    for name, value in results[0].items():
        np.testing.assert_array_equal(value, results[1][name], err_msg=name)
    assert (results[0]["volume_usd"] > 0).all()  # every market traded


def test_recorded_trades_go_order_by_order_with_the_same_outcome() -> None:
    """With ``engine.record_trades`` the orders go through the execution one by one and the fills are kept; the
    outcome is the compiled pass's."""
    kits = [crowded_long_world() for _ in range(2)]
    for kit in kits:
        kit.quote()
    recorded = kits[1].world.scenario.model_copy(
        update={"engine": kits[1].world.scenario.engine.model_copy(update={"record_trades": True})}
    )
    kits[1].world.scenario = recorded
    for kit in kits:
        phase = tk.TakersPhase(kit.world, kit.execution, np.random.default_rng(9))
        phase.rates[:] = 5.0
        for step in range(3):
            phase(kit.clock(step))
    assert len(kits[1].world.trades["price"]) > 0
    a, b = state(kits[0]), state(kits[1])
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
