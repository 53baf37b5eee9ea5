"""The run's invariants, recounted in full at a cadence (``engine.invariant_interval_s``; every step with
``engine.check_every_step``) and at the last step, O(positions) each:

- money: :meth:`Invariants.total_value` (USD in accounts, PnL at mark, funds' equity, fee pools, money in transit,
  less bad debt and external inflows) stays what it was at the start; the largest error is ``max_value_error``;
- collateral units: each asset's units held as collateral or in spot books stay as they were (``max_units_error``);
- open interest balances in every perpetual market, funds' inventory included (``max_oi_imbalance``), and the
  incrementally kept long lots equal a recount (else the run stops with an error);
- no hidden bad debt: a closed crowd unit never holds negative collateral (else the run stops with an error).
"""

from __future__ import annotations

import os

import numpy as np

from perpstress.engine.exact_sum import exact_sum
from perpstress.mechanisms.accounting import Accounting
from perpstress.state.world import CROWD, World

CHECK_EVERY_STEP_ENV = "PERPSTRESS_CHECK_EVERY_STEP"
"""Set to 1, every run recounts every step, as ``engine.check_every_step`` does (the test suite sets it)."""


class Invariants:
    def __init__(self, world: World, accounting: Accounting) -> None:
        self.world = world
        self.accounting = accounting
        self.value_start = self.total_value()
        self.units_start = self.asset_units()
        self.max_value_error = 0.0
        self.max_units_error = 0.0
        self.max_oi_imbalance = 0
        self.recounts = 0
        """Full recounts done so far."""
        eng, step_ms = world.scenario.engine, world.scenario.step_ms
        every_step = eng.check_every_step or os.environ.get(CHECK_EVERY_STEP_ENV) == "1"
        self.every = 1 if every_step else max(1, round(eng.invariant_interval_s * 1000 / step_ms))
        """Steps between full invariant recounts (and the last step): O(positions) each, so not every step."""

    def total_value(self) -> float:
        """USD held by accounts (collateral value excluded: it is counted in units by :meth:`asset_units`), PnL at
        mark of perpetual positions, the cost of spot holdings, funds' equity, fee pools and money in transit, less
        bad debt and external inflows (margin top-ups from outside the venue): constant over a run."""
        w = self.world
        pos = w.positions
        spot = w.is_spot[pos.market]
        base = pos.size_lots * w.markets.lot_size[pos.market]
        upnl = np.where(spot, -base * pos.entry_price, base * (w.markets.mark[pos.market] - pos.entry_price))
        funds = np.array([w.funds.equity(f, w.markets.mark) for f in range(len(w.venues))])
        # an exact sum (math.fsum's float), so the check measures the engine's bookkeeping, not its own rounding
        return exact_sum(
            w.accounts.wallet,
            -w.collateral.value,
            np.nan_to_num(pos.isolated_margin),
            upnl,
            funds,
            w.ledger.fee_pool,
            np.array([w.rails.in_transit_usd, -w.ledger.external_in]),
            -w.ledger.bad_debt,
        )

    def asset_units(self) -> dict[str, float]:
        """Units of each collateral asset in the system: held as collateral plus held in spot books' positions."""
        w = self.world
        units = w.collateral.units_by_asset()
        pos = w.positions
        for m in np.flatnonzero(w.is_spot):
            asset = w.market_base[m]
            if asset in units:
                units[asset] += float(pos.size_lots[pos.market == m].sum() * w.markets.lot_size[m])
        return units

    def oi_imbalance(self) -> int:
        w = self.world
        lots = np.bincount(w.positions.market, weights=w.positions.size_lots, minlength=w.markets.n)
        fund_lots = np.rint(w.funds.inventory.sum(axis=0) / w.markets.lot_size)
        return int(np.abs(np.rint(lots + fund_lots))[: w.n_perpetual].max(initial=0))

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.world.scenario.steps - 1

    def check(self, step: int) -> None:
        """Full recounts when due at ``step``: update the ``max_*`` figures; raise on an open-interest recount that
        differs or on hidden bad debt."""
        if not self.due(step):
            return
        self.recounts += 1
        w = self.world
        self.max_value_error = max(self.max_value_error, abs(self.total_value() - self.value_start))
        self.max_oi_imbalance = max(self.max_oi_imbalance, self.oi_imbalance())
        units = self.asset_units()
        for asset, start_units in self.units_start.items():
            self.max_units_error = max(self.max_units_error, abs(units[asset] - start_units))
        recount = np.bincount(w.positions.market, weights=np.maximum(w.positions.size_lots, 0), minlength=w.markets.n)
        if not np.array_equal(recount.astype(np.int64), self.accounting.long_lots):  # spot rows included
            raise AssertionError("open interest kept incrementally differs from a recount")
        self.check_no_hidden_bad_debt(step)

    def check_no_hidden_bad_debt(self, step: int) -> None:
        """A closed-out unit never holds negative collateral: its gap was paid or recorded as bad debt."""
        w = self.world
        pos = w.positions
        crowd = w.kind == CROWD
        closed = pos.size_lots == 0
        tolerance = 1e-6
        iso = ~np.isnan(pos.isolated_margin)
        bad_iso = crowd & closed & iso & (pos.isolated_margin < -tolerance)
        bad_cross = crowd & closed & ~iso & (w.accounts.wallet < -tolerance)
        if bad_iso.any() or bad_cross.any():
            raise AssertionError(f"step {step}: closed units with unrecorded negative equity")
