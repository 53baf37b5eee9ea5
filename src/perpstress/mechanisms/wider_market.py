"""The market outside the scenario's venues, answering their net taker flow (``[wider_market]``,
:class:`perpstress.config.shock.WiderMarketConfig`).

Rule: every step, before the makers quote, each asset's fundamental value is its exogenous path times
``exp(I)``, where ``I`` (the asset's log impact) has grown, since the previous step, by
``impact_per_open_interest * permanent * F / OI``: ``F`` is the net taker flow into every order book of the asset,
perpetual and spot, on every venue (base units, buys positive), ``OI`` the asset's open interest over the
scenario's perpetuals at the start (base units). The flow is read off the books' owners (the makers and the resting
orders take the other side of every taker fill): what their positions lost since the previous step, less what ADL
closed against them and what the makers laid off outside the venues (``makers.lay_off``), which no taker traded.
An asset with no perpetual has no open interest and is not moved; neither is the flow an outside absorber fills
(the counterfactual without forced flow) counted, since it never reaches a book.

Why: the makers' quotes alone have no memory between venues. With spot books quoting around their venue's
perpetual mark and perpetuals around an index of those spot books, each requote carries the makers' inventory
skew around the loop again, and a market falls for as long as its makers hold inventory. Here the part of impact
that stays is the wider market's: it moves every book of the asset once, by the flow, and the makers' skew fades
(``makers.inventory_skew_permanent = 0``).

Calibration (``scripts/derive_oct2025.py``): Binance's one-minute impact of net taker flow before the news times
the market's open interest is 1.00 for BTCUSDT and 1.07 for SOLUSDT; the share of impact still there an hour on
is 0.695 (September's NEAR and FIL propagators).
"""

from __future__ import annotations

import numpy as np

from perpstress.config.shock import WiderMarketConfig
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlRecord
from perpstress.state.world import World


class WiderMarket:
    """Each asset's log impact from the scenario's own net taker flow (module docstring); :meth:`factor` per
    market."""

    def __init__(self, world: World, accounting: Accounting, cfg: WiderMarketConfig, adl_record: AdlRecord) -> None:
        self.world = world
        self.adl_record = adl_record
        acc, pos = world.accounts, world.positions
        owners = np.concatenate([world.maker_ids, world.resting_ids])
        assert (acc.pos_count[owners] == 1).all(), "every maker and resting account holds one position"
        self.owners = owners.astype(np.int64)
        self.owner_pos = acc.pos_start[owners].astype(np.int64)
        """Per book owner: its position."""
        self.owner_of = np.full(acc.n, -1, dtype=np.int64)
        """Per account: its index among the book owners, -1 for none."""
        self.owner_of[owners] = np.arange(owners.size)
        market = pos.market[self.owner_pos]
        self.owner_asset = world.asset_of[market]
        self.owner_base = world.markets.lot_size[market]
        """Per book owner: its market's asset (path column) and base units per lot."""
        self.last_lots = pos.size_lots[self.owner_pos].astype(np.float64)
        self.last_laid_off = world.laid_off_lots[self.owners].astype(np.float64)
        """Per book owner: lots laid off outside the venues so far (``makers.lay_off``): no taker traded them."""
        n_assets = int(world.asset_of.max()) + 1 if world.asset_of.size else 0
        perp = ~world.is_spot  # open interest per asset at the start, over its perpetuals, in base units
        oi_base = accounting.long_lots[perp] * world.markets.lot_size[perp]
        open_interest = np.bincount(world.asset_of[perp], weights=oi_base, minlength=n_assets)
        self.coef = np.zeros(n_assets)
        """Per asset: log impact per base unit of net taker flow (0: no perpetual)."""
        has = open_interest > 0
        self.coef[has] = cfg.impact_per_open_interest * cfg.permanent / open_interest[has]
        self.log_impact = np.zeros(n_assets)
        self.adl_seen = len(adl_record.account)

    def update(self) -> None:
        """Add the flow since the last call to every asset's log impact."""
        w, rec = self.world, self.adl_record
        now = w.positions.size_lots[self.owner_pos].astype(np.float64)
        change = now - self.last_lots
        self.last_lots = now
        laid_off = w.laid_off_lots[self.owners].astype(np.float64)
        change -= laid_off - self.last_laid_off  # what the makers laid off outside is no taker's flow
        self.last_laid_off = laid_off
        if len(rec.account) > self.adl_seen:  # ADL closed against a maker: no taker traded it
            owner = self.owner_of[np.asarray(rec.account[self.adl_seen :], dtype=np.int64)]
            lots = np.asarray(rec.lots[self.adl_seen :], dtype=np.float64)
            side = np.asarray(rec.side[self.adl_seen :], dtype=np.float64)  # the winner's side
            self.adl_seen = len(rec.account)
            mine = owner >= 0
            np.add.at(change, owner[mine], side[mine] * lots[mine])  # less ADL's -side * lots on the winner
        flow = np.zeros(self.log_impact.size)
        np.add.at(flow, self.owner_asset, -change * self.owner_base)  # the owners sold what the takers bought
        self.log_impact += self.coef * flow

    def factor(self) -> np.ndarray:
        """Per market: the multiple of its exogenous path the wider market stands at."""
        return np.exp(self.log_impact[self.world.asset_of])
