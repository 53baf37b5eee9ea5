"""Auto-deleveraging: close a bankrupt remainder against positions on the other side, by the venue's rule.

For each :class:`~perpstress.mechanisms.liquidation.AdlRequest`:

1. Candidates are the other accounts' positions in the same market on the opposite side; ranked and pro-rata
   rules take only those in profit at mark (dYdX's scan takes any opposite position).
2. Scores (ranked queue): ``pnl_leverage`` (BitMEX/OKX: PnL% x notional / unit equity), ``binance_leverage_pnl``,
   ``hyperliquid`` (mark/entry x notional / account value; entry/mark for shorts).
3. Allocation by rule (:mod:`perpstress.rules.adl`): queue, random scan (start from the run's generator), wealth,
   capped or risk-aware pro-rata. Quantities are rounded to whole lots (largest remainders), never above a
   position's size, so ADL never raises anyone's exposure and open interest stays balanced in lots.
4. Both sides close at the rule's price: the bankruptcy price, mark, the previous mark, or the index.
   A close at a price other than bankruptcy leaves the bankrupt unit a gap for the fund (or bad debt).
5. Every fill is an event: who was hit, how much, at what price, and the loss versus closing at mark.

Drift's socialised loss closes nothing and is not run here (the engine refuses Drift's procedure for now).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perpstress.config.venue import AdlPrice, AdlRanking, ProRataAdl, RandomScanAdl, RankedQueueAdl, VenueConfig
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.liquidation import AdlRequest
from perpstress.mechanisms.margin_kernels import isolated_balances, unit_balances
from perpstress.rules import adl as rules
from perpstress.state.events import EventColumns
from perpstress.state.portfolio import F64


@dataclass
class AdlRecord(EventColumns):
    """One row per ADL fill: who was hit, by how much, at what price, and the loss versus closing at mark."""

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


class AdlEngine:
    def __init__(self, venues: list[VenueConfig], accounting: Accounting, rng: np.random.Generator) -> None:
        # Drift's socialised loss closes nothing: the liquidation engine charges it (LiquidationEngine.socialise).
        self.venues = venues
        self.accounting = accounting
        self.rng = rng
        self.record = AdlRecord()
        market = accounting.positions.market
        order = np.argsort(market, kind="stable")
        bounds = np.searchsorted(market[order], np.arange(accounting.markets.n + 1))
        self._by_market = [order[bounds[m] : bounds[m + 1]] for m in range(accounting.markets.n)]
        """Position ids per market (positions never change market), so candidate scans stay within one market."""

    def execute_batch(
        self, ts_ms: int, requests: list[AdlRequest], previous_mark: F64, index: F64, fund_empty: bool
    ) -> int:
        """Execute a round's requests; returns the lots left uncovered.

        Ranked queues are ranked once per (venue, market, side) for the round and walked across its requests in
        order (a queue snapshot per liquidation round, as venues publish their ADL ranking periodically); other
        rules allocate request by request on the sizes the previous requests left."""
        left = 0
        queues: dict[tuple[int, int, int], list[AdlRequest]] = {}
        for req in requests:
            if isinstance(self.venues[req.venue].adl, RankedQueueAdl):
                queues.setdefault((req.venue, req.market, 1 if req.lots > 0 else -1), []).append(req)
            else:
                left += self.execute(ts_ms, req, previous_mark, index, fund_empty)
        for (venue, m, side), group in queues.items():
            cfg = self.venues[venue].adl
            assert isinstance(cfg, RankedQueueAdl)
            acc = self.accounting
            pos = acc.positions
            bankrupt = {r.account for r in group}
            cand = self._candidates(m, side, profitable=True)
            cand = cand[[int(a) not in bankrupt for a in pos.account[cand]]] if cand.size else cand
            if cand.size == 0:
                left += sum(abs(r.lots) for r in group)
                continue
            order = cand[rules.queue_order(self._scores(cfg.ranking, cand), np.ones(cand.size, bool))]
            cursor = 0
            for req in group:
                want = abs(req.lots)
                price = self._price(cfg, req, float(acc.markets.mark[m]), float(previous_mark[m]), float(index[m]),
                                    fund_empty)  # fmt: skip
                while want > 0 and cursor < order.size:
                    p = int(order[cursor])
                    n = int(min(abs(pos.size_lots[p]), want))
                    if n > 0:
                        self._fill(ts_ms, req, p, n, side, price)
                        want -= n
                    if pos.size_lots[p] == 0:
                        cursor += 1
                left += want
        return left

    def rank_percentile(self, m: int, position: int, side: int, sample: int = 5_000) -> float | None:
        """Where ``position`` (on ``side``) stands in its venue's ADL queue for market ``m``: the share of the
        winning positions on its side it outranks, in [0, 1]; None when it is not in profit or the venue does not
        rank (the indicator venues publish). More than ``sample`` candidates are sampled evenly, deterministically.
        """
        cfg = self.venues[int(self.accounting.markets.venue[m])].adl
        if not isinstance(cfg, RankedQueueAdl):
            return None
        cand = self._candidates(m, -side, profitable=True)
        if position not in set(cand.tolist()):
            return None
        if cand.size > sample:
            cand = np.union1d(cand[:: cand.size // sample], [position])
        scores = self._scores(cfg.ranking, cand)
        own = scores[int(np.flatnonzero(cand == position)[0])]
        return float((scores < own).sum() / max(cand.size - 1, 1))

    def _candidates(self, m: int, side: int, profitable: bool) -> np.ndarray:
        """Open positions in market ``m`` on the side opposite ``side`` (in profit at mark if ``profitable``)."""
        acc = self.accounting
        pos, mk = acc.positions, acc.markets
        ids = self._by_market[m]
        cand = ids[np.sign(pos.size_lots[ids]) == -side]
        if profitable and cand.size:
            upnl = pos.size_lots[cand] * mk.lot_size[m] * (mk.mark[m] - pos.entry_price[cand])
            cand = cand[upnl > 0]
        return np.asarray(cand, dtype=np.int64)

    def _fill(self, ts_ms: int, request: AdlRequest, p: int, n: int, side: int, price: float) -> None:
        acc = self.accounting
        mk = acc.markets
        m = request.market
        mark = float(mk.mark[m])
        w_unit = acc.unit_of(p)
        acc.close(*w_unit, p, n * side, price)  # the winner's opposite position shrinks
        acc.close(*acc.unit_of(request.position), request.position, -n * side, price)
        base = n * mk.lot_size[m]
        self.record.add(ts_ms, request.venue, m, request.account, w_unit[0], -side, n, price, mark, base * price,
                        -side * base * (mark - price))  # fmt: skip

    def execute(self, ts_ms: int, request: AdlRequest, previous_mark: F64, index: F64, fund_empty: bool) -> int:
        """Close ``request`` against winners; returns the lots left uncovered (no one left to take them)."""
        acc = self.accounting
        pos, mk = acc.positions, acc.markets
        cfg = self.venues[request.venue].adl
        if not isinstance(cfg, RankedQueueAdl | RandomScanAdl | ProRataAdl):
            return abs(request.lots)  # socialised-loss venues close nothing by ADL
        m = request.market
        mark = float(mk.mark[m])
        side = 1 if request.lots > 0 else -1
        want = abs(request.lots)
        cand = self._candidates(m, side, profitable=not isinstance(cfg, RandomScanAdl))
        cand = cand[pos.account[cand] != request.account]
        sizes = np.abs(pos.size_lots[cand])
        upnl = pos.size_lots[cand] * mk.lot_size[m] * (mark - pos.entry_price[cand])
        if cand.size == 0:
            return want
        caps = sizes
        sequence = np.arange(cand.size)  # the order fills are executed and recorded in
        if isinstance(cfg, RankedQueueAdl):
            sequence = rules.queue_order(self._scores(cfg.ranking, cand), np.ones(cand.size, bool))
            take, _ = rules.allocate_queue(want, sizes, sequence)
        elif isinstance(cfg, RandomScanAdl):
            start = int(self.rng.integers(cand.size))
            sequence = (start + np.arange(cand.size)) % cand.size
            take, _ = rules.allocate_random_scan(want, sizes, start, cfg.max_accounts_scanned)
        elif cfg.rule == "wealth_pro_rata":
            take, _ = rules.allocate_wealth_pro_rata(want, sizes, upnl)
        else:
            caps = np.floor(cfg.max_haircut * sizes + 1e-9).astype(np.int64)
            if cfg.rule == "capped_pro_rata":
                take, _ = rules.allocate_capped_pro_rata(want, sizes, upnl, cfg.max_haircut)
            else:
                take, _ = rules.allocate_risk_aware_pro_rata(want, sizes, upnl, self._leverage(cand), cfg.max_haircut)
        lots = round_to_lots(take, caps, round(float(take.sum())))
        price = self._price(cfg, request, mark, float(previous_mark[m]), float(index[m]), fund_empty)
        for i in sequence[lots[sequence] > 0]:
            self._fill(ts_ms, request, int(cand[i]), int(lots[i]), side, price)
        return want - int(lots.sum())

    def _price(
        self,
        cfg: RankedQueueAdl | RandomScanAdl | ProRataAdl,
        request: AdlRequest,
        mark: float,
        previous: float,
        index: float,
        fund_empty: bool,
    ) -> float:
        rule = cfg.price
        if isinstance(cfg, RankedQueueAdl) and fund_empty and cfg.price_when_fund_empty is not None:
            rule = cfg.price_when_fund_empty
        return {
            AdlPrice.BANKRUPTCY: request.bankruptcy_price,
            AdlPrice.MARK: mark,
            AdlPrice.PREVIOUS_MARK: previous,
            AdlPrice.ORACLE: index,
        }[rule]

    def _units(self, cand: np.ndarray) -> tuple[F64, F64, F64]:
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

    def _leverage(self, cand: np.ndarray) -> F64:
        acc = self.accounting
        equity, _, _ = self._units(cand)
        m = acc.positions.market[cand]
        notional = np.abs(acc.positions.size_lots[cand] * acc.markets.lot_size[m]) * acc.markets.mark[m]
        return np.where(equity > 0, notional / np.where(equity > 0, equity, 1.0), np.inf)

    def _scores(self, ranking: AdlRanking, cand: np.ndarray) -> F64:
        acc = self.accounting
        pos, mk = acc.positions, acc.markets
        m = pos.market[cand]
        mark = mk.mark[m]
        base = pos.size_lots[cand] * mk.lot_size[m]
        entry = pos.entry_price[cand]
        upnl = base * (mark - entry)
        equity, requirement, collateral = self._units(cand)
        side = np.sign(base)
        if ranking is AdlRanking.PNL_LEVERAGE:
            bp = np.where(equity > 0, mark - equity / base, mark)
            return rules.pnl_leverage_score(side, entry, mark, bp)
        if ranking is AdlRanking.BINANCE_LEVERAGE_PNL:
            return rules.binance_leverage_pnl(upnl, collateral, requirement)
        return rules.hyperliquid_score(side, entry, mark, np.abs(base) * mark, equity)
