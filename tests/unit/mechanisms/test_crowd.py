"""The crowd on the kit's World: trigger bands fire exactly when a mark crosses them, stops close, top-ups add
margin from outside, the margin monitor finds under-margined units."""

from __future__ import annotations

import numpy as np
import pytest

from kit import BTC, HIVE, Kit, crowded_long_world
from perpstress.mechanisms.agents.crowd import CrowdBands, CrowdStops, MarginMonitor
from perpstress.state.world import CROWD


def test_a_calm_mark_fires_nothing_and_a_fall_fires_the_most_levered_longs_first() -> None:
    kit = crowded_long_world()
    w = kit.world
    bands = CrowdBands(w)
    bands.start()
    assert w.triggers.fired(w.markets.mark).size == 0
    mark = w.markets.mark.copy()
    mark[BTC] *= 0.975  # -2.5 %: past the 50x longs' liquidation band, not the 5x ones'
    fired = set(w.triggers.fired(mark).tolist())
    longs = kit.longs
    assert int(longs[-1]) in fired  # 50x
    assert int(longs[0]) not in fired  # 5x
    assert all(bands.lo[a] < mark[BTC] for a in longs if a not in fired)  # what did not fire is inside its band


def test_a_stop_past_the_mark_closes_the_position_and_pays_the_taker_fee() -> None:
    kit = crowded_long_world()
    w = kit.world
    kit.quote()
    stops = CrowdStops(w, kit.accounting, kit.execution, kit.liquidation())
    stopped = [int(a) for a in kit.longs if np.isfinite(w.stop_price[a])]
    a = stopped[0]
    w.markets.mark[BTC] = w.stop_price[a] * 0.999
    fees_before = float(w.ledger.fee_pool[0])
    stops.act(np.array([a]))
    assert w.positions.size_lots[a] == 0
    assert np.isnan(w.stop_price[a])
    assert stops.stops["count"] == 1
    assert w.ledger.fee_pool[0] > fees_before


def test_a_top_up_brings_margin_back_to_half_the_trigger_ratio_from_the_reserve() -> None:
    kit = crowded_long_world()
    w = kit.world
    stops = CrowdStops(w, kit.accounting, kit.execution, kit.liquidation())
    a = next(int(a) for a in kit.longs if w.topup_reserve[a] > 0 and np.isnan(w.stop_price[a])
             and np.isnan(w.positions.isolated_margin[a]) and a > len(kit.longs) // 2)  # fmt: skip
    entry = w.positions.entry_price[a]
    unit = kit.accounting.unit_of(a)
    for fall in np.arange(0.0, 0.2, 0.0005):  # the first mark at which the top-up is due
        w.markets.mark[BTC] = entry * (1 - fall)
        ratio = kit.accounting.maintenance(a) / kit.accounting.unit_equity(*unit)
        if ratio >= stops.topup_ratio:
            break
    assert 0 < ratio < 1.0  # due, and not yet liquidatable
    reserve, external = float(w.topup_reserve[a]), w.ledger.external_in
    stops.act(np.array([a]))
    added = reserve - float(w.topup_reserve[a])
    assert added > 0
    assert w.ledger.external_in == pytest.approx(external + added, rel=1e-12)  # an external inflow, declared
    after = kit.accounting.maintenance(a) / kit.accounting.unit_equity(*unit)
    assert after < ratio
    assert after <= 0.5 * stops.topup_ratio + 1e-9 or w.topup_reserve[a] == 0


def test_the_monitor_finds_cross_and_isolated_units_below_maintenance() -> None:
    kit = crowded_long_world()
    w = kit.world
    monitor = MarginMonitor(w)
    assert monitor.liquidatable(kit.longs.astype(np.int64)) == []
    w.markets.mark[BTC] *= 0.9  # -10 %: every long above 10x is under water
    units = monitor.liquidatable(kit.longs.astype(np.int64))
    lev = np.linspace(5.0, 50.0, len(kit.longs))
    hit = {a for a, _ in units}
    assert {int(a) for a in kit.longs[lev >= 12]} <= hit
    assert not {int(a) for a in kit.longs[lev <= 8]} & hit
    iso = [(a, p) for a, p in units if p >= 0]
    assert iso
    assert all(not np.isnan(w.positions.isolated_margin[p]) for _, p in iso)


def act_per_position(stops: CrowdStops, fired: np.ndarray) -> None:
    """:meth:`CrowdStops.act` as it was before its top-ups were compiled: one Python loop over the fired positions."""
    w = stops.world
    pos, mk = w.positions, w.markets
    accounting = stops.accounting
    dry: set[tuple[int, int]] = set()
    for p in fired[w.kind[fired] == CROWD]:
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
            unit = accounting.unit_of(p)
            fill = stops.execution.execute(m, -lots, mark * (1 - side * 0.05), False, p)
            if fill.lots != -lots:
                dry.add((m, side))
            if fill.lots:
                accounting.close(*unit, p, fill.lots, fill.average_price)
                venue = int(mk.venue[m])
                notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
                fee = min(w.taker_fee[venue] * notional, max(accounting.unit_equity(*unit), 0.0))
                accounting.credit(*unit, -fee)
                w.ledger.fee_pool[venue] += fee
                stops.stops["count"] += 1
                stops.stops["notional_usd"] += notional
                stops.liquidation.settle_gap(venue, *unit)
            if pos.size_lots[p] == 0:
                w.stop_price[p] = np.nan
            continue
        if w.topup_reserve[p] > 0:
            unit = accounting.unit_of(p)
            equity = accounting.unit_equity(*unit)
            mm = accounting.maintenance(p)
            if equity <= 0 or mm / equity >= stops.topup_ratio:
                add = min(w.topup_reserve[p], max(mm / (0.5 * stops.topup_ratio) - equity, 0.0))
                if add > 0:
                    accounting.credit(*unit, add)
                    w.topup_reserve[p] -= add
                    w.ledger.external_in += add
                    stops.topups["count"] += 1
                    stops.topups["usd"] += add


def after_a_fall(kit: Kit) -> tuple[np.ndarray, ...]:
    """Every array a stop or a top-up can change."""
    w = kit.world
    return (w.accounts.wallet, w.positions.size_lots, w.positions.entry_price, w.positions.isolated_margin,
            w.stop_price, w.topup_reserve, w.ledger.fee_pool, w.ledger.bad_debt, w.funds.balance,
            np.array([w.ledger.external_in]), w.books.lots, w.books.price, w.books.owner)  # fmt: skip


@pytest.mark.parametrize("fall", [0.021, 0.03, 0.045, 0.08])
def test_act_equals_the_per_position_loop_it_replaced(fall: float) -> None:
    """Every account fired at once after a fall, the makers requoted at the new marks but HIVE's book emptied: the
    BTC stops (the most levered filled past bankruptcy, their gaps paid by the fund), the HIVE stops finding the
    book dry, and the top-ups leave every array, sum and counter exactly as the per-position loop did."""
    runs = []
    for act in (CrowdStops.act, act_per_position):
        kit = crowded_long_world()
        kit.move(-fall)
        kit.quote()
        w = kit.world
        for maker in kit.makers[w.positions.market[kit.makers] == HIVE]:
            w.books.cancel_owner(int(maker))
        stops = CrowdStops(w, kit.accounting, kit.execution, kit.liquidation())
        act(stops, np.flatnonzero(w.kind >= 0).astype(np.int64))  # the makers and noise accounts are skipped
        runs.append((after_a_fall(kit), dict(stops.stops), dict(stops.topups)))
    (new, new_stops, new_topups), (old, old_stops, old_topups) = runs
    assert new_stops == old_stops
    assert new_topups == old_topups
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(a, b)
    kit = crowded_long_world()
    assert new_stops["count"] > 0
    assert new_topups["count"] > 0
    assert new[8][0] < kit.world.funds.balance[0]  # gaps past bankruptcy paid
    assert np.isfinite(new[4][kit.hive_longs]).any()  # HIVE stops left waiting for a book
