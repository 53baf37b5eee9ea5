"""The crowd on the kit's World: trigger bands fire exactly when a mark crosses them, stops close, top-ups add
margin from outside, the margin monitor finds under-margined units."""

from __future__ import annotations

import numpy as np
import pytest

from kit import BTC, crowded_long_world
from perpstress.mechanisms.agents.crowd import CrowdBands, CrowdStops, MarginMonitor


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
