"""The crowd's whole trigger walk, stops included (:func:`perpstress.mechanisms.agents.crowd.crowd_act` and
:func:`~perpstress.mechanisms.agents.crowd.crowd_stop`), compiled and plain, against ``CrowdStops.act`` with each stop
through :meth:`CrowdStops.stop` in Python (``BookExecution``, ``Accounting``, ``LiquidationEngine.settle_gap``: the
reference), bit for bit: books, every position and wallet, isolated margins, stops, reserves, fee pools, last trades,
volumes, open interest, the fund, bad debt, socialised losses, margin calls, collateral holdings (quantities,
values, units converted) and the stop, top-up and call counts, and the external inflow to its last bit.

Worlds are small and random: one venue (a preset's, its ADL rule sometimes Drift's socialised loss), one to three
markets with the venue's real tier tables, makers quoting ladders around mark (some sides empty or thin), crowd
accounts holding one position each (the crowd's shape), cross or isolated, long or short, with collateral from ample
to bankrupt, stops reached or not, top-up reserves none, small or ample, and a fund from almost empty to ample with a
claim cap or none, so that stops fill in full, in part or not at all (a side going dry), top-ups interleave with
stops, and stops past bankruptcy leave gaps the fund pays, bad debt or a socialised loss. Top-ups are answered at
once, after a delay (a call outstanding since before or made now) or never; some cross crowd accounts hold
collateral (one or two pairs, one asset or two, some rows already empty), so a stopped holder's conversion at the
close interleaves with the top-ups' inflow.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from kit import draw_maker_ladders, flat
from perpstress.calculator import load_venue
from perpstress.config.venue import CollateralMethod, CollateralRule, SocialisedLossAdl
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.agents import crowd as cr
from perpstress.mechanisms.agents.crowd import _crowd_act_py, _crowd_stop_py, crowd_act, crowd_stop
from perpstress.mechanisms.collateral import CollateralHoldings, CollateralPair
from perpstress.mechanisms.execution import BookExecution
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import LiquidationEngine
from perpstress.state.ledger import Ledger
from perpstress.state.orderbook import OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account
from perpstress.state.world import CROWD, MAKER, MarginView

VENUES = ["binance", "okx", "bybit", "bitget", "hyperliquid"]


@st.composite
def crowd_worlds(draw: st.DrawFn) -> tuple[Any, SimpleNamespace]:
    """A venue and a World-like namespace with what the crowd's walk reads and writes."""
    venue = load_venue(draw(st.sampled_from(VENUES)))
    if draw(st.booleans()) and draw(st.booleans()):
        venue = venue.model_copy(update={"adl": SocialisedLossAdl()})
    symbols = sorted(venue.perpetuals)
    n_m = draw(st.integers(1, 3))
    cfgs = [venue.perpetuals[draw(st.sampled_from(symbols))] for _ in range(n_m)]
    marks = np.array([10.0 ** draw(st.floats(-2.0, 5.0)) for _ in range(n_m)])
    tick = 10.0 ** np.floor(np.log10(marks)) * 1e-4
    lot = np.array([10.0 ** np.round(np.log10(draw(st.floats(1.0, 200.0)) / m)) for m in marks])
    markets = Markets.from_tables([0] * n_m, list(lot), list(tick), [c.tier_table() for c in cfgs])
    markets.mark[:] = marks
    n_makers = draw(st.integers(1, 4))
    n_crowd = draw(st.integers(1, 10))
    n_acc = n_makers + n_crowd
    market, size, entry, iso, wallet = [], [], [], [], []
    stop = np.full(n_acc, np.nan)
    reserve = np.zeros(n_acc)
    now_ms = 100_000.0
    delay = np.zeros(n_acc)
    call_ms = np.full(n_acc, np.nan)
    holder, holding = [], []
    for a in range(n_acc):
        m = draw(st.integers(0, n_m - 1))
        market.append(m)
        if a < n_makers:
            size.append(draw(st.integers(-2000, 2000)))
            entry.append(float(marks[m] * (1 + draw(st.floats(-0.1, 0.1)))))
            iso.append(np.nan)
            wallet.append(10.0 ** draw(st.floats(3.0, 7.0)))
            continue
        lots = draw(st.integers(1, 20_000)) * draw(st.sampled_from([1, -1])) * draw(st.sampled_from([0, 1, 1, 1, 1]))
        e = float(marks[m] * (1 + draw(st.floats(-0.3, 0.3))))
        notional = abs(lots) * lot[m] * e
        collateral = max(notional, 100.0) * draw(st.floats(-0.05, 0.4))
        isolated = draw(st.booleans()) and draw(st.booleans())
        size.append(lots)
        entry.append(e)
        iso.append(collateral if isolated else np.nan)
        wallet.append(0.0 if isolated else collateral)
        if draw(st.sampled_from([True, True, False])):  # a stop: reached (long at or below, short at or above) or not
            away = draw(st.sampled_from([-0.02, 0.0, 0.01, 0.03]))
            stop[a] = float(marks[m] * (1 + away if lots > 0 else 1 - away))
        reserve[a] = draw(st.sampled_from([0.0, 0.0, 1.0, 1e3, 1e9]))
        delay[a] = draw(st.sampled_from([0.0, 0.0, 500.0, 5e3, np.inf]))
        if delay[a] > 0:
            call_ms[a] = draw(st.sampled_from([np.nan, now_ms - 1_000.0, now_ms - 10_000.0]))
        if not isolated and draw(st.booleans()):
            holder.append(a)
            holding.append(draw(st.sampled_from([0.0, 1.0, 250.0, 1e4])))
    ids = np.arange(n_acc, dtype=np.int32)
    start, count = group_by_account(n_acc, ids)
    accounts = Accounts(np.zeros(n_acc, np.int32), np.array(wallet), start, count)
    positions = Positions(ids, np.array(market, np.int32), np.array(size, np.int64), np.array(entry), np.array(iso))
    books = OrderBooks(n_m, 24, markets.tick_size, markets.lot_size)
    draw_maker_ladders(draw, books, market[:n_makers], marks, lot, far_from=0.005)
    limits = FundLimits(per_market_claim_cap_usd=draw(st.sampled_from([None, 10.0, 1e4])))
    funds = InsuranceFunds.create([10.0 ** draw(st.floats(0.0, 7.0))], n_m, [limits])
    kind = np.array([MAKER] * n_makers + [CROWD] * n_crowd)
    rule = CollateralRule(method=CollateralMethod.INDEX, haircut=0.1)
    assets = draw(st.sampled_from([["USDE"], ["USDE", "USDE"], ["USDE", "WBETH"]]))
    pairs = [CollateralPair(0, asset, rule, -1, j, -1) for j, asset in enumerate(assets)]
    if not holder or (draw(st.booleans()) and draw(st.booleans())):
        pairs, holder, holding = [], [], []  # no collateral: the walk never hands back
    pair = [draw(st.integers(0, len(pairs) - 1)) for _ in holder]
    collateral = CollateralHoldings(pairs, np.array(holder, np.int64), np.array(pair, np.int64), np.array(holding))
    collateral.value[:] = collateral.quantity * 0.9
    fired = np.array(draw(st.permutations(list(range(n_acc)))), np.int64)[: draw(st.integers(1, n_acc))]
    world = SimpleNamespace(
        scenario=SimpleNamespace(engine=SimpleNamespace(record_trades=False)),
        markets=markets,
        accounts=accounts,
        positions=positions,
        books=books,
        funds=funds,
        ledger=Ledger(np.zeros(1), np.zeros(1)),
        maker_fee=np.array([draw(st.sampled_from([-0.0001, 0.0, 0.0002]))]),
        taker_fee=np.array([draw(st.sampled_from([0.0, 0.0005, 0.01]))]),
        maker_filled=np.zeros(n_acc, bool),
        last_trade=np.full(n_m, np.nan),
        volume_usd=np.zeros(n_m),
        now_ms=now_ms,
        topup_delay_ms=delay,
        call_ms=call_ms,
        collateral=collateral,
        trades={},
        kind=kind,
        stop_price=stop,
        topup_reserve=reserve,
        fired=fired,
        ratio=draw(st.sampled_from([0.5, 0.8, 1.0])),
    )
    return venue, world


def run(venue: Any, world: SimpleNamespace, compiled: bool) -> list[Any]:
    """``CrowdStops.act`` over ``world.fired`` on a copy of ``world``; every array it may write and its counts."""
    w = copy.deepcopy(world)
    w.view = MarginView.of(w.markets, w.accounts, w.positions)
    w.scenario.crowd = SimpleNamespace(topup_margin_ratio=w.ratio, topup_delay_median_s=1.0,
                                       topup_unanswered_share=0.0)  # fmt: skip
    accounting = Accounting(w.markets, w.accounts, w.positions)
    execution = BookExecution(w, accounting)  # type: ignore[arg-type]
    engine = LiquidationEngine([venue], w.markets, w.accounts, w.positions, w.funds, execution, w.ledger, accounting)
    stops = cr.CrowdStops(w, accounting, execution, engine)  # type: ignore[arg-type]
    stops.compiled = compiled
    stops.act(w.fired)
    f, p, a, b = w.funds, w.positions, w.accounts, w.books
    arrays = [p.size_lots, p.entry_price, p.isolated_margin, a.wallet, w.stop_price, w.topup_reserve, f.balance,
              f.claimed, w.ledger.bad_debt, w.ledger.fee_pool, w.maker_filled, w.last_trade, w.volume_usd,
              accounting.long_lots, engine.socialised_usd, b.price, b.lots, b.owner, b.count, w.call_ms, stops.calls,
              w.collateral.quantity, w.collateral.value]  # fmt: skip
    units = {k: float(x).hex() for k, x in w.collateral.external_units.items()}
    numbers = [units, stops.stops["count"], float(stops.stops["notional_usd"]).hex(), stops.topups["count"],
               float(stops.topups["usd"]).hex(), float(w.ledger.external_in).hex()]  # fmt: skip
    return [x.tobytes() for x in arrays] + numbers


def act_checked(*args: Any) -> Any:
    """The plain walk in the kernel's place, asserted to leave the arguments as the compiled walk leaves a copy and
    to hand back the same holder at the same index."""
    mine = copy.deepcopy(args)
    expected = crowd_act(*mine)
    got = _crowd_act_py(*args)
    assert flat(args) == flat(mine)
    assert tuple(int(x) for x in got) == tuple(int(x) for x in expected)
    return got


def stop_checked(*args: Any) -> Any:
    """The plain stop in the kernel's place (inside the plain walk), asserted equal to the compiled stop."""
    mine = copy.deepcopy(args)
    expected = crowd_stop(*mine)
    got = _crowd_stop_py(*args)
    assert flat(args) == flat(mine)
    assert flat(tuple(float(x) for x in got)) == flat(tuple(float(x) for x in expected))
    return got


@settings(max_examples=200, deadline=None)
@given(case=crowd_worlds())
def test_crowd_act_equals_the_python_stops_and_its_twin(case: tuple[Any, SimpleNamespace]) -> None:
    venue, world = case
    reference = run(venue, world, compiled=False)
    assert run(venue, world, compiled=True) == reference
    saved = cr.crowd_act, cr.crowd_stop
    try:
        cr.crowd_act, cr.crowd_stop = act_checked, stop_checked
        twin = run(venue, world, compiled=True)
    finally:
        cr.crowd_act, cr.crowd_stop = saved
    assert twin == reference
    event(f"stops filled: {min(reference[-5], 3)}, top-ups: {min(reference[-3], 3)}, "
          f"bad debt: {reference[8] != np.zeros(1).tobytes()}")  # fmt: skip
    event(f"holders converted: {bool(reference[-6])}, margin calls: {reference[20] != np.zeros(2, np.int64).tobytes()}")
