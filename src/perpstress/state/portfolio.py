"""Accounts, positions and markets as a structure of arrays.

Integer ids index everything: ``market`` (0..n_markets-1), ``account`` (0..n_accounts-1), ``position``
(0..n_positions-1). Positions are stored grouped by account (``Accounts.pos_start``/``pos_count`` slice them), so an
account's positions are contiguous and a margin check touches only them. Sizes are signed integer lots (long > 0);
``size_lots * lot_size[market]`` is the size in base units. Money is in USD (quote) as float64.

A *margin unit* is what a venue liquidates as one: a cross account (all its cross positions share its wallet) or one
isolated position (its own margin). ``Positions.isolated_margin`` is NaN for cross positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from perpstress.rules.margin import TierTable

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


@dataclass
class Markets:
    """Static per-market parameters; tier tables padded to the widest table (unused tiers have cap = inf)."""

    venue: I32
    lot_size: F64
    tick_size: F64
    tier_cap: F64
    """(n_markets, max_tiers) upper notional edge of each tier, USD; padding is +inf."""
    tier_mmr: F64
    tier_cum: F64
    tier_max_leverage: F64
    mark: F64 = field(default_factory=lambda: np.zeros(0))
    """Current price each market margins on (mark or oracle, by venue), quote units."""

    @classmethod
    def from_tables(
        cls, venue: list[int], lot_size: list[float], tick_size: list[float], tables: list[TierTable]
    ) -> Markets:
        n = len(tables)
        width = max(t.tiers for t in tables)
        cap = np.full((n, width), np.inf)
        mmr = np.zeros((n, width))
        cum = np.zeros((n, width))
        lev = np.ones((n, width))
        for i, t in enumerate(tables):
            cap[i, : t.tiers - 1] = t.cap[:-1]  # the last tier is open-ended in the simulation
            mmr[i, : t.tiers] = t.mmr
            mmr[i, t.tiers :] = t.mmr[-1]
            cum[i, : t.tiers] = t.maintenance_amount
            cum[i, t.tiers :] = t.maintenance_amount[-1]
            lev[i, : t.tiers] = t.max_leverage
            lev[i, t.tiers :] = t.max_leverage[-1]
        return cls(
            venue=np.asarray(venue, dtype=np.int32),
            lot_size=np.asarray(lot_size, dtype=np.float64),
            tick_size=np.asarray(tick_size, dtype=np.float64),
            tier_cap=cap,
            tier_mmr=mmr,
            tier_cum=cum,
            tier_max_leverage=lev,
            mark=np.zeros(n),
        )

    @property
    def n(self) -> int:
        return int(self.venue.shape[0])


@dataclass
class Accounts:
    """Per-account arrays. ``wallet`` is the cross wallet balance (realised, excluding isolated margins), USD."""

    venue: I32
    wallet: F64
    pos_start: I64
    pos_count: I32

    @property
    def n(self) -> int:
        return int(self.venue.shape[0])


@dataclass
class Positions:
    """Per-position arrays, grouped by account."""

    account: I32
    market: I32
    size_lots: I64
    entry_price: F64
    isolated_margin: F64
    """USD margin of an isolated position; NaN for a cross position."""

    @property
    def n(self) -> int:
        return int(self.account.shape[0])

    @property
    def isolated(self) -> NDArray[np.bool_]:
        return ~np.isnan(self.isolated_margin)


def group_by_account(n_accounts: int, account_of_position: I32) -> tuple[I64, I32]:
    """``pos_start``/``pos_count`` for positions already sorted by account."""
    acct = np.asarray(account_of_position)
    if acct.size and np.any(np.diff(acct) < 0):
        raise ValueError("positions must be sorted by account")
    counts = np.bincount(acct, minlength=n_accounts).astype(np.int32)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return starts, counts
