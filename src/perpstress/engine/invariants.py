"""The run's invariants, recounted in full at a cadence (``engine.invariant_interval_s``; every step with
``engine.check_every_step``) and at the last step, O(positions) each:

- money: :meth:`Invariants.total_value` (USD in accounts, PnL at mark, funds' equity, fee pools, money in transit,
  less bad debt and external inflows) stays what it was at the start; the largest error is ``max_value_error``;
- collateral units: each asset's units held as collateral or in spot books stay as they were (``max_units_error``);
- open interest balances in every perpetual market, funds' inventory included (``max_oi_imbalance``), and the
  incrementally kept long lots equal a recount (else the run stops with an error);
- no hidden bad debt: a closed crowd unit never holds negative collateral, nor collateral units (a close converts
  them at once), else the run stops with an error.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from perpstress.engine.exact_sum import exact_sum
from perpstress.mechanisms.accounting import Accounting
from perpstress.state.portfolio import F64, I32, I64
from perpstress.state.world import CROWD, World

HIDDEN_DEBT_TOLERANCE = 1e-6
"""USD of negative collateral a closed crowd unit may show (rounding) before it counts as hidden bad debt."""
_MAX_FLOAT = float(np.finfo(np.float64).max)


def _recount_positions_py(
    market: I32, size_lots: I64, entry: F64, iso_margin: F64, crowd: NDArray[np.bool_], wallet: F64, lot_size: F64,
    mark: F64, is_spot: NDArray[np.bool_], upnl: F64, iso: F64, net_lots: I64, long_lots: I64,
) -> int:  # fmt: skip
    """One pass over every position (position ids are account ids) for the recount: each position's PnL at mark
    (``-base * entry`` for a spot holding: its cost) into ``upnl`` and its isolated margin into ``iso`` (0 for a
    cross position, an infinity clipped to the largest float, as ``np.nan_to_num`` does), for an exact sum; per
    market the net and the long lots added into ``net_lots`` and ``long_lots``. Returns the closed crowd units
    holding hidden bad debt: isolated margin, or a cross unit's wallet, below ``-HIDDEN_DEBT_TOLERANCE``. The
    plain-Python reference; :func:`recount_positions` is the compiled one that runs."""
    hidden = 0
    for i in range(market.shape[0]):
        m = market[i]
        lots = size_lots[i]
        base = lots * lot_size[m]
        if is_spot[m]:
            upnl[i] = -base * entry[i]
        else:
            upnl[i] = base * (mark[m] - entry[i])
        x = iso_margin[i]
        isolated = not np.isnan(x)
        if not isolated:
            iso[i] = 0.0
        elif x == np.inf:
            iso[i] = _MAX_FLOAT
        elif x == -np.inf:
            iso[i] = -_MAX_FLOAT
        else:
            iso[i] = x
        net_lots[m] += lots
        if lots > 0:
            long_lots[m] += lots
        if lots == 0 and crowd[i] and (x if isolated else wallet[i]) < -HIDDEN_DEBT_TOLERANCE:
            hidden += 1
    return hidden


recount_positions = njit(cache=True)(_recount_positions_py)

CHECK_EVERY_STEP_ENV = "PERPSTRESS_CHECK_EVERY_STEP"
"""Set to 1, every run recounts every step, as ``engine.check_every_step`` does (the test suite sets it)."""


class Recount(NamedTuple):
    """One full recount of the World."""

    value: float
    """:meth:`Invariants.total_value`."""
    units: dict[str, float]
    """:meth:`Invariants.asset_units`."""
    oi_imbalance: int
    """:meth:`Invariants.oi_imbalance`."""
    long_lots: I64
    """Long lots per market (spot rows included), recounted."""
    hidden_debt: int
    """Closed crowd units holding negative collateral."""
    holding_closed: int
    """Closed crowd units still holding collateral units (a close converts them)."""


class Invariants:
    def __init__(self, world: World, accounting: Accounting) -> None:
        self.world = world
        self.accounting = accounting
        n = world.positions.market.size
        self._upnl = np.empty(n)
        self._iso = np.empty(n)
        self._crowd = world.kind == CROWD
        start = self.recount()
        self.value_start = start.value
        self.units_start = start.units
        self.max_value_error = 0.0
        self.max_units_error = 0.0
        self.max_oi_imbalance = 0
        self.recounts = 0
        """Full recounts done so far."""
        eng, step_ms = world.scenario.engine, world.scenario.step_ms
        every_step = eng.check_every_step or os.environ.get(CHECK_EVERY_STEP_ENV) == "1"
        self.every = 1 if every_step else max(1, round(eng.invariant_interval_s * 1000 / step_ms))
        """Steps between full invariant recounts (and the last step): O(positions) each, so not every step."""

    def recount(self) -> Recount:
        """Everything the invariants count, in one compiled pass over the positions (:func:`recount_positions`).

        Money: USD held by accounts (collateral value excluded: it is counted in units), PnL at mark of perpetual
        positions, the cost of spot holdings, funds' equity, fee pools and money in transit, less bad debt and
        external inflows (margin top-ups from outside the venue): constant over a run. It is an exact sum
        (math.fsum's float), so the check measures the engine's bookkeeping, not its own rounding. Units: each
        collateral asset's units held as collateral plus held in spot books' positions. Open interest: the largest
        net of lots in a perpetual market, funds' inventory included (0 when balanced)."""
        w = self.world
        pos, mk = w.positions, w.markets
        net = np.zeros(mk.n, dtype=np.int64)
        longs = np.zeros(mk.n, dtype=np.int64)
        hidden = recount_positions(pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin, self._crowd,
                                   w.accounts.wallet, mk.lot_size, mk.mark, w.is_spot, self._upnl, self._iso, net,
                                   longs)  # fmt: skip
        funds = np.array([w.funds.equity(f, mk.mark) for f in range(len(w.venues))])
        value = exact_sum(
            w.accounts.wallet,
            -w.collateral.value,
            self._iso,
            self._upnl,
            funds,
            w.ledger.fee_pool,
            np.array([w.rails.in_transit_usd, -w.ledger.external_in]),
            -w.ledger.bad_debt,
        )
        units = w.collateral.units_by_asset()
        for m in np.flatnonzero(w.is_spot):
            asset = w.market_base[m]
            if asset in units:
                units[asset] += float(net[m] * mk.lot_size[m])
        fund_lots = np.rint(w.funds.inventory.sum(axis=0) / mk.lot_size)
        imbalance = int(np.abs(np.rint(net + fund_lots))[: w.n_perpetual].max(initial=0))
        return Recount(value, units, imbalance, longs, int(hidden), w.collateral.holding_closed(pos.size_lots))

    def total_value(self) -> float:
        """The money counted by :meth:`recount`: constant over a run."""
        return self.recount().value

    def asset_units(self) -> dict[str, float]:
        """Units of each collateral asset in the system: held as collateral plus held in spot books' positions."""
        return self.recount().units

    def oi_imbalance(self) -> int:
        return self.recount().oi_imbalance

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.world.scenario.steps - 1

    def check(self, step: int) -> None:
        """Full recounts when due at ``step``: update the ``max_*`` figures; raise on an open-interest recount that
        differs or on hidden bad debt."""
        if not self.due(step):
            return
        self.recounts += 1
        now = self.recount()
        self.max_value_error = max(self.max_value_error, abs(now.value - self.value_start))
        self.max_oi_imbalance = max(self.max_oi_imbalance, now.oi_imbalance)
        for asset, start_units in self.units_start.items():
            self.max_units_error = max(self.max_units_error, abs(now.units[asset] - start_units))
        if not np.array_equal(now.long_lots, self.accounting.long_lots):  # spot rows included
            raise AssertionError("open interest kept incrementally differs from a recount")
        self._raise_on_hidden_debt(step, now)

    def check_no_hidden_bad_debt(self, step: int) -> None:
        """A closed-out unit never holds negative collateral (its gap was paid or recorded as bad debt), nor
        collateral units (they were converted at the close)."""
        self._raise_on_hidden_debt(step, self.recount())

    @staticmethod
    def _raise_on_hidden_debt(step: int, now: Recount) -> None:
        if now.hidden_debt:
            raise AssertionError(f"step {step}: {now.hidden_debt} closed units with unrecorded negative equity")
        if now.holding_closed:
            raise AssertionError(f"step {step}: {now.holding_closed} closed units still holding collateral")
