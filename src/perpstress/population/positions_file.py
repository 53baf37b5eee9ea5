"""Bring your own positions: load a positions snapshot (CSV or Parquet) and validate it against a scenario.

A snapshot has one row per position, one-way mode (one position per account and market):

| column | meaning |
| --- | --- |
| ``venue`` | a venue of the scenario (``binance``) |
| ``account`` | the account's id on that venue (any text; ``(venue, account)`` names an account) |
| ``market`` | the perpetual's symbol as in the venue preset (``BTCUSDT`` on Binance, ``BTC`` on Hyperliquid) |
| ``side`` | ``long`` or ``short`` |
| ``size`` | base units, > 0, a whole number of the market's lots |
| ``entry_price`` | quote units, > 0 |
| ``margin_mode`` | ``cross`` or ``isolated`` |
| ``collateral`` | USD, > 0: an isolated position's margin; on cross rows the account's cross wallet (see below) |
| ``collateral_asset`` | optional: the asset the margin is held in (see below) |

``collateral`` on a cross row is the account's whole cross wallet balance, the same value repeated on each of the
account's cross rows (not a share of it). ``collateral_asset`` defaults to the market's settlement asset (``USDT``;
``USDC`` on Hyperliquid and dYdX); a cross row may name a collateral asset the venue accepts (``USDE`` on Binance).

Rules, each reported with the file, the line (CSV: the line number an editor shows, header = line 1; Parquet: the
1-based data row) and the field:

- every column above present (``collateral_asset`` may be absent); numbers finite; text values as listed;
- venue and market exist in the scenario; ``(venue, account, market)`` unique;
- ``size`` a whole number of lots. A size that is not is **rejected, not rounded**: rounding would silently change
  the position a user asked to simulate;
- notional at entry (``size x entry_price``) within the market's largest tier cap;
- isolated: leverage ``notional / collateral`` at most the tier's maximum leverage at that notional;
- cross: the account's wallet the same on each of its cross rows, and at least the initial margin of all its cross
  positions at their tiers' maximum leverage (``sum N_i / max_leverage_i``): the cross form of the same rule.

A file with any bad row is refused whole (:class:`perpstress.errors.DataError`, one line per problem, the first
:data:`MAX_REPORTED` shown); rows are never dropped silently.

Assumptions: collateral amounts are USD values (collateral in USDe or another asset is its value at the snapshot's
prices); a position's entry price need not be a tick multiple (it is an average); positions that a price move has
already made liquidatable at the scenario's start are accepted (they liquidate at the first step).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from perpstress.config.scenario import Scenario
from perpstress.errors import DataError, UsageError
from perpstress.population.crowd import CrowdPositions
from perpstress.rules.margin import TierTable, tier_index
from perpstress.state.portfolio import F64, I32, I64

REQUIRED_COLUMNS = ("venue", "account", "market", "side", "size", "entry_price", "margin_mode", "collateral")
OPTIONAL_COLUMNS = ("collateral_asset",)
DEFAULT_COLLATERAL_ASSET = "USDT"
MAX_NUMBER = 1e15
"""Sizes, prices and collateral above this are refused (no position or account is a quadrillion of anything)."""
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)
"""A number as CSV writes it (NaN and infinity are recognised, to be refused as not finite)."""
MAX_REPORTED = 50
"""Problems listed in a :class:`DataError` before ``... and N more``."""
_LOT_SLACK = 1e-6
"""A size is a whole number of lots when ``|size / lot - round(size / lot)| <= 1e-6`` (float rounding only)."""
_LEVERAGE_SLACK = 1e-9
"""Relative slack on the leverage and cap checks (float rounding of ``size x entry_price``)."""


@dataclass(frozen=True)
class PositionsSnapshot:
    """A validated snapshot as columns, one row per position in file order.

    ``market`` indexes :attr:`market_keys`, the scenario's perpetual markets in the order the simulation numbers
    them (venues in scenario order, each venue's perpetuals in preset order), so it is the simulation's market index.
    """

    source: str
    market_keys: tuple[str, ...]
    """``venue:SYMBOL`` of every perpetual market of the scenario."""
    accounts: tuple[tuple[str, str], ...]
    """``(venue, account)`` of each account index, in order of first appearance."""
    line: I64
    """Line (CSV) or data row (Parquet) each position came from."""
    account: I64
    market: I32
    size_lots: I64
    """Signed whole lots: long > 0."""
    lot_size: F64
    """Base units per lot of each position's market."""
    entry_price: F64
    isolated: NDArray[np.bool_]
    collateral: F64
    """USD: the isolated margin, or the account's cross wallet (repeated on each of its cross rows)."""
    collateral_asset: NDArray[np.str_]

    @property
    def n(self) -> int:
        return int(self.market.shape[0])

    @property
    def size(self) -> F64:
        """Signed size in base units."""
        return np.asarray(self.size_lots * self.lot_size, dtype=np.float64)

    @property
    def notional_at_entry(self) -> F64:
        """``|size| x entry_price``, USD."""
        return np.asarray(np.abs(self.size) * self.entry_price, dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """Accounts, positions, and notional at entry by venue and market with each side's share (JSON-ready)."""
        notional = self.notional_at_entry
        long = self.size_lots > 0
        by_market: dict[str, dict[str, float | int]] = {}
        for m in np.unique(self.market):
            sel = self.market == m
            total = float(math.fsum(notional[sel]))
            by_market[self.market_keys[int(m)]] = {
                "positions": int(sel.sum()),
                "accounts": int(np.unique(self.account[sel]).size),
                "notional_usd": total,
                "long_notional_usd": float(math.fsum(notional[sel & long])),
                "long_share": float(math.fsum(notional[sel & long]) / total) if total else 0.0,
            }
        venue_of_account = np.array([v for v, _ in self.accounts], dtype=np.str_)
        by_venue: dict[str, dict[str, float | int]] = {}
        for key, row in by_market.items():
            venue = key.split(":", 1)[0]
            agg = by_venue.setdefault(venue, {"positions": 0, "notional_usd": 0.0, "long_notional_usd": 0.0})
            agg["positions"] = int(agg["positions"]) + int(row["positions"])
            agg["notional_usd"] = float(agg["notional_usd"]) + float(row["notional_usd"])
            agg["long_notional_usd"] = float(agg["long_notional_usd"]) + float(row["long_notional_usd"])
        for venue, agg in by_venue.items():
            agg["accounts"] = int((venue_of_account == venue).sum())
            agg["long_share"] = float(agg["long_notional_usd"]) / float(agg["notional_usd"])
        total = float(math.fsum(notional))
        return {
            "source": self.source,
            "accounts": len(self.accounts),
            "positions": self.n,
            "isolated_positions": int(self.isolated.sum()),
            "notional_usd": total,
            "long_share": float(math.fsum(notional[long]) / total) if total else 0.0,
            "by_venue": by_venue,
            "by_market": by_market,
        }


def scenario_market_keys(scenario: Scenario) -> list[str]:
    """The scenario's perpetual markets as ``venue:SYMBOL``, in the simulation's market order."""
    return [f"{name}:{symbol}" for name, venue in scenario.venues.items() for symbol in venue.markets()]


def load_positions(path: str | Path, scenario: Scenario) -> PositionsSnapshot:
    """Read and validate a snapshot (``.csv`` or ``.parquet``) against ``scenario``.

    Raises :class:`DataError` listing every bad row (file refused whole), :class:`UsageError` for a missing file or
    an unknown format.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such positions file")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        header, rows = _read_csv(p)
        where = "line"
    elif suffix in (".parquet", ".pq"):
        header, rows = _read_parquet(p)
        where = "row"
    else:
        raise UsageError(f"{p}: unknown positions format {suffix or '(no suffix)'}; use .csv or .parquet")
    return _validate(str(p), header, rows, where, scenario)


# --- reading ---------------------------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[tuple[str, list[str]], Iterator[tuple[int, list[Any]]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError([f"{path}: empty file: expected a header line ({', '.join(REQUIRED_COLUMNS)})"]) from None
    except csv.Error as exc:
        raise DataError([f"{path}: line 1: not valid CSV ({exc})"]) from None

    def rows() -> Iterator[tuple[int, list[Any]]]:
        previous = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError([f"{path}: line {reader.line_num}: not valid CSV ({exc})"]) from None
            start = previous + 1  # a quoted field may span lines: report the record's first line
            previous = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue  # blank lines carry no position
            yield start, row

    return ("csv", header), rows()


def _read_parquet(path: Path) -> tuple[tuple[str, list[str]], Iterator[tuple[int, list[Any]]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        raise DataError([f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})"]) from None
    header = list(table.column_names)
    problems = []
    for i, name in enumerate(header):
        kind = table.schema.field(i).type
        wanted = _PARQUET_KINDS.get(str(name).strip().lower())
        if wanted is not None and not any(test(kind) for test in wanted[1]):
            problems.append(f"{path}: column {name}: Parquet type {kind} where {wanted[0]} belongs")
    if problems:
        raise DataError(problems)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for i in range(table.num_rows):
            yield i + 1, [col[i] for col in columns]

    return ("parquet", header), rows()


_Kind = tuple[str, tuple[Callable[[Any], bool], ...]]


def _parquet_kinds() -> dict[str, _Kind]:
    import pyarrow.types as pt

    numbers: _Kind = ("a number column (integer or floating point)", (pt.is_integer, pt.is_floating))
    text: _Kind = ("a text column (string)", (pt.is_string, pt.is_large_string, pt.is_dictionary))
    ids = (
        "a text or number column",
        (pt.is_string, pt.is_large_string, pt.is_dictionary, pt.is_integer, pt.is_floating),
    )
    kinds: dict[str, _Kind] = {name: text for name in ("venue", "market", "side", "margin_mode", "collateral_asset")}
    kinds.update({name: numbers for name in ("size", "entry_price", "collateral")})
    kinds["account"] = ids
    return kinds


_PARQUET_KINDS = _parquet_kinds()
"""Per column, the Parquet types it may have (a binary or boolean column is not read as numbers or names)."""


# --- validation ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MarketInfo:
    index: int
    key: str
    lot: float
    table: TierTable
    quote: str
    accepted: frozenset[str]


class _Problems:
    """Problems found so far, each kept with its line so the report reads in file order."""

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        self.lines: list[tuple[int, str]] = []

    def add(self, line: int, field: str, message: str) -> None:
        self.lines.append((line, f"{self.source}: {self.where} {line}: {field}: {message}"))

    def raise_if_any(self) -> None:
        if not self.lines:
            return
        ordered = [text for _, text in sorted(self.lines, key=lambda x: x[0])]
        shown = ordered[:MAX_REPORTED]
        if len(ordered) > MAX_REPORTED:
            shown.append(f"{self.source}: ... and {len(ordered) - MAX_REPORTED} more problems (file refused)")
        raise DataError(shown)


def _validate(
    source: str,
    header_info: tuple[str, list[str]],
    rows: Iterator[tuple[int, list[Any]]],
    where: str,
    scenario: Scenario,
) -> PositionsSnapshot:
    kind, raw_header = header_info
    header = [str(h).strip().lower() for h in raw_header]
    head_where = "line 1" if kind == "csv" else "columns"
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing or dupes:
        header_problems = []
        if missing:
            header_problems.append(
                f"{source}: {head_where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(required: {', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)})"
            )
        if dupes:
            plural = "s" if len(dupes) > 1 else ""
            header_problems.append(f"{source}: {head_where}: column{plural} {', '.join(dupes)} appear more than once")
        raise DataError(header_problems)
    col = {name: header.index(name) for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if name in header}

    keys = scenario_market_keys(scenario)
    markets: dict[tuple[str, str], _MarketInfo] = {}
    for i, key in enumerate(keys):
        venue_name, symbol = key.split(":", 1)
        venue = scenario.venues[venue_name]
        market = venue.markets()[symbol]
        accepted = frozenset({market.quote.upper(), *(a.upper() for a in venue.collateral)})
        markets[(venue_name, symbol)] = _MarketInfo(i, key, market.lot_size, market.tier_table(), market.quote.upper(),
                                                    accepted)  # fmt: skip
    symbols_of = {name: list(venue.markets()) for name, venue in scenario.venues.items()}

    problems = _Problems(source, where)
    good: list[tuple[int, str, str, _MarketInfo, int, float, bool, float, str]] = []
    cross_rows: list[_CrossRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    n_rows = 0
    for line, row in rows:
        n_rows += 1
        if kind == "csv" and len(row) != len(header):
            problems.add(line, "(row)", f"{len(row)} fields where the header has {len(header)}")
            continue
        cell = {name: row[i] for name, i in col.items()}
        ok = True

        venue_name = _text(cell["venue"]).lower()
        account = _account(cell["account"])
        symbol = _text(cell["market"])
        info: _MarketInfo | None = None
        if not venue_name:
            problems.add(line, "venue", "missing value")
            ok = False
        elif venue_name not in scenario.venues:
            problems.add(line, "venue", f"{venue_name!r} is not a venue of scenario {scenario.name} "
                                        f"({', '.join(scenario.venues)})")  # fmt: skip
            ok = False
        if not account:
            problems.add(line, "account", "missing value")
            ok = False
        if not symbol:
            problems.add(line, "market", "missing value")
            ok = False
        elif venue_name in scenario.venues:
            info = markets.get((venue_name, symbol))
            if info is None:
                problems.add(line, "market", f"{symbol!r} is not a perpetual of {venue_name} in scenario "
                                             f"{scenario.name} ({', '.join(symbols_of[venue_name])})")  # fmt: skip
                ok = False

        side_text = _text(cell["side"]).lower()
        if side_text not in ("long", "short"):
            problems.add(line, "side", f"{_show(cell['side'])} must be long or short")
            ok = False
        mode_text = _text(cell["margin_mode"]).lower()
        if mode_text not in ("cross", "isolated"):
            problems.add(line, "margin_mode", f"{_show(cell['margin_mode'])} must be cross or isolated")
            ok = False
        size = _positive(problems, line, "size", cell["size"])
        entry = _positive(problems, line, "entry_price", cell["entry_price"])
        collateral = _positive(problems, line, "collateral", cell["collateral"])
        asset = _text(cell.get("collateral_asset")).upper() or (info.quote if info else DEFAULT_COLLATERAL_ASSET)
        if size is None or entry is None or collateral is None:
            ok = False

        lots = 0
        whole = False
        if info is not None and size is not None:
            exact = size / info.lot
            lots = round(exact)
            whole = abs(exact - lots) <= _LOT_SLACK and lots >= 1
            if not whole:
                problems.add(line, "size", f"{size!r} is not a whole number of {info.key} lots ({info.lot:g} base "
                                           "units each); rejected rather than rounded")  # fmt: skip
                ok = False
        if info is not None:
            if asset not in info.accepted:
                problems.add(line, "collateral_asset", f"{asset!r} is not accepted as margin by {venue_name} "
                                                       f"(accepted: {', '.join(sorted(info.accepted))})")  # fmt: skip
                ok = False
            elif mode_text == "isolated" and asset != info.quote:
                msg = f"isolated margin is held in {info.key}'s settlement asset {info.quote}; {asset} needs cross mode"
                problems.add(line, "collateral_asset", msg)
                ok = False
        if info is not None and whole and entry is not None:
            notional = lots * info.lot * entry
            cap = float(info.table.cap[-1])
            if notional > cap * (1 + _LEVERAGE_SLACK):
                problems.add(line, "size", f"notional {notional:,.2f} (size x entry_price) is above {info.key}'s "
                                           f"largest tier cap {cap:,.0f}")  # fmt: skip
                ok = False
            elif mode_text == "isolated" and collateral is not None and asset == info.quote:
                k = int(tier_index(info.table, notional))
                limit = float(info.table.max_leverage[k])
                leverage = notional / collateral
                if leverage > limit * (1 + _LEVERAGE_SLACK):
                    problems.add(line, "collateral", f"leverage {leverage:.4g}x (notional {notional:,.2f} / "
                                 f"collateral {collateral:,.2f}) is above the {limit:g}x maximum of {info.key}'s "
                                 f"tier {k + 1}")  # fmt: skip
                    ok = False
        if venue_name and account and info is not None:
            ident = (venue_name, account, symbol)
            if ident in seen:
                problems.add(line, "market", f"duplicate of {where} {seen[ident]}: ({venue_name}, {account}, "
                                             f"{symbol}) appears twice; one-way mode holds one position per "
                                             "account and market")  # fmt: skip
                ok = False
            else:
                seen[ident] = line
        if mode_text == "cross" and venue_name in scenario.venues and account and collateral is not None:
            initial_margin = None
            if ok and info is not None and entry is not None:
                notional = lots * info.lot * entry
                initial_margin = notional / float(info.table.max_leverage[int(tier_index(info.table, notional))])
            cross_rows.append(_CrossRow(line, (venue_name, account), collateral, asset, initial_margin))
        if ok and info is not None and size is not None and entry is not None and collateral is not None:
            side = 1 if side_text == "long" else -1
            good.append((line, venue_name, account, info, side * lots, entry, mode_text == "isolated", collateral,
                         asset))  # fmt: skip

    if n_rows == 0:
        problems.lines.append((0, f"{source}: no positions: the file has a header and no data rows"))
    _check_cross_accounts(problems, cross_rows, where)
    problems.raise_if_any()
    return _build(source, keys, good)


@dataclass(frozen=True)
class _CrossRow:
    """A cross row whose account and collateral parsed; ``initial_margin`` None when the rest of it did not."""

    line: int
    account: tuple[str, str]
    wallet: float
    asset: str
    initial_margin: float | None


def _check_cross_accounts(problems: _Problems, rows: list[_CrossRow], where: str) -> None:
    """One wallet per cross account, repeated on each cross row, covering the initial margin at maximum leverage
    (checked when every cross row of the account is otherwise valid)."""
    first: dict[tuple[str, str], _CrossRow] = {}
    initial: dict[tuple[str, str], float | None] = {}
    lines: dict[tuple[str, str], list[int]] = {}
    bad: set[tuple[str, str]] = set()
    for row in rows:
        acct = row.account
        im = initial.get(acct, 0.0)
        initial[acct] = None if im is None or row.initial_margin is None else im + row.initial_margin
        lines.setdefault(acct, []).append(row.line)
        if acct not in first:
            first[acct] = row
            continue
        row0 = first[acct]
        if not math.isclose(row.wallet, row0.wallet, rel_tol=1e-12, abs_tol=0.0):
            msg = f"{row.wallet:,.2f} differs from {row0.wallet:,.2f} on {where} {row0.line}: a cross account's"
            problems.add(row.line, "collateral", msg + " wallet must be the same on each of its cross rows")
            bad.add(acct)
        if row.asset != row0.asset:
            msg = f"{row.asset} differs from {row0.asset} on {where} {row0.line}: a cross account's wallet is held"
            problems.add(row.line, "collateral_asset", msg + " in one asset here")
            bad.add(acct)
    for acct, row0 in first.items():
        im = initial[acct]
        if acct in bad or im is None:
            continue
        if row0.wallet < im * (1 - _LEVERAGE_SLACK):
            at = ", ".join(str(x) for x in lines[acct][:10]) + (" ..." if len(lines[acct]) > 10 else "")
            msg = f"cross wallet {row0.wallet:,.2f} of account {acct[1]} on {acct[0]} is below the initial margin"
            problems.add(row0.line, "collateral", f"{msg} {im:,.2f} of its cross positions at their tiers' maximum "
                                                  f"leverage ({where}s {at})")  # fmt: skip


def _build(
    source: str, keys: list[str], good: list[tuple[int, str, str, _MarketInfo, int, float, bool, float, str]]
) -> PositionsSnapshot:
    account_ids: dict[tuple[str, str], int] = {}
    account = np.empty(len(good), dtype=np.int64)
    for i, (_, venue, acct, *_rest) in enumerate(good):
        account[i] = account_ids.setdefault((venue, acct), len(account_ids))
    return PositionsSnapshot(
        source=source,
        market_keys=tuple(keys),
        accounts=tuple(account_ids),
        line=np.array([g[0] for g in good], dtype=np.int64),
        account=account,
        market=np.array([g[3].index for g in good], dtype=np.int32),
        size_lots=np.array([g[4] for g in good], dtype=np.int64),
        lot_size=np.array([g[3].lot for g in good], dtype=np.float64),
        entry_price=np.array([g[5] for g in good], dtype=np.float64),
        isolated=np.array([g[6] for g in good], dtype=bool),
        collateral=np.array([g[7] for g in good], dtype=np.float64),
        collateral_asset=np.array([g[8] for g in good], dtype=np.str_),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _account(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a Parquet float column of ids: 12.0 and "12" are the same account
    return _text(value)


def _show(value: Any) -> str:
    text = _text(value)
    return repr(text) if text else "missing value"


def _positive(problems: _Problems, line: int, field: str, value: Any) -> float | None:
    """A finite number > 0 and at most :data:`MAX_NUMBER`, or None after recording the problem. In CSV a number is
    written plainly (``1500``, ``0.25``, ``1e-3``; not ``1_500`` or ``0x10``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.add(line, field, "missing value")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add(line, field, f"{_show(value)} is not a number")
        return None
    if isinstance(value, str) and not _PLAIN_NUMBER.fullmatch(value.strip()):
        problems.add(line, field, f"{_show(value)} is not a number")
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        problems.add(line, field, f"{_show(value)} is not a number")
        return None
    if not math.isfinite(number):
        problems.add(line, field, f"{_show(value)} is not a finite number")
        return None
    if number <= 0:
        problems.add(line, field, f"{number:g} must be greater than 0")
        return None
    if number > MAX_NUMBER:
        problems.add(line, field, f"{number:g} is above {MAX_NUMBER:g}, larger than any position or account")
        return None
    return number


# --- into the simulation ---------------------------------------------------------------------------------------


def positions_to_crowd(snapshot: PositionsSnapshot) -> CrowdPositions:
    """The snapshot as :class:`CrowdPositions` (one row per position, in file order), ready for the engine.

    The engine's crowd holds one position per account, so a cross account with several cross positions is split:
    each position gets a share of the account's wallet pro rata to its notional at entry (an account with one cross
    position keeps its whole wallet). Isolated positions keep their margin. No stops, no top-up reserve.
    """
    margin = snapshot.collateral.copy()
    cross = ~snapshot.isolated
    if cross.any():
        notional = snapshot.notional_at_entry
        per_account = np.bincount(snapshot.account[cross], weights=notional[cross], minlength=len(snapshot.accounts))
        margin[cross] = snapshot.collateral[cross] * notional[cross] / per_account[snapshot.account[cross]]
    n = snapshot.n
    return CrowdPositions(
        market=snapshot.market.astype(np.int32),
        size_lots=snapshot.size_lots.astype(np.int64),
        entry_price=snapshot.entry_price.copy(),
        margin=margin,
        isolated=snapshot.isolated.copy(),
        stop_price=np.full(n, np.nan),
        topup_reserve=np.zeros(n),
    )


__all__ = [
    "MAX_REPORTED",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "PositionsSnapshot",
    "load_positions",
    "positions_to_crowd",
    "scenario_market_keys",
]
