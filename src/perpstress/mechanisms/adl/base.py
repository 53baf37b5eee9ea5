"""What every ADL rule shares: the request it answers, the fills it records, and the book it closes against.

A rule (:class:`AdlRule`) answers an :class:`AdlRequest` (a bankrupt remainder the fund could not take) by closing
opposite positions in the same market, or, for a socialised-loss venue, by closing nothing and telling the
liquidation side to charge the loss to every open position. :class:`AdlBook` holds the shared steps: candidates
(opposite positions, in profit at mark for the ranked and pro-rata rules), a fill of both sides at the rule's
price, and the candidates' unit balances (for scores and leverage). :func:`round_to_lots` rounds an allocation to
whole lots, never above a position's size, so ADL never raises anyone's exposure and open interest stays balanced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Protocol

import numpy as np

from perpstress.config.venue import AdlPrice
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import kernels
from perpstress.mechanisms.margin_kernels import isolated_balances, unit_balances
from perpstress.state.events import EventColumns
from perpstress.state.membership import Membership
from perpstress.state.portfolio import F64


@dataclass(frozen=True)
class AdlRequest:
    """A bankrupt remainder the fund could not take: ``lots`` of ``position`` (signed like the position) to close
    against opposite winners at ``bankruptcy_price``."""

    venue: int
    market: int
    account: int
    position: int
    lots: int
    bankruptcy_price: float


@dataclass
class AdlRecord(EventColumns):
    """One row per ADL fill: who was hit, by how much, at what price, the loss versus closing at mark, and the
    winner's PnL on the closed quantity (``winner_pnl_usd``: the fill price against the winner's entry, realised by
    the close; what ADL took from a winner in profit, the measure of Chitra et al.'s ADL budget)."""

    ts_ms: list[int] = field(default_factory=list)
    venue: list[int] = field(default_factory=list)
    market: list[int] = field(default_factory=list)
    bankrupt_account: list[int] = field(default_factory=list)
    account: list[int] = field(default_factory=list)
    side: list[int] = field(default_factory=list)
    lots: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    mark: list[float] = field(default_factory=list)
    notional_usd: list[float] = field(default_factory=list)
    loss_vs_mark_usd: list[float] = field(default_factory=list)
    winner_pnl_usd: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class AdlPrices:
    """The prices a rule may close at besides the request's bankruptcy price, per market."""

    previous_mark: F64
    index: F64
    fund_empty: bool
    """The venue's fund is (nearly) empty: OKX then closes at the bankruptcy price."""


def round_to_lots(amounts: F64, caps: np.ndarray, total: int) -> np.ndarray:
    """Whole lots summing to ``min(total, caps.sum())``, each within its cap: floors first, then one lot at a time
    to the largest remainders, then (if caps forced it) to whoever still has room."""
    caps = np.asarray(caps, dtype=np.int64)
    total = int(min(total, int(caps.sum())))
    base = np.minimum(np.floor(amounts + 1e-9).astype(np.int64), caps)
    short = total - int(base.sum())
    order = np.argsort(-(amounts - np.floor(amounts + 1e-9)), kind="stable")
    for i in order:
        if short <= 0:
            break
        if base[i] < caps[i]:
            base[i] += 1
            short -= 1
    for i in order:
        if short <= 0:
            break
        add = int(min(caps[i] - base[i], short))
        base[i] += add
        short -= add
    return np.asarray(base, dtype=np.int64)


def price_of(rule: AdlPrice, request: AdlRequest, mark: float, prices: AdlPrices) -> float:
    """The close price a rule names, for ``request``'s market."""
    m = request.market
    return {
        AdlPrice.BANKRUPTCY: request.bankruptcy_price,
        AdlPrice.MARK: mark,
        AdlPrice.PREVIOUS_MARK: float(prices.previous_mark[m]),
        AdlPrice.ORACLE: float(prices.index[m]),
    }[rule]


class AdlBook:
    """The positions ADL closes against, grouped by market once at build (positions never change market)."""

    def __init__(self, accounting: Accounting, record: AdlRecord, outside: np.ndarray | None = None) -> None:
        """``outside``: positions never ADL candidates (the absorbers of forced flow)."""
        self.accounting = accounting
        self.record = record
        market = accounting.positions.market
        order = np.argsort(market, kind="stable")
        if outside is not None and outside.size:
            order = order[~np.isin(order, outside)]
        bounds = np.searchsorted(market[order], np.arange(accounting.markets.n + 1))
        self._by_market = [order[bounds[m] : bounds[m + 1]] for m in range(accounting.markets.n)]
        self.accounts = Membership(accounting.accounts.n)
        """Membership among accounts, for a rule's filters (the bankrupt accounts' own positions out)."""
        """Position ids per market, so candidate scans stay within one market."""
        self.compiled = True
        """Rules walk their queues compiled where they can (:mod:`~perpstress.mechanisms.adl.kernels`); False: the
        Python walk everywhere, the reference."""

    def candidates(self, m: int, side: int, profitable: bool) -> np.ndarray:
        """Open positions in market ``m`` on the side opposite ``side`` (in profit at mark if ``profitable``)."""
        acc = self.accounting
        pos, mk = acc.positions, acc.markets
        ids = self._by_market[m]
        cand = ids[np.sign(pos.size_lots[ids]) == -side]
        if profitable and cand.size:
            upnl = pos.size_lots[cand] * mk.lot_size[m] * (mk.mark[m] - pos.entry_price[cand])
            cand = cand[upnl > 0]
        return np.asarray(cand, dtype=np.int64)

    @cached_property
    def market_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The candidate scans' positions by market in one array (each market's ids in order) and where each
        market's run starts, for the compiled rules."""
        order = np.concatenate([*self._by_market, np.zeros(0, np.int64)]).astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum([ids.size for ids in self._by_market])]).astype(np.int64)
        return order, bounds

    def fill(self, ts_ms: int, request: AdlRequest, p: int, n: int, side: int, price: float) -> None:
        """Close ``n`` lots of winner ``p`` and of the bankrupt position against each other at ``price``."""
        acc = self.accounting
        mk = acc.markets
        m = request.market
        mark = float(mk.mark[m])
        base = n * mk.lot_size[m]
        pnl = -side * base * (price - acc.positions.entry_price[p])
        w_unit = acc.unit_of(p)
        acc.close(*w_unit, p, n * side, price)  # the winner's opposite position shrinks
        acc.close(*acc.unit_of(request.position), request.position, -n * side, price)
        self.record.add(ts_ms, request.venue, m, request.account, w_unit[0], -side, n, price, mark, base * price,
                        -side * base * (mark - price), float(pnl))  # fmt: skip

    def units(self, cand: np.ndarray) -> tuple[F64, F64, F64]:
        """Equity, maintenance requirement and collateral of each candidate's unit, vectorised."""
        acc = self.accounting
        pos, mk, accounts = acc.positions, acc.markets, acc.accounts
        tiers = (mk.tier_cap, mk.tier_mmr, mk.tier_cum)
        equity = np.empty(cand.size)
        requirement = np.empty(cand.size)
        collateral = np.empty(cand.size)
        iso = ~np.isnan(pos.isolated_margin[cand])
        if (~iso).any():
            owners = pos.account[cand[~iso]].astype(np.int32)
            bal, req = unit_balances(owners, accounts.pos_start, accounts.pos_count, accounts.wallet, pos.market,
                                     pos.size_lots, pos.entry_price, pos.isolated_margin, mk.lot_size, mk.mark,
                                     *tiers)  # fmt: skip
            equity[~iso], requirement[~iso], collateral[~iso] = bal, req, accounts.wallet[owners]
        if iso.any():
            ids = cand[iso].astype(np.int64)
            bal, req = isolated_balances(ids, pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin,
                                         mk.lot_size, mk.mark, *tiers)  # fmt: skip
            equity[iso], requirement[iso], collateral[iso] = bal, req, pos.isolated_margin[ids]
        return equity, requirement, collateral


class AdlRule(Protocol):
    """One venue's ADL rule, built once per venue as ``rule(config, book, rng)``."""

    socialises_losses: ClassVar[bool]
    """The rule closes nothing: a bankrupt unit's uncovered loss is charged to every open position in its market
    (asked by the liquidation side's gap settlement) instead of being recorded as bad debt."""
    queues_per_round: ClassVar[bool]
    """A round's requests are grouped per (market, side) and walk one queue snapshot (:meth:`execute_round`)
    after the round's other requests; otherwise each request is executed in turn (:meth:`execute`)."""

    def __init__(self, config: Any, book: AdlBook, rng: np.random.Generator) -> None: ...

    def execute(self, ts_ms: int, request: AdlRequest, prices: AdlPrices) -> int:
        """Close ``request`` against winners; returns the lots left uncovered."""
        ...

    def execute_round(self, ts_ms: int, market: int, side: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        """Close a round's ``requests`` on one market and bankrupt ``side``; returns the lots left uncovered."""
        ...

    def execute_many(self, ts_ms: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        """:meth:`execute` for each of ``requests`` in order (one compiled call where the rule has a kernel);
        returns the lots left uncovered."""
        ...

    def rank_percentile(self, m: int, position: int, side: int, sample: int) -> float | None:
        """Where ``position`` stands in the rule's published queue, in [0, 1]; None when the rule does not rank."""
        ...


class AllocatingRule:
    """A rule that closes a request against candidates by an allocation: the shared template of the ranked queue
    (request by request), the random scan and the pro-rata family. Subclasses say which candidates count, how much
    each closes (:meth:`allocate`) and at what price (:meth:`price`)."""

    socialises_losses: ClassVar[bool] = False
    queues_per_round: ClassVar[bool] = False
    profitable_only: ClassVar[bool] = True
    """Candidates must be in profit at mark (the random scan takes any opposite position)."""

    def __init__(self, book: AdlBook) -> None:
        self.book = book

    def allocate(self, want: int, cand: np.ndarray, sizes: np.ndarray, upnl: F64) -> tuple[F64, np.ndarray, np.ndarray]:
        """Amounts (lots, fractional) each candidate closes, their caps in whole lots, and the order fills are
        executed and recorded in."""
        raise NotImplementedError

    def price(self, request: AdlRequest, mark: float, prices: AdlPrices) -> float:
        raise NotImplementedError

    def execute(self, ts_ms: int, request: AdlRequest, prices: AdlPrices) -> int:
        acc = self.book.accounting
        pos, mk = acc.positions, acc.markets
        m = request.market
        mark = float(mk.mark[m])
        side = 1 if request.lots > 0 else -1
        want = abs(request.lots)
        cand = self.book.candidates(m, side, profitable=self.profitable_only)
        cand = cand[pos.account[cand] != request.account]
        sizes = np.abs(pos.size_lots[cand])
        upnl = pos.size_lots[cand] * mk.lot_size[m] * (mark - pos.entry_price[cand])
        if cand.size == 0:
            return want
        take, caps, sequence = self.allocate(want, cand, sizes, upnl)
        lots = round_to_lots(take, caps, round(float(take.sum())))
        price = self.price(request, mark, prices)
        for i in sequence[lots[sequence] > 0]:
            self.book.fill(ts_ms, request, int(cand[i]), int(lots[i]), side, price)
        return want - int(lots.sum())

    def execute_round(self, ts_ms: int, market: int, side: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        return sum(self.execute(ts_ms, r, prices) for r in requests)

    def kernel(self) -> tuple[int, F64, Any] | None:
        """The rule's code and parameters in :func:`~perpstress.mechanisms.adl.kernels.allocate_requests` and the
        generator it draws from, or None (the Python path)."""
        return None

    def execute_many(self, ts_ms: int, requests: list[AdlRequest], prices: AdlPrices) -> int:
        spec = self.kernel() if self.book.compiled else None
        if spec is None or not requests:
            return sum(self.execute(ts_ms, r, prices) for r in requests)
        rule, params, rng = spec
        acc = self.book.accounting
        pos, mk, accounts = acc.positions, acc.markets, acc.accounts
        order, bounds = self.book.market_index
        req_market = np.array([r.market for r in requests], dtype=np.int64)
        req_account = np.array([r.account for r in requests], dtype=np.int64)
        req_position = np.array([r.position for r in requests], dtype=np.int64)
        req_lots = np.array([r.lots for r in requests], dtype=np.int64)
        req_price = np.array([self.price(r, float(mk.mark[r.market]), prices) for r in requests], dtype=np.float64)
        rows = max(int((bounds[req_market + 1] - bounds[req_market]).max()), 4096)
        out_i = np.zeros((rows, 3), dtype=np.int64)
        out_f = np.zeros((rows, 3), dtype=np.float64)
        counts = np.zeros(2, dtype=np.int64)
        rec = self.book.record
        left, first = 0, 0
        while first < len(requests):
            left += int(kernels.allocate_requests(
                rule, params, first, req_market, req_account, req_position, req_lots, req_price, order, bounds,
                pos.account, (pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin),
                (accounts.pos_start, accounts.pos_count, accounts.wallet),
                (mk.mark, mk.lot_size, mk.tier_cap, mk.tier_mmr, mk.tier_cum), acc.long_lots, rng, out_i, out_f, counts,
            ))  # fmt: skip
            k = int(counts[0])
            which = out_i[:k, kernels.A_REQUEST]
            rec.ts_ms.extend([ts_ms] * k)
            rec.venue.extend([requests[r].venue for r in which.tolist()])
            rec.market.extend(req_market[which].tolist())
            rec.bankrupt_account.extend(req_account[which].tolist())
            rec.account.extend(out_i[:k, kernels.A_WINNER].tolist())
            rec.side.extend(np.where(req_lots[which] > 0, -1, 1).tolist())
            rec.lots.extend(out_i[:k, kernels.A_LOTS].tolist())
            rec.price.extend(req_price[which].tolist())
            rec.mark.extend(mk.mark[req_market[which]].tolist())
            rec.notional_usd.extend(out_f[:k, kernels.B_NOTIONAL].tolist())
            rec.loss_vs_mark_usd.extend(out_f[:k, kernels.B_LOSS].tolist())
            rec.winner_pnl_usd.extend(out_f[:k, kernels.B_PNL].tolist())
            first = int(counts[1])
        return left

    def rank_percentile(self, m: int, position: int, side: int, sample: int) -> float | None:
        return None
