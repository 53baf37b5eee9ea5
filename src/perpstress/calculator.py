"""The margin calculator: one position on one venue, priced by that venue's published rules.

It answers what a trader or risk analyst asks before opening a position: which tier it falls in, its maintenance
and initial margin, and the mark (or oracle) price at which it is liquidated and at which it is bankrupt, isolated
or cross (one-way mode; in cross mode the other positions' maintenance margin and PnL are held fixed, as in
Binance's published formula). dYdX's open-interest scaling of the initial margin is not applied (the calculator does
not know the market's open interest); Drift's size premium is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from perpstress.config.markets import MarginModel, PerpetualMarket
from perpstress.config.venue import MarginMode, VenueConfig
from perpstress.errors import UnknownNameError, UsageError
from perpstress.presets import available_presets
from perpstress.rules import liquidation, margin


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1


@dataclass(frozen=True)
class MarginReport:
    """Everything the calculator prints; prices in quote currency, amounts in USD, tiers 1-based as venues show."""

    venue: str
    symbol: str
    side: str
    mode: str
    price_reference: str
    size: float
    entry_price: float
    mark_price: float
    notional: float
    tier: int
    maintenance_margin_rate: float
    maintenance_amount: float
    maintenance_margin: float
    leverage: float
    max_leverage: float
    initial_margin: float
    collateral: float
    margin_balance: float
    margin_ratio: float
    liquidatable: bool
    liquidation_price: float | None
    liquidation_tier: int | None
    bankruptcy_price: float | None
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["notes"] = list(self.notes)
        if not np.isfinite(self.margin_ratio):
            out["margin_ratio"] = None
        return out


def find_market(venue: VenueConfig, symbol: str) -> PerpetualMarket:
    """The venue's market for ``symbol``: exact, then case-insensitive, then by base asset (``BTCUSDT`` finds
    Hyperliquid's ``BTC`` and dYdX's ``BTC-USD``)."""
    markets = venue.markets()
    if symbol in markets:
        return markets[symbol]
    by_upper = {k.upper(): m for k, m in markets.items()}
    if symbol.upper() in by_upper:
        return by_upper[symbol.upper()]
    base = _base_of(symbol)
    matches = [m for m in markets.values() if m.base.upper() == base]
    if len(matches) == 1:
        return matches[0]
    raise UnknownNameError(f"symbol on {venue.name}", symbol, list(markets))


def _base_of(symbol: str) -> str:
    s = symbol.upper()
    for suffix in ("-USDT-SWAP", "-PERP", "-USDC", "-USDT", "-USD", "USDT", "USDC", "USD"):
        if s.endswith(suffix) and len(s) > len(suffix):
            return s[: -len(suffix)]
    return s


def load_venue(name: str) -> VenueConfig:
    if name not in available_presets():
        raise UnknownNameError("venue", name, available_presets())
    return VenueConfig.model_validate({"preset": name})


def margin_report(
    venue: VenueConfig,
    symbol: str,
    side: Side,
    size: float,
    entry_price: float,
    collateral: float,
    *,
    mode: MarginMode = MarginMode.ISOLATED,
    leverage: float | None = None,
    mark_price: float | None = None,
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
) -> MarginReport:
    """Price one position. ``collateral``: isolated margin (isolated) or cross wallet balance (cross), USD.

    ``leverage`` defaults to the tier's maximum; ``mark_price`` (for the margin balance and ratio) to the entry.
    """
    _check_inputs(size, entry_price, collateral, leverage, mark_price, mode, other_maintenance)
    if mode not in venue.margin_modes:
        raise UsageError(f"{venue.name} has no {mode.value} margin mode")
    market = find_market(venue, symbol)
    table = market.tier_table_for_size(size)
    mark = entry_price if mark_price is None else mark_price
    notional = size * mark
    k = int(margin.tier_index(table, notional))
    mm = float(margin.maintenance_margin(table, notional))
    max_lev = float(table.max_leverage[k])
    lev = max_lev if leverage is None else leverage
    if lev > max_lev:
        raise UsageError(
            f"leverage {lev:g} is above the {max_lev:g}x maximum of {market.symbol} tier {k + 1} "
            f"(notional {notional:,.2f})"
        )
    notes = []
    if notional > market.max_notional():
        notes.append(f"notional exceeds the last tier's cap {market.max_notional():,.0f}: the venue would refuse it")
    if market.margin_model is MarginModel.OPEN_INTEREST_SCALED:
        notes.append("initial margin at the base IMF; dYdX raises it with market open interest")
    other = other_upnl if mode is MarginMode.CROSS else 0.0
    other_mm = other_maintenance if mode is MarginMode.CROSS else 0.0
    s = side.sign
    upnl = s * size * (mark - entry_price)
    balance = collateral + upnl + other
    lp = float(liquidation.liquidation_price(table, s, size, entry_price, collateral, other_mm, other))
    bp = float(liquidation.bankruptcy_price(s, size, entry_price, collateral, other))
    if lp == 0.0:
        notes.append("collateral covers the whole notional: no price liquidates this long")
    if collateral < size * entry_price / lev and mode is MarginMode.ISOLATED:
        notes.append(f"collateral is below the initial margin at {lev:g}x: the venue would not open this position")
    return MarginReport(
        venue=venue.name,
        symbol=market.symbol,
        side=side.value,
        mode=mode.value,
        price_reference=venue.liquidation_price.value,
        size=size,
        entry_price=entry_price,
        mark_price=mark,
        notional=notional,
        tier=k + 1,
        maintenance_margin_rate=float(table.mmr[k]),
        maintenance_amount=float(table.maintenance_amount[k]),
        maintenance_margin=mm,
        leverage=lev,
        max_leverage=max_lev,
        initial_margin=float(margin.initial_margin(notional, lev)),
        collateral=collateral,
        margin_balance=balance,
        margin_ratio=float(margin.margin_ratio(mm + other_mm, balance)),
        liquidatable=bool(balance < mm + other_mm),
        liquidation_price=None if lp == 0.0 or not np.isfinite(lp) else lp,
        liquidation_tier=None if lp == 0.0 or not np.isfinite(lp) else int(margin.tier_index(table, size * lp)) + 1,
        bankruptcy_price=None if bp == 0.0 else bp,
        notes=tuple(notes),
    )


def _check_inputs(
    size: float,
    entry: float,
    collateral: float,
    leverage: float | None,
    mark: float | None,
    mode: MarginMode,
    other_mm: float,
) -> None:
    if not (np.isfinite(size) and size > 0):
        raise UsageError(f"--size must be a positive number of base units, got {size:g}")
    if not (np.isfinite(entry) and entry > 0):
        raise UsageError(f"--entry must be a positive price, got {entry:g}")
    if not (np.isfinite(collateral) and collateral >= 0):
        raise UsageError(f"--collateral must be zero or more, got {collateral:g}")
    if leverage is not None and not (np.isfinite(leverage) and leverage >= 1):
        raise UsageError(f"--leverage must be at least 1, got {leverage:g}")
    if mark is not None and not (np.isfinite(mark) and mark > 0):
        raise UsageError(f"--mark must be a positive price, got {mark:g}")
    if other_mm < 0:
        raise UsageError(f"--other-maintenance must be zero or more, got {other_mm:g}")
