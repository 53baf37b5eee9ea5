"""Collateral holders whose position closes (a stop, ADL, a liquidation) convert their collateral at the close, so a
revaluation later in the same cascade cannot move a closed account's wallet (mechanisms/collateral.py's rule).

The World is a tiny scenario's: Binance BTCUSDT and Binance's own thin USDE/USDT book, every crowd account
margined in USDe (valued off that book, haircut 10 %), built and run through step 0's phases up to the cascade;
each test then sets the accounts it needs and runs the cascade, the way a crash step reaches it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from kit import MAKERS
from perpstress.config.scenario import Scenario
from perpstress.engine.invariants import Invariants
from perpstress.engine.simulation import Simulation
from perpstress.state.clock import Clock
from perpstress.state.world import MAKER

BTC = 0
"""Market row of binance:BTCUSDT."""

HOLDERS: dict[str, Any] = {
    "name": "holders",
    "description": "Binance BTCUSDT and its own USDE/USDT book; every crowd account margined in USDe",
    "seed": 1,
    "start": "2025-10-10T21:00:00Z",
    "duration_s": 60,
    "venues": {
        "binance": {
            "preset": "binance",
            "symbols": ["BTCUSDT"],
            "spot_symbols": ["USDE/USDT"],
            "insurance_fund": {"initial_usd": 1e6},
        }
    },
    "shock": {
        "kind": "jump_regime",
        "at_s": 30,
        "jump": -0.02,
        "stress_vol": 0.001,
        "half_life_s": 30,
        "assets": {"BTC": {"start_price": 116_800.0}, "USDE": {"start_price": 1.0, "beta": 0.0}},
    },
    "crowd": {
        "isolated_share": 0.0,
        "stop_share": 0.0,
        "topup_share": 0.0,
        "collateral": {"binance": {"USDE": 1.0}},
        "markets": {"binance:BTCUSDT": {"notional_usd": 2e6, "long_share": 0.8, "accounts": 10}},
    },
    "makers": copy.deepcopy(MAKERS)
    | {
        "markets": {
            "binance:USDE/USDT": {
                "capital_usd": 3e5,
                "depth_usd": 2e4,
                "inventory_limit_usd": 3e5,
                "loss_limit_usd": 5e4,
            }
        }
    },
    "takers": {"rate_per_s": 0.0},
}


class Step0:
    """The tiny World after step 0's phases up to the cascade (the books quoted, USDe valued at 1.0)."""

    def __init__(self) -> None:
        self.sim = sim = Simulation(Scenario.from_dict(HOLDERS))
        self.world = w = sim.world
        self.hold = w.collateral
        self.clock = Clock(0, sim.scenario.ts_start_ms, sim.scenario.step_ms)
        for name, phase in sim.kernel.phases:
            if name == "liquidation":
                break
            phase(self.clock)
        assert self.hold.price[0] == 1.0
        size = w.positions.size_lots[w.crowd_ids]
        self.longs = [int(a) for a in w.crowd_ids[size > 0]]
        self.shorts = [int(a) for a in w.crowd_ids[size < 0]]

    def hold_usde(self, account: int, quantity: float, cash: float) -> None:
        """``account`` holds ``quantity`` USDe (valued at the pair's haircut price now) and ``cash`` USD."""
        w, hold = self.world, self.hold
        r = int(hold.row_of[account])
        hold.quantity[r] = quantity
        hold.value[r] = quantity * float(hold.haircut_price()[0])
        w.accounts.wallet[account] = cash + hold.value[r]

    def invariants(self, accounts: list[int]) -> Invariants:
        """The accounts re-banded after the test set them, and the invariants counted from here."""
        self.sim.bands.reband(np.array(sorted(accounts), dtype=np.int64))
        return Invariants(self.world, self.sim.accounting)

    def cascade(self) -> list[int]:
        """Step 0's cascade; returns, for each revaluation it ran, the closed holders still holding collateral
        when the revaluation began (the rule: none)."""
        prices, hold, size = self.sim.prices, self.hold, self.world.positions.size_lots
        revalue = prices.revalue_collateral
        seen: list[int] = []

        def watched(mid: Any = None) -> None:
            seen.append(int(np.count_nonzero(size[hold.account[hold.quantity > 0]] == 0)))
            revalue(mid)

        prices.revalue_collateral = watched  # type: ignore[method-assign]
        dict(self.sim.kernel.phases)["liquidation"](self.clock)
        return seen

    def under_water_long(self, account: int, usde: float) -> None:
        """``account`` liquidatable even after its ``usde`` USDe are sold at 1.0: a USD loan larger than that."""
        self.hold_usde(account, usde, -usde - 10_000.0)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled walk", "stops in Python"])
def test_a_stopped_holder_keeps_its_wallet_when_a_sale_in_the_same_round_reprices_its_collateral(
    compiled: bool,
) -> None:
    """The failure of oct-2025 at 5 % with seed 7515166119681480160: a stop closes holder A (USD cash negative, USDe
    positive, wallet a little above zero); in the same round, holder B's liquidation sells USDe into the own book
    and the revaluation after that sale marks USDe lower. A's collateral must already be cash by then: before the
    fix it was converted only after a re-band, so the fall took A's wallet below zero, unrecorded. The same with
    the stop in the compiled walk (``crowd_act``, which hands A back for its conversion) and in
    :meth:`CrowdStops.stop`."""
    s = Step0()
    w, hold = s.world, s.hold
    a, b = s.longs[:2]
    mark = float(w.markets.mark[BTC])
    notional = abs(int(w.positions.size_lots[a])) * float(w.markets.lot_size[BTC]) * mark
    usde = 1e6
    # A: a USD loan of all but 0.2 % of its USDe's haircut value, beyond the stop's taker fee; its stop is due now
    s.hold_usde(a, usde, -usde * 0.9 * 0.998 + 1.5 * float(w.taker_fee[0]) * notional)
    w.positions.entry_price[a] = mark
    w.stop_price[a] = mark * 1.001
    s.under_water_long(b, 5e5)  # B's sale eats the whole bid side of the USDE/USDT book
    invariants = s.invariants([a, b])
    crowd_stops = s.sim.crowd_stops
    crowd_stops.compiled = compiled
    python_stops: list[int] = []
    conversions: list[tuple[list[int], float]] = []
    stop, convert = crowd_stops.stop, hold.convert_closed

    def spied_stop(p: int, dry: Any) -> None:
        python_stops.append(p)
        stop(p, dry)

    def spied_convert(accounts: Any, accounting: Any) -> float:
        usd = convert(accounts, accounting)
        conversions.append(([int(x) for x in accounts], float(w.accounts.wallet[a])))
        return usd

    crowd_stops.stop = spied_stop  # type: ignore[method-assign]
    hold.convert_closed = spied_convert  # type: ignore[method-assign]
    revaluations = s.cascade()

    assert python_stops == ([] if compiled else [a])
    after_stop = [wallet for accounts, wallet in conversions if accounts == [a]]  # the stop's own conversion
    assert w.positions.size_lots[a] == 0
    assert len(after_stop) == 1
    assert 0.0 < after_stop[0] < 0.01 * usde  # A closed with a little equity left: no gap to pay
    assert b in s.sim.liquidation.record.account
    assert hold.price[0] < 0.998  # B's sale marked USDe down after A's close...
    assert hold.quantity[hold.row_of[a]] == 0.0  # ...but A's USDe was cash already, at the close's price
    assert w.accounts.wallet[a] == after_stop[0]
    assert revaluations
    assert revaluations == [0] * len(revaluations)  # no revaluation found a closed holder still holding USDe
    invariants.check_no_hidden_bad_debt(0)
    assert invariants.total_value() == pytest.approx(invariants.value_start, abs=1e-6)
    assert invariants.asset_units()["USDE"] == pytest.approx(invariants.units_start["USDE"], rel=1e-12)


def test_a_holder_closed_by_adl_converts_at_the_close() -> None:
    """A bankrupt long with no bids and an empty fund goes to ADL; the profitable short it closes is a USDe holder
    whose USD cash is negative. ADL leaves it with nothing open, so its USDe is converted by the cascade right after
    the venue's ADL and gap settlement, before the round's revaluation (before the fix, by that revaluation, from a
    queue filled at re-band)."""
    s = Step0()
    w, hold = s.world, s.hold
    mark = float(w.markets.mark[BTC])
    b = s.longs[0]
    c = max(s.shorts, key=lambda x: int(w.positions.size_lots[x]))  # the smallest short: B's ADL closes it whole
    assert abs(int(w.positions.size_lots[c])) <= int(w.positions.size_lots[b])
    for maker in np.flatnonzero((w.kind == MAKER) & (w.positions.market == BTC)):
        w.books.cancel_owner(int(maker))  # no bids: B's liquidation order finds nothing, the fund takes over
    w.funds.balance[0] = 0.0  # and the fund cannot: ADL
    s.under_water_long(b, 5e5)
    w.positions.entry_price[c] = mark * 1.02  # C short from 2 % higher: profitable, first in the ADL queue
    s.hold_usde(c, 1e5, -0.9e5 * 0.99)
    invariants = s.invariants([b, c])
    revaluations = s.cascade()

    assert c in s.sim.adl.record.account
    assert w.positions.size_lots[c] == 0
    assert hold.quantity[hold.row_of[c]] == 0.0
    assert hold.external_units["USDE"] >= 1e5  # C's units left through the conversion
    assert w.accounts.wallet[c] >= 0.0
    assert len(revaluations) >= 2  # B's collateral sale's, and the round's after ADL filled
    assert revaluations == [0] * len(revaluations)  # C's USDe was cash before the round's revaluation
    invariants.check_no_hidden_bad_debt(0)
    assert invariants.total_value() == pytest.approx(invariants.value_start, abs=1e-6)


def test_a_closed_holder_still_holding_collateral_stops_the_run() -> None:
    """The invariant behind the rule: a close that forgot to convert is caught at the next recount."""
    s = Step0()
    w = s.world
    a = s.longs[0]
    invariants = s.invariants([a])
    lots = int(w.positions.size_lots[a])
    s.sim.accounting.close(a, -1, a, -lots, float(w.positions.entry_price[a]))  # closed outside any mechanism
    with pytest.raises(AssertionError, match="1 closed units still holding collateral"):
        invariants.check_no_hidden_bad_debt(0)
