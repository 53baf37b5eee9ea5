"""Tiered margin: maintenance and initial margin, margin balance and margin ratio.

Rule (Binance, Bybit, OKX, Bitget, Hyperliquid; shared/reference/exchange-rules.md section 3.1):
``MM(N) = N * MMR_k - cum_k`` for notional ``N`` in tier ``k`` (``floor_k < N <= cap_k``), where the maintenance
amount ``cum_k = cum_{k-1} + floor_k * (MMR_k - MMR_{k-1})`` makes ``MM`` continuous across tiers. Initial margin is
``N / leverage`` with ``leverage <= max_leverage_k``. Notional beyond the last cap stays in the last tier (venues
refuse such positions; the simulator keeps them and reports them).

All functions accept scalars or NumPy arrays and broadcast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TierTable:
    """A market's margin tiers as arrays, ordered by notional.

    ``floor``/``cap``: bracket edges, USD notional; ``mmr``: maintenance margin rate, fraction of notional;
    ``maintenance_amount``: the continuity deduction ``cum``, USD; ``max_leverage``: highest leverage in the tier.
    """

    floor: FloatArray
    cap: FloatArray
    mmr: FloatArray
    maintenance_amount: FloatArray
    max_leverage: FloatArray

    @classmethod
    def from_rates(
        cls,
        floors: Sequence[float],
        caps: Sequence[float],
        maintenance_margin_rates: Sequence[float],
        max_leverages: Sequence[float],
    ) -> TierTable:
        """Build a table, deriving each maintenance amount by continuity."""
        floor = np.asarray(floors, dtype=np.float64)
        mmr = np.asarray(maintenance_margin_rates, dtype=np.float64)
        steps = floor[1:] * np.diff(mmr)
        cum = np.concatenate(([0.0], np.cumsum(steps)))
        return cls(
            floor=floor,
            cap=np.asarray(caps, dtype=np.float64),
            mmr=mmr,
            maintenance_amount=cum,
            max_leverage=np.asarray(max_leverages, dtype=np.float64),
        )

    @property
    def tiers(self) -> int:
        return int(self.mmr.shape[0])


def tier_index(table: TierTable, notional: ArrayLike) -> NDArray[np.intp]:
    """Zero-based tier of each notional: the first tier whose cap is at or above it (last tier beyond)."""
    n = np.abs(np.asarray(notional, dtype=np.float64))
    idx = np.searchsorted(table.cap, n, side="left")
    return np.minimum(idx, table.tiers - 1)


def maintenance_margin(table: TierTable, notional: ArrayLike) -> FloatArray:
    """Maintenance margin in USD: ``|N| * MMR_k - cum_k`` for the tier ``k`` of ``|N|``."""
    n = np.abs(np.asarray(notional, dtype=np.float64))
    k = tier_index(table, n)
    return np.asarray(n * table.mmr[k] - table.maintenance_amount[k], dtype=np.float64)


def maintenance_margin_rate(table: TierTable, notional: ArrayLike) -> FloatArray:
    """The tier's maintenance margin rate for each notional (fraction)."""
    return np.asarray(table.mmr[tier_index(table, notional)], dtype=np.float64)


def max_leverage(table: TierTable, notional: ArrayLike) -> FloatArray:
    """Highest leverage allowed at each notional."""
    return np.asarray(table.max_leverage[tier_index(table, notional)], dtype=np.float64)


def initial_margin(notional: ArrayLike, leverage: ArrayLike) -> FloatArray:
    """Initial margin in USD: ``|N| / leverage``."""
    return np.asarray(np.abs(np.asarray(notional, dtype=np.float64)) / np.asarray(leverage), dtype=np.float64)


def unrealised_pnl(side: ArrayLike, size: ArrayLike, entry_price: ArrayLike, price: ArrayLike) -> FloatArray:
    """``s * Q * (price - entry)`` in USD; ``side`` is +1 long, -1 short; ``size`` is positive base units."""
    s = np.asarray(side, dtype=np.float64)
    return np.asarray(
        s * np.asarray(size, dtype=np.float64) * (np.asarray(price) - np.asarray(entry_price)), dtype=np.float64
    )


def margin_balance(wallet_balance: ArrayLike, upnl: ArrayLike) -> FloatArray:
    """Margin balance (Binance) = account value (Hyperliquid) = wallet balance + unrealised PnL, USD."""
    return np.asarray(np.asarray(wallet_balance, dtype=np.float64) + np.asarray(upnl), dtype=np.float64)


def margin_ratio(maintenance: ArrayLike, balance: ArrayLike) -> FloatArray:
    """Binance's margin ratio ``MM / margin balance``; liquidation at >= 1. Infinite when the balance is <= 0."""
    mm = np.asarray(maintenance, dtype=np.float64)
    mb = np.asarray(balance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(mb > 0, mm / np.where(mb > 0, mb, 1.0), np.inf), dtype=np.float64)


def is_liquidatable(maintenance: ArrayLike, balance: ArrayLike) -> NDArray[np.bool_]:
    """The trigger of every mark-price venue: margin balance below maintenance margin."""
    return np.asarray(np.asarray(balance) < np.asarray(maintenance))


def size_premium_margin_ratio(base_ratio: ArrayLike, imf_factor: ArrayLike, size: ArrayLike) -> FloatArray:
    """Drift v2 size premium: ``max(MR0, 0.8 * MR0 + imf_factor * sqrt(|size|))``, size in base units.

    Source: drift-labs/protocol-v2 programs/drift/src/math/margin.rs (calculate_size_premium_liability_weight),
    shared/reference/exchange-rules.md section 3.6. The on-chain precisions (1e4 for ratios, 1e6 for imf_factor,
    1e9 for base) are folded into plain fractions and base units here.
    """
    mr0 = np.asarray(base_ratio, dtype=np.float64)
    premium = 0.8 * mr0 + np.asarray(imf_factor) * np.sqrt(np.abs(np.asarray(size, dtype=np.float64)))
    return np.asarray(np.maximum(mr0, premium), dtype=np.float64)


def open_interest_scaled_imf(
    base_imf: ArrayLike, open_interest: ArrayLike, lower_cap: ArrayLike, upper_cap: ArrayLike
) -> FloatArray:
    """dYdX v4 initial margin fraction: the base below ``lower_cap``, rising linearly to 1.0 at ``upper_cap``.

    Source: dydxprotocol/v4-chain protocol/x/perpetuals/types/liquidity_tier.go (GetInitialMarginQuoteQuantums).
    """
    imf = np.asarray(base_imf, dtype=np.float64)
    lo = np.asarray(lower_cap, dtype=np.float64)
    hi = np.asarray(upper_cap, dtype=np.float64)
    frac = np.clip((np.asarray(open_interest, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return np.asarray(imf + (1.0 - imf) * frac, dtype=np.float64)
