"""Non-USD collateral: holdings, each venue's valuation method, and the revaluation that moves margin balances.

Rule (perpstress.config.venue.CollateralRule; shared/reference/exchange-rules.md sections 3.8 and 7): an account's
margin balance counts ``quantity x price x (1 - haircut)`` of each collateral asset it holds, where ``price`` is
the venue's own: an external index (the asset's fundamental value), the mid of the venue's own spot book, a
conversion rate times the underlying's fundamental value, or a weighted mix of own book and conversion rate, never
below ``price_floor``. The *reference* price is the asset's fundamental value (what USDe traded at elsewhere), or
the conversion value for a conversion-rate pair. Each pair's method (:data:`COLLATERAL_PRICES`, keyed by
``CollateralMethod``: ``index``, ``own_book``, ``conversion_rate``, ``mix``) is looked up once, when the holdings
are built.

Bookkeeping: the haircut value of an account's holdings sits inside its cross wallet (``Accounts.wallet``), so
every margin check, bankruptcy price and ADL score sees it unchanged. A pair's holdings are revalued, and the change
added to the wallets, whenever the pair's haircut price changes; :attr:`value` holds what is in the wallets, so the
USD money check subtracts it and the holdings are conserved separately, in units of each asset.

Trigger bands (:mod:`perpstress.state.triggers`) do not follow every tick of a collateral price: a holder's band is
set as if its collateral were worth ``1 - engine.collateral_band_cushion`` times the pair's *banded* price, and a
pair's holders are re-banded only when its price falls below that. A band is therefore conservative (it fires no
later than an exact one; a fired account is checked exactly), and a calm step re-bands no holder.

Assumptions: collateral backs cross accounts only. A liquidated account's collateral is sold into the venue's own
spot book when it has one (IOC down to ``max_sale_discount`` below the book's best bid; no fee); what is left, and
collateral with no book on the venue, is converted off-book at its haircut margin price (the venue's auto-exchange
against liquidity outside the simulation: a declared external flow, USD in and units out).

A holder whose cross unit closes otherwise (a stop, ADL) converts what it holds off-book at its haircut margin price
*at the close* (:meth:`CollateralHoldings.convert_closed`, called by the mechanism that closed it, before anything
can reprice it): the account repays its USD loan (its negative cash) out of its collateral and is left with cash
only. Why at the close and not later: a unit with nothing open is never margin-checked again, so its equity is
settled once, at the close (the fund, then bad debt:
:meth:`~perpstress.mechanisms.liquidation.LiquidationEngine.settle_gap`), at the collateral price the close saw. A
conversion that waited would leave the closed account exposed to the pair's later moves: a fall
(the venue's own book sold into by the next liquidation, as on October 10) would turn its wallet negative with no
mechanism left to settle it, and whether it did would depend on whether a revaluation happened to run between the
close and the conversion, i.e. on the order of the phases. Charging that later fall to the fund as bad debt instead
would make the venue pay for a price move on an account that had already left the market.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from numba import njit

from perpstress.config.venue import CollateralMethod, CollateralRule
from perpstress.state.portfolio import F64, I64

if TYPE_CHECKING:
    from perpstress.mechanisms.accounting import Accounting


def _band_cushion_py(accounts, row_of, quantity, banded, pair, value, band_cushion, out):  # type: ignore[no-untyped-def]
    """:meth:`CollateralHoldings.band_cushion` into ``out``: per account, its holding row's value less the floor
    ``quantity * banded[pair] * (1 - band_cushion)`` (a NaN floor counts 0, an infinite one the largest float, as
    ``np.nan_to_num`` maps them), at least 0 (NaN kept, as ``np.maximum`` keeps it); 0 without a row."""
    big = np.finfo(np.float64).max
    for j in range(accounts.shape[0]):
        a = accounts[j]
        r = row_of[a] if a < row_of.shape[0] else -1
        if r < 0:
            out[j] = 0.0
            continue
        floor = quantity[r] * banded[pair[r]] * (1.0 - band_cushion)
        if floor != floor:
            floor = 0.0
        elif floor == np.inf:
            floor = big
        elif floor == -np.inf:
            floor = -big
        x = value[r] - floor
        out[j] = x if x > 0.0 or x != x else 0.0


band_cushion_of = njit(cache=True)(_band_cushion_py)
"""Compiled: see :func:`_band_cushion_py`."""


def _revalue_rows_py(rows, quantity, pair, price, value, account, wallet, moved):  # type: ignore[no-untyped-def]
    """Holding rows ``rows`` revalued at ``price`` (per pair): each row's value change added to its account's wallet
    and its value set; the accounts whose value moved by more than a billionth of it (or of $1) written to
    ``moved`` in row order, their count returned."""
    n = 0
    for i in range(rows.size):
        r = rows[i]
        new = quantity[r] * price[pair[r]]
        old = value[r]
        delta = new - old
        size = abs(old)
        if delta > 1e-9 * (size if size > 1.0 else 1.0) or -delta > 1e-9 * (size if size > 1.0 else 1.0):
            moved[n] = account[r]
            n += 1
        wallet[account[r]] += delta
        value[r] = new
    return n


revalue_rows = njit(cache=True)(_revalue_rows_py)
"""Compiled: see :func:`_revalue_rows_py` (a pair's holders, tens of thousands, every step its price moves)."""


class CollateralPricing(Protocol):
    """One collateral method: a pair's margin price before the floor."""

    references_conversion: ClassVar[bool]
    """The pair's reference price is the conversion rate times the underlying (else the asset's own value)."""

    def price(self, rule: CollateralRule, own_value: float, book_price: float, underlying: float) -> float:
        """``own_value``: the asset's fundamental value (the conversion value when it has none); ``book_price``:
        the venue's own spot book (the reference price without one); ``underlying``: the underlying's value."""
        ...


class IndexPricing:
    """``index``: the asset's external index, its fundamental value."""

    references_conversion: ClassVar[bool] = False

    def price(self, rule: CollateralRule, own_value: float, book_price: float, underlying: float) -> float:
        return own_value


class OwnBookPricing:
    """``own_book``: the mid of the venue's own spot book."""

    references_conversion: ClassVar[bool] = False

    def price(self, rule: CollateralRule, own_value: float, book_price: float, underlying: float) -> float:
        return float(book_price)


class ConversionRatePricing:
    """``conversion_rate``: ``rate x`` the underlying's value."""

    references_conversion: ClassVar[bool] = True

    def price(self, rule: CollateralRule, own_value: float, book_price: float, underlying: float) -> float:
        return rule.rate * underlying


class MixPricing:
    """``mix``: ``book_weight x`` own book ``+ (1 - book_weight) x`` conversion rate."""

    references_conversion: ClassVar[bool] = False

    def price(self, rule: CollateralRule, own_value: float, book_price: float, underlying: float) -> float:
        return rule.book_weight * float(book_price) + (1 - rule.book_weight) * rule.rate * underlying


COLLATERAL_PRICES: dict[CollateralMethod, type[CollateralPricing]] = {
    CollateralMethod.INDEX: IndexPricing,
    CollateralMethod.OWN_BOOK: OwnBookPricing,
    CollateralMethod.CONVERSION_RATE: ConversionRatePricing,
    CollateralMethod.MIX: MixPricing,
}
"""The pricing of each ``CollateralMethod``, built once per pair."""


@dataclass(frozen=True)
class CollateralPair:
    """One (venue, asset) rule in use, with the indices the engine resolved for it."""

    venue: int
    asset: str
    rule: CollateralRule
    spot_market: int
    """Market row of the venue's spot book of the asset, -1 when none is simulated."""
    asset_path: int
    """Column of the asset's fundamental value in the exogenous paths."""
    underlying_path: int
    """Column of the underlying's fundamental value, -1 for USDT (1 USD)."""

    @property
    def label(self) -> str:
        return self.asset


class CollateralHoldings:
    """Rows ``(account, pair, quantity)``; ``value`` is each row's haircut USD value currently in the wallet."""

    max_sale_discount = 0.5
    """A liquidation sells collateral down to this fraction below the book's mid (an aggressive IOC)."""

    def __init__(self, pairs: list[CollateralPair], account: I64, pair: I64, quantity: F64) -> None:
        self.pairs = pairs
        self.account = np.asarray(account, dtype=np.int64)
        self.pair = np.asarray(pair, dtype=np.int64)
        self.quantity = np.asarray(quantity, dtype=np.float64)
        self.value = np.zeros(self.account.size)
        self.price = np.full(len(pairs), np.nan)
        """Current margin price of each pair."""
        self.reference = np.full(len(pairs), np.nan)
        self.min_price = np.full(len(pairs), np.inf)
        self.caused = np.zeros(len(pairs), dtype=np.int64)
        """Liquidations that would not have happened with the pair valued at its reference price."""
        self.holders = np.unique(self.account)
        if self.holders.size != self.account.size:
            raise ValueError("collateral holdings: an account holds one collateral row at most")
        self.row_of = np.full(int(self.account.max()) + 1 if self.account.size else 0, -1, dtype=np.int64)
        """Each account's holding row (-1: none), for accounts up to the last holder."""
        self.row_of[self.account] = np.arange(self.account.size)
        self._rows_by_pair = [np.flatnonzero(self.pair == i) for i in range(len(pairs))]
        self._held_rows_by_pair = list(self._rows_by_pair)
        """Each pair's rows that may still hold something (a row sold or converted to nothing is worth nothing at
        any price, so revaluing it changes no wallet); pruned at the next revaluation after rows empty."""
        self._emptied = False
        self._valued = np.full(len(pairs), np.nan)
        """Each pair's haircut price when its rows were last revalued (NaN: never)."""
        self._banded = np.full(len(pairs), np.nan)
        """Each pair's haircut price its holders' trigger bands were last set against (NaN: never)."""
        self.book_price = np.full(len(pairs), np.nan)
        """Each pair's own spot book price (its mid, else its last trade, else the previous; NaN without a book)."""
        self.external_units: dict[str, float] = {}
        """Units converted off-book, by asset (they left the simulation)."""
        self.pricing: list[CollateralPricing] = [COLLATERAL_PRICES[p.rule.method]() for p in pairs]
        """Each pair's pricing, by its rule's method."""

    def row_among(self, accounts: np.ndarray) -> np.ndarray:
        """Each of ``accounts``' holding row (-1: none; accounts past the last holder hold none)."""
        ids = np.asarray(accounts, dtype=np.int64)
        rows = np.full(ids.size, -1, dtype=np.int64)
        known = ids < self.row_of.size
        rows[known] = self.row_of[ids[known]]
        return rows

    def rows_of(self, account: int) -> list[int]:
        """The account's holding rows: its one row, or none."""
        row = int(self.row_of[account]) if account < self.row_of.size else -1
        return [row] if row >= 0 else []

    def prices(self, fundamental: F64, mid: F64, last: F64) -> None:
        """Each pair's margin and reference price from the fundamental paths and the books' mids (last trade when
        a side is empty, the previous book price when there is neither)."""
        for i, (p, pricing) in enumerate(zip(self.pairs, self.pricing, strict=True)):
            rule = p.rule
            under = 1.0 if p.underlying_path < 0 else float(fundamental[p.underlying_path])
            conversion = rule.rate * under
            own_value = float(fundamental[p.asset_path]) if p.asset_path >= 0 else conversion
            self.reference[i] = conversion if pricing.references_conversion else own_value
            if p.spot_market >= 0:
                book = mid[p.spot_market]
                if not np.isfinite(book):
                    book = last[p.spot_market]
                if np.isfinite(book):
                    self.book_price[i] = book
            book_price = self.book_price[i] if np.isfinite(self.book_price[i]) else self.reference[i]
            price = pricing.price(rule, own_value, float(book_price), under)
            self.price[i] = max(price, rule.price_floor)
            self.min_price[i] = min(self.min_price[i], self.price[i])

    def haircut_price(self) -> F64:
        return np.array([self.price[i] * (1 - p.rule.haircut) for i, p in enumerate(self.pairs)])

    def revalue(self, wallet: F64) -> np.ndarray:
        """Move holders' wallets by the change in their holdings' value, for the pairs whose haircut price changed
        (a calm step whose collateral prices stand still touches no holder). Returns the accounts whose value
        moved."""
        if self.account.size == 0:
            return np.zeros(0, dtype=np.int64)
        price = self.haircut_price()
        moved_pairs = np.flatnonzero(price != self._valued)
        if moved_pairs.size == 0:
            return np.zeros(0, dtype=np.int64)
        self._valued[moved_pairs] = price[moved_pairs]
        if self._emptied:  # holdings only ever shrink: an emptied row stays empty
            self._held_rows_by_pair = [r[(self.quantity[r] != 0.0) | (self.value[r] != 0.0)]
                                       for r in self._held_rows_by_pair]  # fmt: skip
            self._emptied = False
        held = self._held_rows_by_pair
        rows = held[moved_pairs[0]] if moved_pairs.size == 1 else np.concatenate([held[i] for i in moved_pairs])
        moved = np.empty(rows.size, dtype=np.int64)
        n = revalue_rows(rows, self.quantity, self.pair, price, self.value, self.account, wallet, moved)
        return moved[:n]

    def fallen_pairs(self, band_cushion: float) -> np.ndarray:
        """Pairs whose haircut price has fallen more than ``band_cushion`` (a fraction) below the price their
        holders' trigger bands allow for (or that were never banded): their holders need new bands. The allowance
        is then reset to the current price."""
        price = self.haircut_price()
        fallen = np.flatnonzero(np.isnan(self._banded) | (price < self._banded * (1.0 - band_cushion)))
        self._banded[fallen] = price[fallen]
        return fallen

    def holders_of(self, pairs: np.ndarray) -> np.ndarray:
        if pairs.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.account[np.concatenate([self._rows_by_pair[i] for i in pairs])], dtype=np.int64)

    def band_cushion(self, accounts: np.ndarray, band_cushion: float) -> np.ndarray:
        """USD each of ``accounts`` may lose on its collateral before its pair is re-banded: its holdings' value
        now less their value at ``1 - band_cushion`` times the pair's banded price (0 for non-holders)."""
        out = np.empty(accounts.size)
        band_cushion_of(np.ascontiguousarray(accounts, dtype=np.int64), self.row_of, self.quantity, self._banded,
                        self.pair, self.value, float(band_cushion), out)  # fmt: skip
        return out

    def shortfall_at_reference(self, account: int) -> float:
        """How much more margin the account would have with its collateral valued at the reference prices."""
        extra = 0.0
        for r in self.rows_of(account):
            p = self.pairs[self.pair[r]]
            extra += self.quantity[r] * (self.reference[self.pair[r]] - self.price[self.pair[r]]) * (1 - p.rule.haircut)
        return extra

    def sold(self, row: int, quantity: float, proceeds: float, wallet: F64) -> None:
        """``quantity`` of row ``row`` sold for ``proceeds`` USD: the wallet swaps the haircut value for cash."""
        share = quantity / self.quantity[row] if self.quantity[row] > 0 else 1.0
        removed = self.value[row] * share
        wallet[self.account[row]] += proceeds - removed
        self.value[row] -= removed
        self.quantity[row] -= quantity
        self._emptied = True

    def convert_off_book(self, row: int) -> float:
        """Convert what is left of ``row`` at its haircut margin value (the wallet already holds that value, so it
        is unchanged); returns the USD that came in from outside."""
        usd = float(self.value[row])
        asset = self.pairs[self.pair[row]].asset
        self.external_units[asset] = self.external_units.get(asset, 0.0) + float(self.quantity[row])
        self.value[row] = 0.0
        self.quantity[row] = 0.0
        self._emptied = True
        return usd

    def convert_closed(self, accounts: Sequence[int], accounting: Accounting) -> float:
        """Convert off-book (:meth:`convert_off_book`), in the order of ``accounts``, what is left of the holdings
        of each of them whose cross unit has nothing open (a closed holder: see the module docstring); returns the
        USD that came in from outside. The wallets are unchanged: they already hold the holdings' haircut value."""
        rows = self.row_among(np.asarray(accounts, dtype=np.int64))
        usd = 0.0
        for r in rows[rows >= 0].tolist():
            if self.quantity[r] > 0 and not accounting.unit_positions(int(self.account[r]), -1):
                usd += self.convert_off_book(r)
        return usd

    def holding_closed(self, size_lots: I64) -> int:
        """Holders with units left whose position (position id = account id) is closed: 0 when every close
        converted its collateral (:meth:`convert_closed`)."""
        held = self.account[self.quantity > 0]
        return int(np.count_nonzero(size_lots[held] == 0))

    def units_by_asset(self) -> dict[str, float]:
        """Units held as collateral plus units that left through off-book conversion, by asset."""
        out: dict[str, float] = dict(self.external_units)
        for i, p in enumerate(self.pairs):
            out[p.asset] = out.get(p.asset, 0.0) + float(self.quantity[self.pair == i].sum())
        return out
