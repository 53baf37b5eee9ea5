"""The cascade simulation: builds the world from a scenario and runs DESIGN.md's step order on the kernel.

World: one row per market (venue x symbol); one account and one position per crowd member, per market maker and
market, one noise-trader account per market and one keeper per Drift market (deep pockets, never liquidated);
one insurance fund or backstop vault per venue; an order book per market. Position ids equal account ids (one
position each), so the arrays need no indirection.

Step: index paths -> market makers quote -> noise takers trade -> marks -> funding samples and settlement ->
margin check (trigger index for the crowd, every step for makers) -> liquidation procedure (rounds within the step
while marks keep moving, up to ``engine.max_cascade_rounds``) -> ADL of what funds could not take -> funds unwind
their inventory into the books -> record.

Assumptions stated plainly: the index is exogenous here (spot markets and endogenous indices come with the
multi-venue layer); makers' fair value is the index; a maker's ADL exposure is the share of its position ADL
closed recently; Drift's keepers are exempt accounts with no capital limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perpstress.config.scenario import Scenario
from perpstress.config.venue import FundingCap, FundingMethod, KeeperTakeover, PriceReference
from perpstress.engine.kernel import Clock, Kernel
from perpstress.errors import UsageError
from perpstress.mechanisms import exogenous
from perpstress.mechanisms.accounting import Accounting
from perpstress.mechanisms.adl import AdlEngine
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import Fill, Ledger, LiquidationEngine
from perpstress.mechanisms.margin_kernels import isolated_balances, position_bands, unit_balances
from perpstress.mechanisms.market_makers import MakerState, quote, realised_vol, update_state
from perpstress.mechanisms.prices import MarkEngine
from perpstress.population.crowd import generate_crowd
from perpstress.rules import funding as funding_rules
from perpstress.state.orderbook import ASK, BID, OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account
from perpstress.state.triggers import TriggerIndex

CROWD, MAKER, NOISE, KEEPER = 0, 1, 2, 3


class BookExecution:
    """Taker orders against the books; settles the makers' side (position, maker fee) and the last trade."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def execute(self, market: int, lots: int, limit_price: float, fill_or_kill: bool, taker: int) -> Fill:
        sim = self.sim
        owners, ticks, filled = sim.books.match(market, lots, limit_price, fill_or_kill)
        if filled.size == 0:
            return Fill(0, float("nan"))
        tick = sim.markets.tick_size[market]
        prices = ticks * tick
        venue = int(sim.markets.venue[market])
        maker_rate = sim.maker_fee[venue]
        sign = 1 if lots > 0 else -1
        trades = sim.trades if sim.scenario.engine.record_trades else None
        for owner, price, n in zip(owners, prices, filled, strict=True):
            o = int(owner)
            if trades is not None:
                for name, value in (("ts_ms", sim.now_ms), ("market", market), ("account", taker), ("maker", o),
                                    ("lots", sign * int(n)), ("price", float(price))):  # fmt: skip
                    trades[name].append(value)
            sim.accounting.trade(o, -1, o, -sign * int(n), float(price))
            fee = maker_rate * n * sim.markets.lot_size[market] * price
            sim.accounting.credit(o, -1, -fee)
            sim.ledger.fee_pool[venue] += fee
        total = int(filled.sum())
        sim.last_trade[market] = float(prices[-1])
        sim.volume_usd[market] += float((prices * filled).sum() * sim.markets.lot_size[market])
        return Fill(sign * total, float((prices * filled).sum() / total))


@dataclass
class RunTables:
    """What a run produced, as columns."""

    timeseries: dict[str, np.ndarray]
    liquidations: dict[str, list[Any]]
    adl: dict[str, list[Any]]
    trades: dict[str, list[Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class Simulation:
    def __init__(self, scenario: Scenario, scale: float = 1.0) -> None:
        if scenario.shock is None:
            raise UsageError(f"scenario {scenario.name}: a run needs a [shock] section (it sets the start prices)")
        if scenario.makers is None:
            raise UsageError(f"scenario {scenario.name}: a run needs a [makers] section (books need liquidity)")
        self.scenario = scenario
        self.kernel = Kernel(scenario.ts_start_ms, scenario.step_ms, scenario.steps, scenario.seed)
        rng = self.kernel.rng
        self.venues = list(scenario.venues.values())
        keys, venue_of, tables, lots, ticks, bases, cfgs = [], [], [], [], [], [], []
        for vi, venue in enumerate(self.venues):
            for symbol, market in venue.markets().items():
                keys.append(f"{venue.name}:{symbol}")
                venue_of.append(vi)
                tables.append(market.tier_table())
                lots.append(market.lot_size)
                ticks.append(market.tick_size)
                bases.append(market.base)
                cfgs.append(market)
        self.market_keys = keys
        self.market_cfg = cfgs
        n_m = len(keys)
        self.markets = Markets.from_tables(venue_of, lots, ticks, tables)
        self.paths = exogenous.generate(
            scenario.shock, scenario.steps, scenario.step_ms / 1000.0, scenario.ts_start_ms, rng
        )
        self.asset_of = np.array([self.paths.asset(b) for b in bases])
        start = self.paths.index[0, self.asset_of]
        self.markets.mark[:] = start

        crowd = generate_crowd(scenario.crowd, {k: i for i, k in enumerate(keys)}, start, self.markets.lot_size,
                               tables, rng, scale)  # fmt: skip
        mk_cfg = scenario.makers
        n_c = crowd.market.size
        net = np.bincount(crowd.market, weights=crowd.size_lots, minlength=n_m).astype(np.int64)
        maker_market = np.repeat(np.arange(n_m), mk_cfg.per_market)
        maker_lots = np.zeros(maker_market.size, dtype=np.int64)
        for m in range(n_m):  # makers hold the crowd's net position, split evenly, so every market balances
            share = -net[m] // mk_cfg.per_market
            rest = -net[m] - share * mk_cfg.per_market
            idx = np.flatnonzero(maker_market == m)
            maker_lots[idx] = share
            maker_lots[idx[0]] += rest
        n_mk = maker_market.size
        keeper_market = np.array(
            [m for m in range(n_m) if isinstance(self.venues[venue_of[m]].liquidation, KeeperTakeover)], dtype=np.int64
        )
        n_k = keeper_market.size
        pos_market = np.concatenate([crowd.market, maker_market, np.arange(n_m), keeper_market]).astype(np.int32)
        size = np.concatenate([crowd.size_lots, maker_lots, np.zeros(n_m + n_k, np.int64)])
        entry = np.concatenate([crowd.entry_price, start[maker_market], start, start[keeper_market]])
        iso = np.concatenate([np.where(crowd.isolated, crowd.margin, np.nan), np.full(n_mk + n_m + n_k, np.nan)])
        capital = np.array([mk_cfg.for_market(keys[m]).capital_usd for m in maker_market])
        # noise traders and keepers are exempt from liquidation and start at zero
        wallet = np.concatenate([np.where(crowd.isolated, 0.0, crowd.margin), capital, np.zeros(n_m + n_k)])
        self.kind = np.concatenate(
            [np.full(n_c, CROWD), np.full(n_mk, MAKER), np.full(n_m, NOISE), np.full(n_k, KEEPER)]
        ).astype(np.int8)
        n_acc = size.size
        acc_ids = np.arange(n_acc, dtype=np.int32)
        pos_start, pos_count = group_by_account(n_acc, acc_ids)
        self.accounts = Accounts(np.asarray(self.markets.venue[pos_market], np.int32), wallet, pos_start, pos_count)
        self.positions = Positions(acc_ids, pos_market, size, entry, iso)
        self.accounting = Accounting(self.markets, self.accounts, self.positions)
        self.maker_ids = np.flatnonzero(self.kind == MAKER)
        self.noise_id = np.flatnonzero(self.kind == NOISE)  # one per market, in market order
        self.maker_cfg = [mk_cfg.for_market(keys[m]) for m in range(n_m)]
        self.maker_state = [MakerState(peak_equity=self.maker_cfg[m].capital_usd) for m in maker_market]
        self.maker_adl_lots = np.zeros(n_acc)
        """ADL'd lots against each maker, decaying with the volatility window: the maker's recent ADL exposure."""
        self._adl_seen = 0

        limits = [
            FundLimits(
                max_takeover_notional_fraction=v.insurance_fund.max_takeover_notional_fraction,
                adl_drawdown_fraction=v.insurance_fund.adl_drawdown_fraction,
                drawdown_window_ms=int(v.insurance_fund.drawdown_window_hours * 3_600_000)
                if v.insurance_fund.drawdown_window_hours
                else None,
                per_market_claim_cap_usd=v.insurance_fund.per_market_claim_cap_usd,
            )
            for v in self.venues
        ]
        self.funds = InsuranceFunds.create([v.insurance_fund.initial_usd for v in self.venues], n_m, limits)
        self.ledger = Ledger(np.zeros(len(self.venues)), np.zeros(len(self.venues)))
        self.maker_fee = np.array([v.fees.maker_rate for v in self.venues])
        self.taker_fee = np.array([v.fees.taker_rate for v in self.venues])
        self.books = OrderBooks(n_m, scenario.engine.book_capacity, self.markets.tick_size, self.markets.lot_size)
        self.last_trade = np.full(n_m, np.nan)
        self.now_ms = scenario.ts_start_ms
        self.trades: dict[str, list[Any]] = {k: [] for k in ("ts_ms", "market", "account", "maker", "lots", "price")}
        """Every fill (taker signed: buy > 0), kept only when ``engine.record_trades`` is on."""
        self.volume_usd = np.zeros(n_m)
        self.execution = BookExecution(self)
        keeper_ids = np.flatnonzero(self.kind == KEEPER)
        keepers = {int(m): int(k) for m, k in zip(keeper_market, keeper_ids, strict=True)}
        self.liquidation = LiquidationEngine(self.venues, self.markets, self.accounts, self.positions, self.funds,
                                             self.execution, self.ledger, self.accounting, keepers)  # fmt: skip
        self.adl = AdlEngine(self.venues, self.accounting, rng)
        self.mark_engine = MarkEngine(self.venues, list(self.markets.venue), scenario.step_ms / 1000.0)
        self.funding_rate = np.zeros(n_m)
        self._premium_sum = np.zeros(n_m)
        self._premium_n = np.zeros(n_m)
        self._log_returns = np.zeros((n_m, max(2, int(mk_cfg.vol_window_s * 1000 // scenario.step_ms))))
        self._prev_mark = start.copy()

        self.crowd_ids = np.flatnonzero(self.kind == CROWD)
        pad = n_acc - n_c
        self.stop_price = np.concatenate([crowd.stop_price, np.full(pad, np.nan)])
        self.topup_reserve = np.concatenate([crowd.topup_reserve, np.zeros(pad)])
        self.topup_ratio = scenario.crowd.topup_margin_ratio
        self._topup_tables = [
            (
                self.markets.tier_cap[m],
                self.markets.tier_mmr[m] / self.topup_ratio,
                self.markets.tier_cum[m] / self.topup_ratio,
            )
            for m in range(n_m)
        ]
        self.stops = {"count": 0, "notional_usd": 0.0}
        self.topups = {"count": 0, "usd": 0.0}
        self.index = TriggerIndex(n_m, pos_market)
        self._lo = np.full(n_acc, -np.inf)
        self._hi = np.full(n_acc, np.inf)
        self._reband(self.crowd_ids)
        self.index.rebuild()

        steps = scenario.steps
        self.ts: dict[str, np.ndarray] = {
            name: np.full((steps, n_m), np.nan)
            for name in (
                "index",
                "mark",
                "last",
                "best_bid",
                "best_ask",
                "depth_bid_1pct_usd",
                "depth_ask_1pct_usd",
                "open_interest_usd",
                "funding_rate",
                "insurance_fund_usd",
            )
        }
        self.value_start = self.total_value()
        self.max_value_error = 0.0
        self.max_oi_imbalance = 0
        k = self.kernel
        for name, phase in (
            ("exogenous", self._phase_exogenous),
            ("makers", self._phase_makers),
            ("takers", self._phase_takers),
            ("prices", self._phase_prices),
            ("funding", self._phase_funding),
            ("liquidation", self._phase_liquidation),
            ("funds", self._phase_funds),
            ("record", self._phase_record),
        ):
            k.add(name, phase)

    # --- invariants ------------------------------------------------------------------------------------------
    def total_value(self) -> float:
        """Accounts' collateral and PnL at mark, funds' equity and fee pools, less bad debt and external inflows
        (margin top-ups from outside the venue): constant over a run."""
        pos = self.positions
        upnl = pos.size_lots * self.markets.lot_size[pos.market] * (self.markets.mark[pos.market] - pos.entry_price)
        funds = [self.funds.equity(f, self.markets.mark) for f in range(len(self.venues))]
        # math.fsum: an exact sum, so the check measures the engine's bookkeeping, not its own rounding
        return math.fsum(
            [
                math.fsum(self.accounts.wallet),
                math.fsum(np.nan_to_num(pos.isolated_margin)),
                math.fsum(upnl),
                math.fsum(funds),
                math.fsum(self.ledger.fee_pool),
                -math.fsum(self.ledger.bad_debt),
                -self.ledger.external_in,
            ]
        )

    def oi_imbalance(self) -> int:
        lots = np.bincount(self.positions.market, weights=self.positions.size_lots, minlength=self.markets.n)
        fund_lots = np.rint(self.funds.inventory.sum(axis=0) / self.markets.lot_size)
        return int(np.abs(np.rint(lots + fund_lots)).max())

    # --- phases ----------------------------------------------------------------------------------------------
    def _phase_exogenous(self, clock: Clock) -> None:
        self.now_ms = clock.ts_ms
        self.index_now = self.paths.index[clock.step, self.asset_of]
        self.appetite = float(self.paths.appetite[clock.step])

    def _phase_makers(self, clock: Clock) -> None:
        rec = self.adl.record
        if len(rec.account) > self._adl_seen:  # ADL fills since the last step, against whom
            hit = np.asarray(rec.account[self._adl_seen :], dtype=np.int64)
            np.add.at(self.maker_adl_lots, hit, np.asarray(rec.lots[self._adl_seen :], dtype=float))
            self._adl_seen = len(rec.account)
        window = self.scenario.makers.vol_window_s if self.scenario.makers else 60.0
        self.maker_adl_lots *= 0.5 ** (clock.step_s / window)
        vol = np.array([realised_vol(r, clock.step_s) for r in self._log_returns])
        for i, a in enumerate(self.maker_ids):
            m = int(self.positions.market[a])
            cfg = self.maker_cfg[m]
            mark = self.markets.mark[m]
            inventory = self.accounting.base(int(a)) * mark
            equity = self.accounting.unit_equity(int(a), -1)
            held = abs(float(self.positions.size_lots[a]))
            adl_share = self.maker_adl_lots[a] / max(held + self.maker_adl_lots[a], 1.0)
            self.maker_state[i] = update_state(cfg, self.maker_state[i], vol[m], equity, adl_share, clock.step_s)
            ladder = quote(cfg, self.maker_state[i], float(self.index_now[m]), vol[m], inventory, self.appetite)
            self.books.replace_ladder(m, BID, int(a), ladder.bid_price, ladder.bid_size)
            self.books.replace_ladder(m, ASK, int(a), ladder.ask_price, ladder.ask_size)

    def _phase_takers(self, clock: Clock) -> None:
        cfg = self.scenario.takers
        rng = self.kernel.rng
        self.last_trade[:] = np.nan
        counts = rng.poisson(cfg.rate_per_s * clock.step_s, size=self.markets.n)
        for m in np.flatnonzero(counts):
            for _ in range(int(counts[m])):
                usd = cfg.median_usd * float(np.exp(cfg.sigma * rng.standard_normal()))
                p_sell = 0.5 + cfg.sell_bias_after_shock * (1.0 - self.appetite)
                side = -1 if rng.random() < p_sell else 1
                mark = float(self.markets.mark[m])
                lots = side * max(1, int(usd / mark / self.markets.lot_size[m]))
                self._taker_trade(int(self.noise_id[m]), int(m), lots, mark * (1 + side * 0.02))

    def _taker_trade(self, account: int, m: int, lots: int, limit: float) -> None:
        fill = self.execution.execute(m, lots, limit, False, account)
        if fill.lots:
            self.accounting.trade(account, -1, account, fill.lots, fill.average_price)
            venue = int(self.markets.venue[m])
            fee = self.taker_fee[venue] * abs(fill.lots) * self.markets.lot_size[m] * fill.average_price
            self.accounting.credit(account, -1, -fee)
            self.ledger.fee_pool[venue] += fee

    def _marks(self, clock: Clock, sample: bool) -> None:
        bid, ask = self.books.best_bid_ask()
        mid = 0.5 * (bid + ask)
        peer = np.full(self.markets.n, np.nan)
        for m in range(self.markets.n):
            same = (self.asset_of == self.asset_of[m]) & (self.markets.venue != self.markets.venue[m])
            if same.any() and not np.all(np.isnan(mid[same])):
                peer[m] = np.nanmedian(mid[same])
        interval = np.array([self.venues[v].funding.interval_hours * 3_600_000 for v in self.markets.venue])
        to_funding = (interval - (clock.ts_ms % interval)) / 1000.0
        marks = self.mark_engine.step(clock.step, self.index_now, bid, ask, self.last_trade, self.funding_rate,
                                      to_funding, peer, sample=sample)  # fmt: skip
        self.markets.mark[:] = np.where(np.isnan(marks), self.index_now, marks)

    def _phase_prices(self, clock: Clock) -> None:
        self._marks(clock, sample=True)
        r = np.log(self.markets.mark / self._prev_mark)
        self._log_returns[:, clock.step % self._log_returns.shape[1]] = r
        self._prev_mark = self.markets.mark.copy()

    def _phase_funding(self, clock: Clock) -> None:
        for m in range(self.markets.n):
            v = self.venues[self.markets.venue[m]]
            f = v.funding
            every = max(1, round(f.sample_interval_s * 1000 / clock.step_ms))
            if clock.step % every == 0:
                notional = self.market_cfg[m].impact_notional_usd or f.impact_notional_usd or 10_000.0
                if f.impact_margin_usd:
                    notional = f.impact_margin_usd * float(self.markets.tier_max_leverage[m, 0])
                ib = self.books.impact_price(m, BID, notional)
                ia = self.books.impact_price(m, ASK, notional)
                idx = self.index_now[m]
                prem = 0.0 if np.isnan(ib) or np.isnan(ia) else float(funding_rules.premium_index(ib, ia, idx))
                self._premium_sum[m] += prem
                self._premium_n[m] += 1
                avg = self._premium_sum[m] / self._premium_n[m]
                self.funding_rate[m] = self._rate(m, avg)
            interval_ms = int(f.interval_hours * 3_600_000)
            if clock.step > 0 and clock.ts_ms % interval_ms == 0:
                self._settle_funding(m, v.funding.payment_price)

    def _rate(self, m: int, avg_premium: float) -> float:
        v = self.venues[self.markets.venue[m]]
        f = v.funding
        if f.method is FundingMethod.MID_PREMIUM_MA:
            rate = avg_premium - f.interest_rate_8h
        elif f.method is FundingMethod.DRIFT_TWAP_SPREAD:
            rate = (avg_premium + 1 / 5000) / 24.0
        else:
            rate = float(funding_rules.premium_interest_clamp(avg_premium, f.interest_rate_8h, f.interest_clamp_8h))
            rate = float(funding_rules.scale_to_interval(rate, f.interval_hours))
        cap = self.market_cfg[m].funding_cap
        if cap is None:
            if f.cap is FundingCap.MMR_MULTIPLE:
                cap = f.cap_value * float(self.markets.tier_mmr[m, 0])
            elif f.cap is FundingCap.MARGIN_FRACTION_MULTIPLE:
                imf = 1.0 / float(self.markets.tier_max_leverage[m, 0])
                cap = f.cap_value * (imf - float(self.markets.tier_mmr[m, 0])) * f.interval_hours / 8.0
            elif f.cap is FundingCap.DRIFT_CONTRACT_TIER:
                cap = 1.0 / funding_rules.DRIFT_TIER_CLAMP_DIVISOR[f.drift_contract_tier or "A"] / 24.0
            else:
                cap = f.cap_value
        return float(np.clip(rate, -cap, cap))

    def _settle_funding(self, m: int, reference: PriceReference) -> None:
        price = float(self.index_now[m] if reference is PriceReference.ORACLE else self.markets.mark[m])
        rate = self.funding_rate[m]
        sel = np.flatnonzero((self.positions.market == m) & (self.positions.size_lots != 0))
        pay = self.positions.size_lots[sel] * self.markets.lot_size[m] * price * rate
        iso = ~np.isnan(self.positions.isolated_margin[sel])
        self.positions.isolated_margin[sel[iso]] -= pay[iso]
        self.accounts.wallet[self.positions.account[sel[~iso]]] -= pay[~iso]
        inventory = self.funds.inventory[:, m]  # funds pay or receive like anyone holding the position
        self.funds.balance -= inventory * price * rate
        self._premium_sum[m] = 0.0
        self._premium_n[m] = 0
        crowd = sel[self.kind[sel] == CROWD]
        self._reband(crowd)

    def _reband(self, accounts: np.ndarray) -> None:
        if accounts.size == 0:
            return
        acc = accounts.astype(np.int32)
        pos, mk = self.positions, self.markets
        position_bands(acc, self.accounts.pos_start, self.accounts.pos_count, self.accounts.wallet, pos.market,
                       pos.size_lots, pos.entry_price, pos.isolated_margin, mk.lot_size, mk.mark, mk.tier_cap,
                       mk.tier_mmr, mk.tier_cum, self._lo, self._hi)  # fmt: skip
        ids = accounts.astype(np.int64)  # position id == account id
        self._fold_triggers(ids)
        open_ = ids[self.positions.size_lots[ids] != 0]
        closed = ids[self.positions.size_lots[ids] == 0]
        if open_.size:
            self.index.set_bands(open_, self._lo[open_], self._hi[open_])
        if closed.size:
            self.index.deactivate(closed)

    def _fold_triggers(self, ids: np.ndarray) -> None:
        """Tighten each crowd position's band to its stop and to its top-up trigger (where MM / balance reaches the
        top-up ratio: the liquidation-price solve with maintenance scaled by 1 / ratio)."""
        from perpstress.mechanisms.margin_kernels import _liquidation_price

        pos, mk = self.positions, self.markets
        for p in ids[(self.kind[ids] == CROWD) & (self.positions.size_lots[ids] != 0)]:
            q = pos.size_lots[p] * mk.lot_size[pos.market[p]]
            long = q > 0
            edges = [self.stop_price[p]]
            if self.topup_reserve[p] > 0:
                c = pos.isolated_margin[p] if not np.isnan(pos.isolated_margin[p]) else self.accounts.wallet[p]
                caps, mmr, cum = self._topup_tables[pos.market[p]]
                edges.append(_liquidation_price(1.0 if long else -1.0, abs(q), pos.entry_price[p], c, caps, mmr, cum))
            for e in edges:
                if e == e:  # not NaN
                    if long:
                        self._lo[p] = max(self._lo[p], e)
                    else:
                        self._hi[p] = min(self._hi[p], e)

    def _stops_and_topups(self, fired: np.ndarray) -> None:
        """Crowd behaviour at a trigger: a stop closes the position with a market order; a top-up adds margin from
        the account's reserve (an external inflow) to bring MM / balance back to half the top-up ratio."""
        pos, mk = self.positions, self.markets
        for p in fired[self.kind[fired] == CROWD]:
            p = int(p)
            lots = int(pos.size_lots[p])
            if lots == 0:
                continue
            m = int(pos.market[p])
            mark = float(mk.mark[m])
            stop = self.stop_price[p]
            if stop == stop and (mark <= stop if lots > 0 else mark >= stop):
                unit = self.accounting.unit_of(p)
                fill = self.execution.execute(m, -lots, mark * (1 - np.sign(lots) * 0.05), False, p)
                if fill.lots:
                    self.accounting.close(*unit, p, fill.lots, fill.average_price)
                    venue = int(mk.venue[m])
                    notional = abs(fill.lots) * mk.lot_size[m] * fill.average_price
                    fee = min(self.taker_fee[venue] * notional, max(self.accounting.unit_equity(*unit), 0.0))
                    self.accounting.credit(*unit, -fee)
                    self.ledger.fee_pool[venue] += fee
                    self.stops["count"] += 1
                    self.stops["notional_usd"] += notional
                    self.liquidation.settle_gap(venue, *unit)  # a stop filled past bankruptcy: fund, then bad debt
                if pos.size_lots[p] == 0:
                    self.stop_price[p] = np.nan  # done; an unfilled stop keeps trying while the mark is past it
                continue
            if self.topup_reserve[p] > 0:
                unit = self.accounting.unit_of(p)
                equity = self.accounting.unit_equity(*unit)
                mm = self.accounting.maintenance(p)
                if equity <= 0 or mm / equity >= self.topup_ratio:
                    add = min(self.topup_reserve[p], max(mm / (0.5 * self.topup_ratio) - equity, 0.0))
                    if add > 0:
                        self.accounting.credit(*unit, add)
                        self.topup_reserve[p] -= add
                        self.ledger.external_in += add
                        self.topups["count"] += 1
                        self.topups["usd"] += add

    def _liquidatable(self, candidates: np.ndarray) -> list[tuple[int, int]]:
        if candidates.size == 0:
            return []
        pos, mk = self.positions, self.markets
        tiers = (mk.tier_cap, mk.tier_mmr, mk.tier_cum)
        iso_mask = ~np.isnan(pos.isolated_margin[candidates])
        units: list[tuple[int, int]] = []
        cross = candidates[~iso_mask].astype(np.int32)
        if cross.size:
            bal, req = unit_balances(cross, self.accounts.pos_start, self.accounts.pos_count, self.accounts.wallet,
                                     pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin, mk.lot_size,
                                     mk.mark, *tiers)  # fmt: skip
            units += [(int(a), -1) for a in cross[bal < req]]
        iso = candidates[iso_mask].astype(np.int64)
        if iso.size:
            bal, req = isolated_balances(iso, pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin,
                                         mk.lot_size, mk.mark, *tiers)  # fmt: skip
            units += [(int(p), int(p)) for p in iso[bal < req]]
        return units

    def _phase_liquidation(self, clock: Clock) -> None:
        for _ in range(self.scenario.engine.max_cascade_rounds):
            fired = self.index.fired(self.markets.mark)
            self._stops_and_topups(fired)
            candidates = np.concatenate([fired, self.maker_ids]).astype(np.int64)
            candidates = candidates[self.positions.size_lots[candidates] != 0]
            units = self._liquidatable(candidates)
            liquidated = {a for a, _ in units}
            survivors = fired[[int(a) not in liquidated for a in fired]] if fired.size else fired
            self._reband(survivors[self.kind[survivors] == CROWD])
            if not units:
                break
            events_before = len(self.liquidation.record.lots) + len(self.adl.record.lots)
            by_venue: dict[int, list[tuple[int, int]]] = {}
            for account in {a for a, _ in units if self.kind[a] == MAKER}:
                self.books.cancel_owner(account)  # every procedure starts by cancelling the account's open orders
            for unit in units:
                by_venue.setdefault(int(self.accounts.venue[unit[0]]), []).append(unit)
            for venue, vunits in sorted(by_venue.items()):
                requests = self.liquidation.liquidate(clock.ts_ms, venue, vunits)
                fund_empty = self.funds.balance[venue] <= 0.01 * max(self.funds.start_balance[venue], 1.0)
                self.adl.execute_batch(clock.ts_ms, requests, self.mark_engine.previous, self.index_now, fund_empty)
                for req in requests:
                    self.liquidation.settle_gap(venue, *self.accounting.unit_of(req.position))
            touched = np.array(sorted(liquidated), dtype=np.int64)
            touched = np.concatenate([touched, np.array(self.adl.record.account[-10_000:], dtype=np.int64)])
            self._reband(np.unique(touched[self.kind[touched] == CROWD]))
            if len(self.liquidation.record.lots) + len(self.adl.record.lots) == events_before:
                break  # nothing filled or closed: another round would find the same units and the same books
            self._marks(clock, sample=False)

    def _phase_funds(self, clock: Clock) -> None:
        frac = self.scenario.engine.fund_unwind_fraction
        for k in np.flatnonzero((self.kind == KEEPER) & (self.positions.size_lots != 0)):  # keepers unwind too
            km = int(self.positions.market[k])
            held = int(self.positions.size_lots[k])
            sell = -int(np.sign(held)) * min(abs(held), max(1, int(abs(held) * frac)))
            self._taker_trade(int(k), km, sell, float(self.markets.mark[km]) * (1 + np.sign(sell) * 0.01))
        for f in range(len(self.venues)):
            for m in np.flatnonzero(self.funds.inventory[f]):
                inv = self.funds.inventory[f, m]
                lots = -int(np.sign(inv)) * max(1, int(abs(inv) * frac / self.markets.lot_size[m]))
                lots = int(np.sign(lots)) * min(abs(lots), round(abs(inv) / self.markets.lot_size[m]))
                mark = float(self.markets.mark[m])
                fill = self.execution.execute(int(m), lots, mark * (1 + np.sign(lots) * 0.01), False, -1)
                if fill.lots:
                    self.funds.unwind(f, int(m), fill.lots * self.markets.lot_size[m], fill.average_price)
            self.funds.observe(f, clock.ts_ms, self.markets.mark)

    def _phase_record(self, clock: Clock) -> None:
        t = clock.step
        mk = self.markets
        if self.books.is_crossed():
            raise AssertionError(f"a book is crossed after step {t}")
        bid, ask = self.books.best_bid_ask()
        ts = self.ts
        ts["index"][t] = self.index_now
        ts["mark"][t] = mk.mark
        ts["last"][t] = self.last_trade
        ts["best_bid"][t] = bid
        ts["best_ask"][t] = ask
        for m in range(mk.n):
            ref = float(mk.mark[m])
            ts["depth_bid_1pct_usd"][t, m] = self.books.depth_within(m, BID, 0.01, ref)
            ts["depth_ask_1pct_usd"][t, m] = self.books.depth_within(m, ASK, 0.01, ref)
        longs = self.accounting.long_lots
        fund_long = np.maximum(self.funds.inventory, 0).sum(axis=0) / mk.lot_size
        ts["open_interest_usd"][t] = (longs + fund_long) * mk.lot_size * mk.mark
        ts["funding_rate"][t] = self.funding_rate
        ts["insurance_fund_usd"][t] = [self.funds.equity(int(v), mk.mark) for v in mk.venue]
        if t % 60 == 0 or t == self.scenario.steps - 1:  # full recounts, O(positions), once a simulated minute
            self.max_value_error = max(self.max_value_error, abs(self.total_value() - self.value_start))
            self.max_oi_imbalance = max(self.max_oi_imbalance, self.oi_imbalance())
            recount = np.bincount(
                self.positions.market, weights=np.maximum(self.positions.size_lots, 0), minlength=mk.n
            )
            if not np.array_equal(recount.astype(np.int64), self.accounting.long_lots):
                raise AssertionError("open interest kept incrementally differs from a recount")
            self._check_no_hidden_bad_debt(t)

    def _check_no_hidden_bad_debt(self, step: int) -> None:
        """A closed-out unit never holds negative collateral: its gap was paid or recorded as bad debt."""
        pos = self.positions
        crowd = self.kind == CROWD
        closed = pos.size_lots == 0
        tolerance = 1e-6
        iso = ~np.isnan(pos.isolated_margin)
        bad_iso = crowd & closed & iso & (pos.isolated_margin < -tolerance)
        bad_cross = crowd & closed & ~iso & (self.accounts.wallet < -tolerance)
        if bad_iso.any() or bad_cross.any():
            raise AssertionError(f"step {step}: closed units with unrecorded negative equity")

    # --- running ---------------------------------------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None = None) -> RunTables:
        started = time.perf_counter()
        self.kernel.run(progress)
        wall = time.perf_counter() - started
        from perpstress.engine.summary import summarise

        tables = RunTables(self.ts, self.liquidation.record.__dict__, self.adl.record.__dict__, self.trades)
        tables.summary = summarise(self, wall)
        return tables
