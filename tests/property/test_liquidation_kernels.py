"""The compiled liquidation (:mod:`perpstress.mechanisms.liquidation.kernels`) on random small worlds: the same
state, records and ADL requests, bit for bit, as the Python procedures (the reference) and as its plain twin.

A world: one venue (Binance's IOC then takeover, OKX/Bybit/Bitget's tier step, Hyperliquid's backstop vault, dYdX's
fillable-price IOC, Drift's keeper takeover, with parameters drawn around the presets', the venue's ADL rule
sometimes Drift's socialised loss), one to three markets with the venue's real tier tables, makers and a keeper per
market (one cross position each, its index its account's, as the engine stores them; makers quote ladders around
mark, keepers hold some inventory), traders holding cross and isolated positions long and short with collateral
from deep in the money to bankrupt, some already in liquidation, and a fund whose balance, takeover limit, claim
cap and drawdown peak are drawn so that fills, partial steps, takeovers, refusals (ADL), backstops, keeper takes,
fund payments and gaps past bankruptcy (paid, bad debt or socialised) all happen. After the liquidation every unit's
gap is settled once more (:meth:`LiquidationEngine.settle_gaps`, as after a round's ADL). Each helper kernel is
compared with its twin at every call the main twin makes (with the arguments it makes them with).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from kit import draw_maker_ladders
from perpstress.calculator import load_venue
from perpstress.config.venue import SocialisedLossAdl
from perpstress.mechanisms import accounting as ac
from perpstress.mechanisms import price_kernels as pk
from perpstress.mechanisms import unit_kernels as uk
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.mechanisms.liquidation import kernels as kn
from perpstress.state import orderbook as ob
from perpstress.state.ledger import Ledger
from perpstress.state.orderbook import OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

SETTINGS = settings(max_examples=150, deadline=None)
VENUES = ["binance", "okx", "bybit", "bitget", "hyperliquid", "dydx", "drift"]
TS = 50_000_000


@st.composite
def venue_configs(draw: st.DrawFn) -> Any:
    """A preset venue with its procedure's parameters drawn around the preset's."""
    venue = load_venue(draw(st.sampled_from([*VENUES, "dydx", "dydx", "drift"])))
    liq = venue.liquidation
    update: dict[str, Any] = {}
    kind = type(liq).__name__
    if kind == "FillablePriceIoc":
        update["max_subaccounts_per_block"] = draw(st.sampled_from([1, 3, 50]))
        update["max_position_portion"] = draw(st.sampled_from([0.05, 0.1, 0.5, 1.0]))
        update["min_position_notional_usd"] = draw(st.sampled_from([0.0, 1000.0, 1e6]))
        update["max_notional_per_block_usd"] = draw(st.sampled_from([1e3, 1e5, 1e9]))
        update["max_insurance_lost_per_block_usd"] = draw(st.sampled_from([1.0, 1e3, 1e6]))
        update["max_liquidation_fee_rate"] = draw(st.sampled_from([0.0, 0.015, 0.1]))
        update["bankruptcy_adjustment"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
        update["spread_to_maintenance_ratio"] = draw(st.sampled_from([0.5, 1.5, 3.0]))
    elif kind == "KeeperTakeover":
        update["liquidator_fee_rate"] = draw(st.sampled_from([0.0, 0.01, 0.05]))
        update["if_fee_rate"] = draw(st.sampled_from([0.0, 0.01, 0.1]))
        update["initial_fraction"] = draw(st.sampled_from([0.1, 0.5, 1.0]))
        update["liquidation_duration_s"] = draw(st.sampled_from([0.0, 30.0, 600.0]))
        update["margin_buffer_ratio"] = draw(st.sampled_from([0.0, 0.02, 0.2]))
        update["whole_below_usd"] = draw(st.sampled_from([0.0, 50.0, 1e5]))
    else:
        update["max_price_deviation"] = draw(st.sampled_from([0.002, 0.01, 0.05, 0.2]))
    if kind in ("IocThenTakeover", "TierStepThenTakeover"):
        update["clearance_fee_rate"] = draw(st.sampled_from([0.0, 0.005, 0.0125, 0.05]))
    if kind == "TierStepThenTakeover":
        update["tiers_to_drop"] = draw(st.integers(1, 3))
        update["order"] = draw(st.sampled_from(["fok", "ioc"]))
        update["full_takeover_below_tier"] = draw(st.integers(0, 3))
    if kind == "MarketThenBackstop":
        update["partial_threshold_usd"] = 10.0 ** draw(st.floats(1.0, 6.0))
        update["partial_fraction"] = draw(st.sampled_from([0.2, 0.5, 1.0]))
        update["cooldown_s"] = draw(st.sampled_from([0.0, 30.0]))
        update["backstop_mm_fraction"] = draw(st.sampled_from([0.1, 2 / 3, 0.9]))
    adl = SocialisedLossAdl() if draw(st.booleans()) and draw(st.booleans()) else venue.adl
    return venue.model_copy(update={"liquidation": liq.model_copy(update=update), "adl": adl})


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Any, SimpleNamespace, list[tuple[int, int]]]:
    """A venue, the state a liquidation works on (as a World-like namespace) and the units to liquidate."""
    venue = draw(venue_configs())
    symbols = sorted(venue.perpetuals)
    n_m = draw(st.integers(1, 3))
    cfgs = [venue.perpetuals[s] for s in draw(st.lists(st.sampled_from(symbols), min_size=n_m, max_size=n_m))]
    marks = np.array([10.0 ** draw(st.floats(-2.0, 5.0)) for _ in range(n_m)])
    tick = 10.0 ** np.floor(np.log10(marks)) * 1e-4
    lot = np.array([10.0 ** np.round(np.log10(draw(st.floats(1.0, 200.0)) / m)) for m in marks])
    markets = Markets.from_tables([0] * n_m, list(lot), list(tick), [c.tier_table() for c in cfgs])
    markets.mark[:] = marks

    n_makers = draw(st.integers(1, 4))
    maker_market = np.array([draw(st.integers(0, n_m - 1)) for _ in range(n_makers)], np.int32)
    n_traders = draw(st.integers(1, 5))
    pos_account, pos_market, size, entry, iso = [], [], [], [], []
    for a in range(n_makers):
        pos_account.append(a)
        pos_market.append(int(maker_market[a]))
        size.append(draw(st.integers(-2000, 2000)))
        entry.append(float(marks[maker_market[a]] * (1 + draw(st.floats(-0.1, 0.1)))))
        iso.append(np.nan)
    wallet = [10.0 ** draw(st.floats(3.0, 7.0)) for _ in range(n_makers)]
    for m in range(n_m):  # each market's keeper: one cross position, its index its account's
        pos_account.append(n_makers + m)
        pos_market.append(m)
        size.append(draw(st.integers(-500, 500)) * draw(st.sampled_from([0, 1])))
        entry.append(float(marks[m]))
        iso.append(np.nan)
        wallet.append(1e6)
    n_fixed = n_makers + n_m
    for t in range(n_traders):
        a = n_fixed + t
        notional = 0.0
        for _ in range(draw(st.integers(1, 4))):  # every account holds a position row, as the engine builds them
            m = draw(st.integers(0, n_m - 1))
            lots = draw(st.integers(1, 20_000)) * draw(st.sampled_from([1, -1])) * draw(st.sampled_from([0, 1, 1, 1]))
            e = float(marks[m] * (1 + draw(st.floats(-0.3, 0.3))))
            isolated = draw(st.booleans()) and draw(st.booleans())
            pos_account.append(a)
            pos_market.append(m)
            size.append(lots)
            entry.append(e)
            iso.append(abs(lots) * lot[m] * e * draw(st.floats(-0.05, 0.4)) if isolated else np.nan)
            notional += abs(lots) * lot[m] * e
        wallet.append(max(notional, 100.0) * draw(st.floats(-0.05, 0.4)))
    n_acc = n_fixed + n_traders
    acc_ids = np.array(pos_account, np.int32)
    start, count = group_by_account(n_acc, acc_ids)
    accounts = Accounts(np.zeros(n_acc, np.int32), np.array(wallet), start, count)
    positions = Positions(acc_ids, np.array(pos_market, np.int32), np.array(size, np.int64), np.array(entry),
                          np.array(iso))  # fmt: skip
    books = OrderBooks(n_m, 16, markets.tick_size, markets.lot_size)
    draw_maker_ladders(draw, books, maker_market[:n_makers], marks, lot, far_from=0.0005)
    limits = FundLimits(
        max_takeover_notional_fraction=draw(st.sampled_from([None, 0.05, 0.5, 5.0])),
        adl_drawdown_fraction=draw(st.sampled_from([None, 0.1, 0.3])),
        drawdown_window_ms=10**9,
        per_market_claim_cap_usd=draw(st.sampled_from([None, 10.0, 1e4])),
    )
    funds = InsuranceFunds.create([10.0 ** draw(st.floats(0.0, 7.0))], n_m, [limits])
    if draw(st.booleans()):
        funds.observe(0, TS - 1000, markets.mark)
        funds.balance[0] *= draw(st.floats(0.3, 1.2))
    for m in range(n_m):
        if draw(st.booleans()):
            funds.take_over(0, m, draw(st.integers(-50, 50)) * lot[m], float(marks[m]))
    world = SimpleNamespace(
        scenario=SimpleNamespace(engine=SimpleNamespace(record_trades=False)),
        markets=markets,
        accounts=accounts,
        positions=positions,
        books=books,
        funds=funds,
        ledger=Ledger(np.zeros(1), np.zeros(1)),
        maker_fee=np.array([draw(st.sampled_from([-0.0001, 0.0, 0.0002]))]),
        maker_filled=np.zeros(n_acc, bool),
        last_trade=np.full(n_m, np.nan),
        volume_usd=np.zeros(n_m),
        now_ms=TS,
        trades={},
        cooldown=np.array([draw(st.sampled_from([0, TS + 1])) for _ in range(n_acc)], np.int64),
        started=np.array([draw(st.sampled_from([-1, TS - 10_000, TS - 10**6])) for _ in range(n_acc)], np.int64),
        keepers={m: n_makers + m for m in range(n_m)},
    )
    units = []
    for a in range(n_fixed, n_acc):
        units.append((a, -1))
        units += [(a, p) for p in range(int(start[a]), int(start[a] + count[a])) if not np.isnan(iso[p])]
    units = draw(st.permutations(units))
    return venue, world, units[: draw(st.integers(1, len(units)))]


def run(venue: Any, world: SimpleNamespace, units: list[tuple[int, int]], compiled: bool) -> tuple[Any, ...]:
    """Liquidate ``units`` on a copy of ``world``; returns the state after, the records and the requests."""
    w = copy.deepcopy(world)
    accounting = Accounting(w.markets, w.accounts, w.positions)
    engine = LiquidationEngine([venue], w.markets, w.accounts, w.positions, w.funds, BookExecution(w, accounting),
                               w.ledger, accounting, w.keepers)  # fmt: skip
    engine.compiled = compiled
    engine.cooldown_until[:] = w.cooldown
    engine.liquidation_started[:] = w.started
    try:
        requests = engine.liquidate(TS, 0, units)
    except ValueError as e:  # a negative deposit: both paths raise it
        requests = [str(e)]
    else:  # every unit's gap once more, as the cascade settles them after a round's ADL
        pos = w.positions
        every = np.arange(pos.account.size)
        accounts = np.concatenate([np.arange(w.accounts.n), pos.account[every]]).astype(np.int64)
        positions = np.concatenate([np.full(w.accounts.n, -1), np.where(np.isnan(pos.isolated_margin), -1, every)])
        engine.settle_gaps(0, accounts, positions.astype(np.int64))
    f, p, a, b = w.funds, w.positions, w.accounts, w.books
    arrays = [p.size_lots, p.entry_price, p.isolated_margin, a.wallet, f.balance, f.inventory, f.entry_price,
              f.claimed, f.cost_adjustment, w.ledger.bad_debt, w.ledger.fee_pool, w.maker_filled, w.last_trade,
              w.volume_usd, accounting.long_lots, engine.cooldown_until, engine.liquidation_started,
              engine.socialised_usd, b.price, b.lots, b.owner, b.count]  # fmt: skip
    record = {k: list(v) for k, v in vars(engine.record).items()}
    return [x.tobytes() for x in arrays], record, requests


def snap(x: Any) -> Any:
    """A value with every float as its exact bits: arrays as (dtype, shape, bytes), containers element-wise."""
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, tuple | list):
        return type(x)(snap(v) for v in x)
    if isinstance(x, dict):
        return {k: snap(v) for k, v in x.items()}
    if isinstance(x, float | np.floating):
        return float(x).hex()
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    return repr(x)


def same(x: tuple[Any, ...], y: tuple[Any, ...]) -> None:
    """Identical state, records (values: the Python path keeps some as NumPy scalars) and requests."""
    assert x[0] == y[0]
    assert snap(x[1]) == snap(y[1])
    assert [snap(vars(r)) if hasattr(r, "venue") else r for r in x[2]] == [
        snap(vars(r)) if hasattr(r, "venue") else r for r in y[2]
    ]


K = SimpleNamespace(**vars(uk), **{k: v for k, v in vars(kn).items() if k not in vars(uk)})
"""The kernels and twins as imported (the liquidation module's names are swapped during the twin run)."""


def compiled(call: Callable[[], Any]) -> Any:
    """``call()`` (a kernel's call) with the module's own kernels in place, so that a kernel compiled now for new
    argument types sees kernels, not the stand-ins; the stand-ins are back after."""
    swapped = {n: getattr(kn, n) for n in STANDING_IN}
    try:
        for n, f in STANDING_IN.items():
            setattr(kn, n, f)
        return call()
    finally:
        for n, f in swapped.items():
            setattr(kn, n, f)


STANDING_IN: dict[str, Any] = {}
"""The module's own names while the twins run (empty otherwise)."""
HELPERS = {
    "numpy_sum": lambda a, b: (compiled(lambda: pk.numpy_sum(*a)), pk._numpy_sum_py(*b)),
    "_unit_positions": lambda a, b: (compiled(lambda: K._unit_positions(*a)), K._unit_positions_py(*b)),
    "_unit_equity": lambda a, b: (compiled(lambda: K._unit_equity(*a)), K._unit_equity_py(*b)),
    "_close": lambda a, b: (compiled(lambda: K._close(*a)), K._close_py(*b)),
    "_bankruptcy_price": lambda a, b: (compiled(lambda: K._bankruptcy_price(*a)), K._bankruptcy_price_py(*b)),
    "_execute": lambda a, b: (compiled(lambda: K._execute(*a)), K._execute_py(*b)),
    "_fund_trade": lambda a, b: (compiled(lambda: K._fund_trade(*a)), K._fund_trade_py(*b)),
    "_fund_equity": lambda a, b: (compiled(lambda: K._fund_equity(*a)), K._fund_equity_py(*b)),
    "_take_over": lambda a, b: (compiled(lambda: K._take_over(*a)), K._take_over_py(*b)),
    "_settle_gap": lambda a, b: (compiled(lambda: K._settle_gap(*a)), K._settle_gap_py(*b)),
    "_order_then_takeover": lambda a, b: (compiled(lambda: K._order_then_takeover(*a)), K._order_then_takeover_py(*b)),
    "_backstop": lambda a, b: (compiled(lambda: K._backstop(*a)), K._backstop_py(*b)),
    "liquidate_units": lambda a, b: (compiled(lambda: K.liquidate_units(*a)), K._liquidate_units_py(*b)),
    "_trade": lambda a, b: (compiled(lambda: K._trade(*a)), K._trade_py(*b)),
    "_unit_maintenance": lambda a, b: (compiled(lambda: K._unit_maintenance(*a)), K._unit_maintenance_py(*b)),
    "_fund_pay": lambda a, b: (compiled(lambda: K._fund_pay(*a)), K._fund_pay_py(*b)),
    "_socialise": lambda a, b: (compiled(lambda: K._socialise(*a)), K._socialise_py(*b)),
    "_record": lambda a, b: (compiled(lambda: K._record(*a)), K._record_py(*b)),
    "_fillable_price_ioc": lambda a, b: (compiled(lambda: K._fillable_price_ioc(*a)), K._fillable_price_ioc_py(*b)),
    "_keeper": lambda a, b: (compiled(lambda: K._keeper(*a)), K._keeper_py(*b)),
    "settle_gaps": lambda a, b: (compiled(lambda: K.settle_gaps(*a)), K._settle_gaps_py(*b)),
}
"""Each kernel run on a copy of a call's arguments, its twin on the arguments themselves."""


def checked(name: str) -> Callable[..., Any]:
    """A stand-in for kernel ``name`` in the twin run: the kernel and its twin (:data:`HELPERS`), asserted to return
    the same and leave every argument the same, bit for bit."""

    def both(*args: Any) -> Any:
        mine = copy.deepcopy(args)
        expected, got = HELPERS[name](mine, args)
        assert snap(got) == snap(expected), name
        assert snap(args) == snap(mine), name
        return got

    return both


@contextmanager
def plain_checked() -> Iterator[None]:
    """The twins run, each kernel call compared with the kernel on a copy of its arguments (:func:`checked`); the
    order book's ``_match`` and ``settle_maker_fills`` run as their twins. The kernels must have been compiled for
    these argument types before (a kernel compiled inside would see the stand-ins)."""
    swaps = {name: checked(name) for name in HELPERS}
    swaps["_match"] = ob._match_py
    swaps["settle_maker_fills"] = ac._settle_maker_fills_py
    saved = {name: getattr(kn, name) for name in swaps}
    STANDING_IN.update(saved)
    try:
        for name, f in swaps.items():
            setattr(kn, name, f)
        yield
    finally:
        for name, f in saved.items():
            setattr(kn, name, f)
        STANDING_IN.clear()


@SETTINGS
@given(case=worlds())
def test_liquidate_units_equals_the_python_procedures_and_its_twin(case: Any) -> None:
    venue, world, units = case
    reference = run(venue, world, units, compiled=False)
    compiled = run(venue, world, units, compiled=True)
    same(reference, compiled)
    with plain_checked():
        twin = run(venue, world, units, compiled=True)
    same(reference, twin)
    rec = reference[1]
    event(f"{type(venue.liquidation).__name__}: {sorted(set(rec['kind']))}, ADL {len(reference[2]) > 0}")


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 700), seed=st.integers(0, 2**32 - 1), zeros=st.booleans())
def test_pairwise_sum_is_numpys_sum(n: int, seed: int, zeros: bool) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n)
    if zeros:
        a[rng.random(n) < 0.5] = -0.0
    expected = a.sum()
    assert pk.numpy_sum(a, n).hex() == pk._numpy_sum_py(a, n).hex() == expected.hex()
    assert (0.0 + pk._pairwise_sum(a, 0, n)).hex() == (0.0 + pk._pairwise_sum_py(a, 0, n)).hex() == expected.hex()
    if n <= 128:
        assert (0.0 + pk._block_sum(a, 0, n)).hex() == (0.0 + pk._block_sum_py(a, 0, n)).hex() == expected.hex()
