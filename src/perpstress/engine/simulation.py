"""The cascade simulation: builds the world from a scenario and runs DESIGN.md's step order on the kernel.

World: one row per market: the venues' perpetuals first, then the spot markets the scenario simulates (rows
``n_perpetual..``). One account and one position per crowd member, per market maker and market, one noise-trader
account per market, one keeper per Drift market (deep pockets, never liquidated), two accounts per hedged owner
(one per venue), and per arbitrageur one account per leg; one insurance fund or backstop vault per venue; an order
book per market. Position ids equal account ids (one position each), so the arrays need no indirection. Accounts
holding a spot market's position (spot makers, spot noise, a basis trader's spot leg) are never liquidated: spot
holdings are fully paid, carried as positions whose cost sits in the entry price.

Step: fundamental values -> market makers quote (spot around the fundamental value, perpetuals around their
venue's index) -> noise takers trade -> arbitrageurs trade -> hedgers ask for top-ups -> transfers advance ->
indices from the spot books -> collateral revalued -> marks -> funding -> margin check (trigger index for the
crowd; every step for makers, arbitrageurs, hedgers and holders of collateral whose price moved) -> liquidation
procedure (collateral sold into the venue's spot book first; rounds within the step while marks keep moving, up to
``engine.max_cascade_rounds``) -> ADL -> hedge breaks noted -> funds unwind their inventory -> record.

Assumptions stated plainly: makers' fair value is the fundamental value (spot) or the venue's index (perpetuals);
a maker's ADL exposure is the share of its position ADL closed recently; Drift's keepers are exempt accounts with
no capital limit; two money ledgers are conserved: USD, and each collateral asset in units.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perpstress.config.layout import market_layout
from perpstress.config.scenario import Scenario
from perpstress.config.venue import CollateralMethod, KeeperTakeover, MarkMethod
from perpstress.engine.exact_sum import exact_sum
from perpstress.engine.kernel import Clock, Kernel
from perpstress.errors import UsageError
from perpstress.mechanisms import arbitrage, exogenous, hedging
from perpstress.mechanisms.accounting import Accounting, settle_maker_fills
from perpstress.mechanisms.adl import AdlEngine
from perpstress.mechanisms.collateral import CollateralHoldings, CollateralPair
from perpstress.mechanisms.funding import FundingPhase
from perpstress.mechanisms.indices import IndexEngine
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import Fill, Ledger, LiquidationEngine
from perpstress.mechanisms.margin_kernels import fold_triggers, isolated_balances, position_bands, unit_balances
from perpstress.mechanisms.market_makers import MakerState, post_ladder, quote_shape, update_state
from perpstress.mechanisms.prices import MarkEngine
from perpstress.mechanisms.transfers import TransferRails
from perpstress.population.initial import InitialDraw, draw_population, population_key, population_streams
from perpstress.population.positions_file import PositionsSnapshot
from perpstress.rules.margin import maintenance_margin
from perpstress.rules.mark import nanmedian
from perpstress.state.orderbook import ASK, BID, OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account
from perpstress.state.triggers import TriggerIndex

CROWD, MAKER, NOISE, KEEPER, HEDGER, ARBITRAGEUR, SPOT = 0, 1, 2, 3, 4, 5, 6
"""Account kinds. SPOT accounts hold only a spot market's position and are never margin-checked."""


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
        if sim.scenario.engine.record_trades:
            k = int(filled.size)
            for name, values in (("ts_ms", [sim.now_ms] * k), ("market", [market] * k), ("account", [taker] * k),
                                 ("maker", owners.tolist()), ("lots", (sign * filled).tolist()),
                                 ("price", prices.tolist())):  # fmt: skip
                sim.trades[name].extend(values)
        pos = sim.positions
        settle_maker_fills(owners, prices, filled, sign, float(sim.markets.lot_size[market]), float(maker_rate), venue,
                           pos.market, sim.markets.lot_size, pos.size_lots, pos.entry_price, sim.accounts.wallet,
                           sim.accounting.long_lots, sim.maker_filled, sim.ledger.fee_pool)  # fmt: skip
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
    def __init__(self, scenario: Scenario, scale: float = 1.0, positions: PositionsSnapshot | None = None,
                 population: InitialDraw | None = None) -> None:  # fmt: skip
        """``positions``: a validated snapshot whose rows replace the crowd. ``population``: a population drawn
        beforehand by :func:`~perpstress.population.initial.draw_initial` for this scenario and ``scale`` (a
        sweep shares one between runs); it is used as given, read-only, after checking its key."""
        if scenario.shock is None:
            raise UsageError(f"scenario {scenario.name}: a run needs a [shock] section (it sets the start prices)")
        if scenario.makers is None:
            raise UsageError(f"scenario {scenario.name}: a run needs a [makers] section (books need liquidity)")
        self.scenario = scenario
        self.scale = scale
        self.positions_source = positions.source if positions is not None else None
        self.kernel = Kernel(scenario.ts_start_ms, scenario.step_ms, scenario.steps, scenario.seed)
        streams = self.kernel.streams
        self.venues = list(scenario.venues.values())
        self.venue_names = [v.name for v in self.venues]
        layout = market_layout(scenario)
        keys, venue_of, tables = list(layout.keys), list(layout.venue_of), list(layout.tables)
        lots, ticks, bases = list(layout.lot_size), list(layout.tick_size), list(layout.base)
        cfgs = list(layout.perpetual_config)
        self.n_perpetual = layout.n_perpetual
        spot_book_of = layout.spot_book_of
        self.market_keys = keys
        self.market_cfg = cfgs
        self.market_base = bases
        n_m = len(keys)
        self.is_spot = np.arange(n_m) >= self.n_perpetual
        self.markets = Markets.from_tables(venue_of, lots, ticks, tables)
        self.paths = exogenous.generate(
            scenario.shock, scenario.steps, scenario.step_ms / 1000.0, scenario.ts_start_ms, streams.get("shock")
        )
        self.asset_of = np.array([self.paths.asset(b) for b in bases])
        start = self.paths.index[0, self.asset_of]
        self.markets.mark[:] = start

        if population is None:
            crowd, hedged = draw_population(scenario, keys, bases, start, self.markets.lot_size, tables, scale,
                                            positions)  # fmt: skip
        else:
            if positions is not None:
                raise UsageError("a run takes a positions file or a population drawn beforehand, not both")
            if population.key != population_key(scenario, scale, start):
                raise UsageError(f"scenario {scenario.name}: the population handed to this run was drawn for another "
                                 "scenario, scale or population_seed")  # fmt: skip
            crowd, hedged = population.crowd, population.hedged
        hedge = {"market": hedged.market, "size": hedged.size, "wallet": hedged.wallet, "owner": hedged.owner,
                 "book": hedged.book}  # fmt: skip
        mk_cfg = scenario.makers
        n_c = crowd.market.size
        net = np.bincount(crowd.market, weights=crowd.size_lots, minlength=n_m).astype(np.int64)
        net += np.bincount(hedge["market"], weights=hedge["size"], minlength=n_m).astype(np.int64)
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
        keeper_market = keeper_market[keeper_market < self.n_perpetual]
        n_k = keeper_market.size
        arbs = self._arbitrage_accounts()
        n_h = hedge["market"].size
        n_a = len(arbs["market"])
        pos_market = np.concatenate(
            [crowd.market, maker_market, np.arange(n_m), keeper_market, hedge["market"], arbs["market"]]
        ).astype(np.int32)
        size = np.concatenate([crowd.size_lots, maker_lots, np.zeros(n_m + n_k, np.int64), hedge["size"],
                               np.zeros(n_a, np.int64)])  # fmt: skip
        entry = np.concatenate([crowd.entry_price, start[maker_market], start, start[keeper_market],
                                start[hedge["market"]], start[np.asarray(arbs["market"], dtype=np.int64)]])  # fmt: skip
        iso = np.concatenate(
            [np.where(crowd.isolated, crowd.margin, np.nan), np.full(n_mk + n_m + n_k + n_h + n_a, np.nan)]
        )
        capital = np.array([mk_cfg.for_market(keys[m]).capital_usd for m in maker_market])
        # a maker's start position stands for a hedged book: like the crowd, no maker starts near liquidation; one
        # whose start position needs more than half its capital as maintenance margin holds twice that instead
        maker_mm = np.array([float(maintenance_margin(tables[m], lots * self.markets.lot_size[m] * start[m]))
                             if m < self.n_perpetual else 0.0
                             for m, lots in zip(maker_market, maker_lots, strict=True)])  # fmt: skip
        capital = np.maximum(capital, 2.0 * maker_mm)
        # noise traders and keepers are exempt from liquidation and start at zero
        wallet = np.concatenate([np.where(crowd.isolated, 0.0, crowd.margin), capital, np.zeros(n_m + n_k),
                                 hedge["wallet"], np.asarray(arbs["capital"], dtype=float)])  # fmt: skip
        arb_kind = np.where(self.is_spot[np.asarray(arbs["market"], dtype=np.int64)], SPOT, ARBITRAGEUR)
        self.kind = np.concatenate(
            [
                np.full(n_c, CROWD),
                np.full(n_mk, MAKER),
                np.full(n_m, NOISE),
                np.full(n_k, KEEPER),
                np.full(n_h, HEDGER),
                arb_kind,
            ]
        ).astype(np.int8)
        n_acc = size.size
        self.owner = np.arange(n_acc, dtype=np.int64)
        """Who owns each account: hedged owners and arbitrageurs own one account per venue or leg."""
        first_hedger = n_c + n_mk + n_m + n_k
        self.owner[first_hedger : first_hedger + n_h] = first_hedger + hedge["owner"] * 2
        first_arb = first_hedger + n_h
        self.owner[first_arb : first_arb + n_a] = first_arb + np.asarray(arbs["owner"], dtype=np.int64)
        acc_ids = np.arange(n_acc, dtype=np.int32)
        pos_start, pos_count = group_by_account(n_acc, acc_ids)
        self.accounts = Accounts(np.asarray(self.markets.venue[pos_market], np.int32), wallet, pos_start, pos_count)
        self.positions = Positions(acc_ids, pos_market, size, entry, iso)
        self.accounting = Accounting(self.markets, self.accounts, self.positions)
        self.maker_ids = np.flatnonzero(self.kind == MAKER)
        self.noise_id = np.flatnonzero(self.kind == NOISE)  # one per market, in market order
        self.spot_account = np.zeros(n_acc, dtype=bool)
        self.spot_account[self.is_spot[pos_market]] = True
        self.watch_ids = np.flatnonzero(np.isin(self.kind, (MAKER, HEDGER, ARBITRAGEUR)) & ~self.spot_account)
        """Non-crowd accounts margin-checked every step."""
        self.maker_cfg = [mk_cfg.for_market(keys[m]) for m in range(n_m)]
        self.maker_state = [MakerState(peak_equity=self.maker_cfg[m].capital_usd) for m in maker_market]
        self.maker_start_lots = self.positions.size_lots[self.maker_ids].copy()
        self.maker_filled = np.zeros(n_acc, dtype=bool)
        """Set when a maker's order fills; the maker requotes at its next turn."""
        self._last_quote = [(np.nan, np.nan, np.nan, np.nan, np.nan)] * len(self.maker_ids)
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
        self._keeper_ids = keeper_ids
        keepers = {int(m): int(k) for m, k in zip(keeper_market, keeper_ids, strict=True)}
        self.liquidation = LiquidationEngine(self.venues, self.markets, self.accounts, self.positions, self.funds,
                                             self.execution, self.ledger, self.accounting, keepers)  # fmt: skip
        self.adl = AdlEngine(self.venues, self.accounting, streams.get("adl"))
        self.mark_engine = MarkEngine(self.venues, list(self.markets.venue), scenario.step_ms / 1000.0)
        self._peers = [
            (m, np.flatnonzero((self.asset_of == self.asset_of[m]) & (self.markets.venue != self.markets.venue[m])
                               & ~self.is_spot))
            for m in range(self.n_perpetual)
            if self.venues[venue_of[m]].mark.method is MarkMethod.HYPERLIQUID_MEDIAN
        ]  # fmt: skip
        self._peers = [(m, same) for m, same in self._peers if same.size]
        self.funding = FundingPhase(self.venues, cfgs, self.markets, self.books, self.positions, self.accounts,
                                    self.funds, scenario.step_ms)  # fmt: skip
        self.index_engine = IndexEngine(self.venues, venue_of, bases, ~self.is_spot, spot_book_of, scenario.step_ms)
        self.fundamental = start.copy()
        self.index_now = start.copy()
        self.kernel_step = 0
        self._closed_holders: list[int] = []
        """Collateral holders whose position closed since the last revaluation: they convert their collateral."""
        self.rails = TransferRails(scenario.rails, self.venue_names, scenario.ts_start_ms, streams.get("rails"))
        self.collateral = self._collateral_holdings(crowd, start, spot_book_of,
                                                    population_streams(scenario).fresh("collateral"))  # fmt: skip
        self.collateral_caused_accounts: dict[int, int] = {}
        self.hedges = self._hedge_pairs(hedge, first_hedger)
        self._hedge_accounts = set(self.hedges.leg_of())
        self.arbitrageurs = self._arbitrageurs(arbs, first_arb)
        self._taker_flow = [scenario.takers.for_market(k) for k in keys]
        """Per market: (rate_per_s, median_usd, buy_bias, sell_bias_after_shock), fixed for the run."""
        self._taker_rates = np.array([f[0] for f in self._taker_flow])
        self._taker_rng = streams.get("takers")
        self.funding_rate = self.funding.rate  # the phase updates it in place; marks and the recorder read it
        self._log_returns = np.zeros((n_m, max(2, int(mk_cfg.vol_window_s * 1000 // scenario.step_ms))))
        self._prev_mark = start.copy()

        self.crowd_ids = np.flatnonzero(self.kind == CROWD)
        pad = n_acc - n_c
        self.stop_price = np.concatenate([crowd.stop_price, np.full(pad, np.nan)])
        self.topup_reserve = np.concatenate([crowd.topup_reserve, np.zeros(pad)])
        self.topup_ratio = scenario.crowd.topup_margin_ratio
        # the top-up trigger is the liquidation-price solve with maintenance scaled by 1 / ratio
        self._topup_mmr = self.markets.tier_mmr / self.topup_ratio
        self._topup_cum = self.markets.tier_cum / self.topup_ratio
        self.stops = {"count": 0, "notional_usd": 0.0}
        self.topups = {"count": 0, "usd": 0.0}
        self.index = TriggerIndex(n_m, pos_market)
        self._lo = np.full(n_acc, -np.inf)
        self._band_cushion = np.zeros(n_acc)
        """Per account, USD its trigger bands leave aside for its collateral falling (see mechanisms.collateral)."""
        self._hi = np.full(n_acc, np.inf)
        self.collateral.fallen_pairs(scenario.engine.collateral_band_cushion)  # bands allow for collateral falls
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
        self.collateral_ts = np.full((steps, len(self.collateral.pairs), 2), np.nan)
        """Per step and collateral pair: the venue's margin price and the reference (fundamental) price."""
        self.value_start = self.total_value()
        self.units_start = self.asset_units()
        self.max_value_error = 0.0
        self.max_units_error = 0.0
        self.max_oi_imbalance = 0
        eng = scenario.engine
        self._invariant_every = (
            1 if eng.check_every_step else max(1, round(eng.invariant_interval_s * 1000 / scenario.step_ms))
        )
        """Steps between full invariant recounts (and the last step): O(positions) each, so not every step."""
        k = self.kernel
        for name, phase in (
            ("exogenous", self._phase_exogenous),
            ("makers", self._phase_makers),
            ("takers", self._phase_takers),
            ("arbitrage", self._phase_arbitrage),
            ("transfers", self._phase_transfers),
            ("prices", self._phase_prices),
            ("funding", self._phase_funding),
            ("liquidation", self._phase_liquidation),
            ("funds", self._phase_funds),
            ("record", self._phase_record),
        ):
            k.add(name, phase)

    # --- world building: hedgers, arbitrageurs, collateral --------------------------------------------------------
    def _key_index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.market_keys)}

    def _hedge_pairs(self, hedge: dict[str, np.ndarray], first: int) -> hedging.HedgePairs:
        hs = self.scenario.hedgers
        n = hedge["market"].size // 2
        acc = first + np.arange(2 * n)
        step_s = self.scenario.step_ms / 1000.0
        return hedging.HedgePairs(
            owner=first + 2 * np.arange(n),
            long_account=acc[0::2],
            short_account=acc[1::2],
            long_market=hedge["market"][0::2],
            short_market=hedge["market"][1::2],
            book=hedge["book"][0::2],
            capital_usd=hedge["wallet"][0::2] + hedge["wallet"][1::2],
            topup_ratio=[h.topup_margin_ratio for h in hs],
            topup_fraction=[h.topup_fraction for h in hs],
            adl_quantile=[h.adl_quantile for h in hs],
            leverage=[h.leg_leverage() for h in hs],
            check_every=[max(1, round(h.check_interval_s / step_s)) for h in hs],
        )

    def _arbitrage_accounts(self) -> dict[str, list[Any]]:
        ids = self._key_index()
        out: dict[str, list[Any]] = {"market": [], "capital": [], "owner": [], "spec": []}
        k = 0
        for b in self.scenario.arbitrage.basis:
            out["market"] += [ids[b.perpetual], ids[b.spot]]
            out["capital"] += [b.capital_usd, b.capital_usd]
            out["owner"] += [k, k]
            out["spec"].append(("basis", b))
            k += 2
        for c in self.scenario.arbitrage.cross_venue:
            out["market"] += [ids[c.legs[0]], ids[c.legs[1]]]
            out["capital"] += [c.capital_usd * c.capital_split[0], c.capital_usd * c.capital_split[1]]
            out["owner"] += [k, k]
            out["spec"].append(("cross", c))
            k += 2
        return out

    def _arbitrageurs(self, arbs: dict[str, list[Any]], first: int) -> list[arbitrage.ArbLegs]:
        traders = []
        for i, (kind, spec) in enumerate(arbs["spec"]):
            a, b = first + 2 * i, first + 2 * i + 1
            traders.append(
                arbitrage.ArbLegs(
                    owner=int(self.owner[a]),
                    account_a=a,
                    market_a=int(arbs["market"][2 * i]),
                    account_b=b,
                    market_b=int(arbs["market"][2 * i + 1]),
                    a_is_spot=False,
                    b_is_spot=kind == "basis",
                    threshold=spec.threshold_bps / 1e4,
                    clip_usd=spec.clip_usd,
                    max_leverage=spec.max_leverage,
                    max_position_usd=spec.max_position_usd,
                    rebalance_ratio=spec.rebalance_margin_ratio if kind == "cross" else None,
                )
            )
        return traders

    def _collateral_holdings(self, crowd: Any, start: np.ndarray, spot_book_of: dict[tuple[int, str], int],
                             rng: np.random.Generator) -> CollateralHoldings:  # fmt: skip
        """Crowd cross accounts margined in non-USD collateral, by the scenario's shares per venue. An account's
        quantity is its margin over the asset's haircut price at the start, so its margin balance is unchanged."""
        pairs: list[CollateralPair] = []
        account, pair, qty = [], [], []
        crowd_venue = self.markets.venue[crowd.market]
        for venue_name, shares in self.scenario.crowd.collateral.items():
            vi = self.venue_names.index(venue_name)
            cross = np.flatnonzero((crowd_venue == vi) & ~crowd.isolated)
            draw = rng.random(cross.size)
            low = 0.0
            for asset, share in shares.items():
                rule = self.venues[vi].collateral[asset]
                asset_path = self.paths.asset(asset) if asset in self.paths.assets else -1
                under = -1 if rule.underlying == "USDT" else self.paths.asset(rule.underlying)
                book = spot_book_of.get((vi, asset), -1) if rule.spot_symbol is not None else -1
                pairs.append(CollateralPair(vi, asset, rule, book, asset_path, under))
                chosen = cross[(draw >= low) & (draw < low + share)]
                low += share
                fundamental0 = self.paths.index[0, asset_path] if asset_path >= 0 else rule.rate
                price0 = (rule.rate * (1.0 if under < 0 else self.paths.index[0, under])
                          if rule.method is CollateralMethod.CONVERSION_RATE else fundamental0)  # fmt: skip
                account.append(chosen)
                pair.append(np.full(chosen.size, len(pairs) - 1))
                qty.append(crowd.margin[chosen] / (max(price0, rule.price_floor) * (1 - rule.haircut)))
        if not pairs:
            return CollateralHoldings([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        holdings = CollateralHoldings(pairs, np.concatenate(account), np.concatenate(pair), np.concatenate(qty))
        # the crowd's wallets already hold the margin in USD: take it out, then let revaluation put the value back
        self.accounts.wallet[holdings.account] = 0.0
        bid, ask = self.books.best_bid_ask()
        holdings.prices(self.paths.index[0], 0.5 * (bid + ask), self.last_trade)
        holdings.revalue(self.accounts.wallet)
        return holdings

    # --- invariants ------------------------------------------------------------------------------------------
    def total_value(self) -> float:
        """USD held by accounts (collateral value excluded: it is counted in units by :meth:`asset_units`), PnL at
        mark of perpetual positions, the cost of spot holdings, funds' equity, fee pools and money in transit, less
        bad debt and external inflows (margin top-ups from outside the venue): constant over a run."""
        pos = self.positions
        spot = self.is_spot[pos.market]
        base = pos.size_lots * self.markets.lot_size[pos.market]
        upnl = np.where(spot, -base * pos.entry_price, base * (self.markets.mark[pos.market] - pos.entry_price))
        funds = np.array([self.funds.equity(f, self.markets.mark) for f in range(len(self.venues))])
        # an exact sum (math.fsum's float), so the check measures the engine's bookkeeping, not its own rounding
        return exact_sum(
            self.accounts.wallet,
            -self.collateral.value,
            np.nan_to_num(pos.isolated_margin),
            upnl,
            funds,
            self.ledger.fee_pool,
            np.array([self.rails.in_transit_usd, -self.ledger.external_in]),
            -self.ledger.bad_debt,
        )

    def asset_units(self) -> dict[str, float]:
        """Units of each collateral asset in the system: held as collateral plus held in spot books' positions."""
        units = self.collateral.units_by_asset()
        pos = self.positions
        for m in np.flatnonzero(self.is_spot):
            asset = self.market_base[m]
            if asset in units:
                units[asset] += float(pos.size_lots[pos.market == m].sum() * self.markets.lot_size[m])
        return units

    def oi_imbalance(self) -> int:
        lots = np.bincount(self.positions.market, weights=self.positions.size_lots, minlength=self.markets.n)
        fund_lots = np.rint(self.funds.inventory.sum(axis=0) / self.markets.lot_size)
        return int(np.abs(np.rint(lots + fund_lots))[: self.n_perpetual].max(initial=0))

    # --- the world as traders see it (perpstress.mechanisms.traders.TradingWorld) --------------------------------
    def quotes(self, market: int) -> tuple[float, float]:
        return self.books.best(market, BID), self.books.best(market, ASK)

    def taker_fee_rate(self, market: int) -> float:
        return float(self.taker_fee[self.markets.venue[market]])

    def lot_size(self, market: int) -> float:
        return float(self.markets.lot_size[market])

    def trade(self, account: int, market: int, lots: int, limit_price: float) -> tuple[int, float]:
        fill = self._taker_trade(account, market, lots, limit_price)
        return fill.lots, fill.average_price

    def position_lots(self, account: int) -> int:
        return int(self.positions.size_lots[account])

    def equity(self, account: int) -> float:
        return self.accounting.unit_equity(*self.accounting.unit_of(account))

    def maintenance(self, account: int) -> float:
        return 0.0 if self.spot_account[account] else self.accounting.maintenance(account)

    def notional(self, account: int) -> float:
        return abs(self.accounting.base(account)) * float(self.markets.mark[self.positions.market[account]])

    def wallet(self, account: int) -> float:
        """Cash: a spot account's wallet less what its holdings cost; a futures account's cross wallet."""
        w = float(self.accounts.wallet[account])
        if self.spot_account[account]:
            w -= self.accounting.base(account) * float(self.positions.entry_price[account])
        return w

    def in_transit_to(self, account: int) -> float:
        return self.rails.pending_by_account.get(account, 0.0)

    def transfer(self, owner: int, src_account: int, dst_account: int, usd: float, purpose: str) -> None:
        if usd <= 0:
            return
        self.accounts.wallet[src_account] -= usd
        venues = self.accounts.venue
        self.rails.request(self.now_ms, owner, int(venues[src_account]), int(venues[dst_account]), src_account,
                           dst_account, usd, purpose)  # fmt: skip
        self._reband_one(src_account)

    def _reband_one(self, account: int) -> None:
        if self.kind[account] == CROWD:
            self._reband(np.array([account]))

    # --- phases ----------------------------------------------------------------------------------------------
    def _phase_exogenous(self, clock: Clock) -> None:
        self.now_ms = clock.ts_ms
        self.kernel_step = clock.step
        self.fundamental = self.paths.index[clock.step, self.asset_of]
        if not self.index_engine.endogenous:
            self.index_now = self.fundamental
        self.appetite = float(self.paths.appetite[clock.step])

    def _phase_makers(self, clock: Clock) -> None:
        rec = self.adl.record
        if len(rec.account) > self._adl_seen:  # ADL fills since the last step, against whom
            hit = np.asarray(rec.account[self._adl_seen :], dtype=np.int64)
            np.add.at(self.maker_adl_lots, hit, np.asarray(rec.lots[self._adl_seen :], dtype=float))
            self._adl_seen = len(rec.account)
        window = self.scenario.makers.vol_window_s if self.scenario.makers else 60.0
        self.maker_adl_lots *= 0.5 ** (clock.step_s / window)
        vol = np.sqrt(np.mean(self._log_returns**2, axis=1) / clock.step_s)  # realised vol per market
        last = self._last_quote
        for i, a in enumerate(self.maker_ids):
            m = int(self.positions.market[a])
            cfg = self.maker_cfg[m]
            mark = self.markets.mark[m]
            # the position a maker starts with stands for the hedged book of the other side; its quoting risk is
            # what it has taken on since
            inventory = float(
                (self.positions.size_lots[a] - self.maker_start_lots[i]) * self.markets.lot_size[m] * mark
            )
            equity = self.accounting.unit_equity(int(a), -1)
            held = abs(float(self.positions.size_lots[a]))
            adl_share = self.maker_adl_lots[a] / max(held + self.maker_adl_lots[a], 1.0)
            old = self.maker_state[i]
            state = update_state(cfg, old, vol[m], equity, adl_share, clock.step_s)
            self.maker_state[i] = state
            fair = float(self.fundamental[m] if self.is_spot[m] else self.index_now[m])
            if cfg.requote_bps > 0 and not self.maker_filled[a] and state.active == old.active:
                # requote only when something a maker watches has moved (its fills, fair value, vol, inventory,
                # appetite, the return ramp): the book keeps its previous ladder otherwise
                f0, v0, i0, ap0, r0 = last[i]
                if (abs(fair - f0) <= cfg.requote_bps * 1e-4 * f0 and abs(vol[m] - v0) <= 0.1 * max(v0, cfg.vol_ref)
                        and abs(inventory - i0) <= 0.02 * cfg.inventory_limit_usd and abs(self.appetite - ap0) <= 0.01
                        and abs(state.ramp - r0) <= 0.02):  # fmt: skip
                    continue
            self.maker_filled[a] = False
            last[i] = (fair, float(vol[m]), inventory, self.appetite, state.ramp)
            shape = quote_shape(cfg, state, fair, vol[m], inventory, self.appetite)
            if shape is None:
                self.books.cancel_owner_in(m, int(a))
            else:
                b = self.books
                post_ladder(b.price, b.lots, b.owner, b.count, m, int(a), shape.mid, shape.half, shape.spacing,
                            shape.levels, shape.side_usd, shape.bid_scale, shape.ask_scale,
                            float(self.markets.tick_size[m]), float(self.markets.lot_size[m]))  # fmt: skip

    def _phase_takers(self, clock: Clock) -> None:
        cfg = self.scenario.takers
        rng = self._taker_rng
        self.last_trade[:] = np.nan
        flow = self._taker_flow
        rates = self._taker_rates
        counts = rng.poisson(rates * clock.step_s, size=self.markets.n)
        for m in np.flatnonzero(counts):
            _, median_usd, buy_bias, sell_bias = flow[m]
            for _ in range(int(counts[m])):
                usd = median_usd * float(np.exp(cfg.sigma * rng.standard_normal()))
                p_sell = 0.5 + sell_bias * (1.0 - self.appetite) - buy_bias
                side = -1 if rng.random() < p_sell else 1
                mark = float(self.markets.mark[m])
                lots = side * max(1, int(usd / mark / self.markets.lot_size[m]))
                self._taker_trade(int(self.noise_id[m]), int(m), lots, mark * (1 + side * 0.02))

    def _phase_arbitrage(self, clock: Clock) -> None:
        for trader in self.arbitrageurs:
            arbitrage.act(self, trader)
        if self.hedges.n and any(clock.step % every == 0 for every in self.hedges.check_every):
            self.hedges.check(self, clock.step, self._adl_high())  # ranks only on steps when an owner looks

    def _adl_high(self) -> set[int]:
        """Hedged legs whose ADL score ranks above their book's quantile among the market's winning positions on
        the same side (the indicator venues show; estimated on at most 5,000 sampled candidates)."""
        high: set[int] = set()
        for i in range(self.hedges.n):
            q = self.hedges.adl_quantile[self.hedges.book[i]]
            if q is None:
                continue
            for a in (int(self.hedges.long_account[i]), int(self.hedges.short_account[i])):
                lots = int(self.positions.size_lots[a])
                if lots == 0:
                    continue
                m = int(self.positions.market[a])
                rank = self.adl.rank_percentile(m, a, 1 if lots > 0 else -1)
                if rank is not None and rank >= q:
                    high.add(a)
        return high

    def _phase_transfers(self, clock: Clock) -> None:
        landed: list[int] = []

        def credit(account: int, usd: float) -> None:
            self.accounts.wallet[account] += usd
            landed.append(account)

        self.rails.advance(clock.ts_ms, clock.step_s, 1.0 - self.appetite, credit)
        crowd = [a for a in landed if self.kind[a] == CROWD]
        if crowd:
            self._reband(np.array(crowd, dtype=np.int64))

    def _taker_trade(self, account: int, m: int, lots: int, limit: float) -> Fill:
        fill = self.execution.execute(m, lots, limit, False, account)
        if fill.lots:
            self.accounting.trade(account, -1, account, fill.lots, fill.average_price)
            venue = int(self.markets.venue[m])
            fee = self.taker_fee[venue] * abs(fill.lots) * self.markets.lot_size[m] * fill.average_price
            self.accounting.credit(account, -1, -fee)
            self.ledger.fee_pool[venue] += fee
        return fill

    def _marks(self, clock: Clock, sample: bool) -> None:
        bid, ask = self.books.best_bid_ask()
        mid = 0.5 * (bid + ask)
        peer = np.full(self.markets.n, np.nan)
        for m, same in self._peers:  # Hyperliquid's third input: other venues' perp mids of the same asset
            peer[m] = nanmedian(mid[same])  # NaN when every peer's book is empty
        to_funding = self.funding.seconds_to_settlement(clock.ts_ms)
        marks = self.mark_engine.step(clock.step, self.index_now, bid, ask, self.last_trade, self.funding_rate,
                                      to_funding, peer, sample=sample)  # fmt: skip
        self.markets.mark[:] = np.where(np.isnan(marks), self.index_now, marks)
        if self.n_perpetual < self.markets.n:  # a spot book's own price: its mid, else its last trade, else as before
            spot = slice(self.n_perpetual, None)
            last = np.where(np.isnan(self.last_trade[spot]), self._prev_mark[spot], self.last_trade[spot])
            self.markets.mark[spot] = np.where(np.isnan(mid[spot]), last, mid[spot])

    def _phase_prices(self, clock: Clock) -> None:
        if self.index_engine.endogenous:
            bid, ask = self.books.best_bid_ask()
            self.index_now = self.index_engine.step(clock.ts_ms, self.fundamental, 0.5 * (bid + ask))
        self._revalue_collateral()
        self._marks(clock, sample=True)
        r = np.log(self.markets.mark / self._prev_mark)
        self._log_returns[:, clock.step % self._log_returns.shape[1]] = r
        self._prev_mark = self.markets.mark.copy()

    def _revalue_collateral(self) -> None:
        """Price every collateral pair and revalue its holders; holders of a pair that fell past their bands'
        allowance are re-banded (and so checked this step when a band is crossed)."""
        if not self.collateral.pairs:
            return
        hold = self.collateral
        if self._closed_holders:  # an account whose position is gone (stop, ADL) repays its USD loan: collateral
            rows = sorted(r for a in self._closed_holders for r in hold.rows_of(a))  # to cash
            self._closed_holders = []
            for r in rows:
                if hold.quantity[r] > 0:
                    self.ledger.external_in += hold.convert_off_book(int(r))
        bid, ask = self.books.best_bid_ask()
        hold.prices(self.paths.index[self.kernel_step], 0.5 * (bid + ask), self.last_trade)
        hold.revalue(self.accounts.wallet)
        rebanded = hold.holders_of(hold.fallen_pairs(self.scenario.engine.collateral_band_cushion))
        crowd = rebanded[self.kind[rebanded] == CROWD]
        if crowd.size:
            self._reband(np.sort(crowd))

    def _phase_funding(self, clock: Clock) -> None:
        paid = self.funding.step(clock.step, clock.ts_ms, self.index_now)
        self._reband(paid[self.kind[paid] == CROWD])

    def _reband(self, accounts: np.ndarray) -> None:
        if accounts.size == 0:
            return
        acc = accounts.astype(np.int32)
        pos, mk = self.positions, self.markets
        ids = accounts.astype(np.int64)  # position id == account id
        cushion = self._band_cushion
        if self.collateral.pairs:
            cushion[ids] = self.collateral.band_cushion(ids, self.scenario.engine.collateral_band_cushion)
        position_bands(acc, self.accounts.pos_start, self.accounts.pos_count, self.accounts.wallet, cushion, pos.market,
                       pos.size_lots, pos.entry_price, pos.isolated_margin, mk.lot_size, mk.mark, mk.tier_cap,
                       mk.tier_mmr, mk.tier_cum, self._lo, self._hi)  # fmt: skip
        # stops and top-ups are band edges too (only crowd positions have them: NaN stops, no reserve elsewhere)
        fold_triggers(ids, pos.market, pos.size_lots, pos.entry_price, pos.isolated_margin, self.accounts.wallet,
                      cushion, mk.lot_size, self.stop_price, self.topup_reserve, mk.tier_cap, self._topup_mmr,
                      self._topup_cum, self._lo, self._hi)  # fmt: skip
        open_ = ids[self.positions.size_lots[ids] != 0]
        closed = ids[self.positions.size_lots[ids] == 0]
        if open_.size:
            self.index.set_bands(open_, self._lo[open_], self._hi[open_])
        if closed.size:
            self.index.deactivate(closed)
            if self.collateral.pairs:  # every crowd position closes through here (stop, liquidation, ADL)
                row_of = self.collateral.row_of
                self._closed_holders += [int(a) for a in closed if a < row_of.size and row_of[a] >= 0]

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
        with self.kernel.timing.section("cascade"):
            self._cascade(clock)

    def _cascade(self, clock: Clock) -> None:
        """The within-step cascade: rounds of margin check, liquidation and ADL until nothing more fires."""
        for _ in range(self.scenario.engine.max_cascade_rounds):
            fired = self.index.fired(self.markets.mark)
            self._stops_and_topups(fired)
            candidates = np.unique(np.concatenate([fired, self.watch_ids]).astype(np.int64))
            candidates = candidates[(self.positions.size_lots[candidates] != 0) & ~self.spot_account[candidates]]
            units = self._liquidatable(candidates)
            if units and self.collateral.pairs:
                units = self._sell_collateral(units)
            liquidated = {a for a, _ in units}
            survivors = fired[[int(a) not in liquidated for a in fired]] if fired.size else fired
            self._reband(survivors[self.kind[survivors] == CROWD])
            if not units:
                break
            liq_before, adl_before = len(self.liquidation.record.lots), len(self.adl.record.lots)
            by_venue: dict[int, list[tuple[int, int]]] = {}
            for account in {a for a, _ in units if self.kind[a] == MAKER}:
                self.books.cancel_owner(account)  # every procedure starts by cancelling the account's open orders
            for unit in units:
                by_venue.setdefault(int(self.accounts.venue[unit[0]]), []).append(unit)
            for venue, vunits in sorted(by_venue.items()):
                requests = self.liquidation.liquidate(clock.ts_ms, venue, vunits)
                fund_empty = self.funds.balance[venue] <= 0.01 * max(self.funds.start_balance[venue], 1.0)
                hit_from = len(self.adl.record.account)
                self.adl.execute_batch(clock.ts_ms, requests, self.mark_engine.previous, self.index_now, fund_empty)
                for req in requests:
                    self.liquidation.settle_gap(venue, *self.accounting.unit_of(req.position))
                for hit in set(self.adl.record.account[hit_from:]):  # a winner closed at a bankruptcy price far
                    self.liquidation.settle_gap(venue, *self.accounting.unit_of(int(hit)))  # past mark can go under
                self._record_adl_closes(hit_from)
            touched = np.array(sorted(liquidated), dtype=np.int64)
            touched = np.concatenate([touched, np.array(self.adl.record.account[adl_before:], dtype=np.int64)])
            self._reband(np.unique(touched[self.kind[touched] == CROWD]))
            if self._hedge_accounts:
                self._note_hedge_fills(liq_before, adl_before)
            if len(self.liquidation.record.lots) + len(self.adl.record.lots) == liq_before + adl_before:
                break  # nothing filled or closed: another round would find the same units and the same books
            self._revalue_collateral()
            self._marks(clock, sample=False)

    def _record_adl_closes(self, adl_from: int) -> None:
        """The liquidated side of ADL fills is a liquidation too (venues count it so): one row of kind ``adl`` per
        bankrupt unit and market, at the fills' average price, so liquidation totals include what ADL closed."""
        adl, liq = self.adl.record, self.liquidation.record
        closes: dict[tuple[int, int, int, int], list[float]] = {}
        for i in range(adl_from, len(adl.lots)):
            key = (int(adl.venue[i]), int(adl.market[i]), int(adl.bankrupt_account[i]), -int(adl.side[i]))
            row = closes.setdefault(key, [0.0, 0.0, float(adl.mark[i])])
            row[0] += adl.lots[i]
            row[1] += adl.notional_usd[i]
        for (venue, market, account, side), (lots, notional, mark) in closes.items():
            price = notional / (lots * float(self.markets.lot_size[market]))
            liq.add(self.now_ms, venue, market, account, side, side * int(lots), notional, price, mark, "adl", 0.0)

    def _note_hedge_fills(self, liq_from: int, adl_from: int) -> None:
        liq, adl = self.liquidation.record, self.adl.record
        fills = [
            (int(a), "liquidation", int(n)) for a, n in zip(liq.account[liq_from:], liq.lots[liq_from:], strict=True)
        ]
        fills += [(int(a), "adl", int(n)) for a, n in zip(adl.account[adl_from:], adl.lots[adl_from:], strict=True)]
        hit = [f for f in fills if f[0] in self._hedge_accounts]
        if hit:
            self.hedges.note_fills(self, hit, self.markets.mark)

    def _sell_collateral(self, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A liquidation whose account would have stood with its collateral at the reference price is counted
        against the pair that fell most. Then the account's collateral is sold into its venue's own spot book (IOC
        down to ``max_sale_discount`` below the best bid) and the rest converted off-book; units the cash saves
        are dropped."""
        hold = self.collateral
        for account, position in units:
            if position >= 0 or not hold.rows_of(account):
                continue
            extra = hold.shortfall_at_reference(account)
            if extra <= 0 or account in self.collateral_caused_accounts:
                continue
            equity = self.accounting.unit_equity(account, -1)
            requirement = sum(self.accounting.maintenance(p) for p in self.accounting.unit_positions(account, -1))
            if equity + extra >= requirement:
                rows = hold.rows_of(account)
                worst = max(
                    rows, key=lambda r: hold.quantity[r] * (hold.reference[hold.pair[r]] - hold.price[hold.pair[r]])
                )
                pair_id = int(hold.pair[worst])
                hold.caused[pair_id] += 1
                self.collateral_caused_accounts[account] = pair_id
        sold_any = False
        for account, position in units:
            if position >= 0:
                continue
            for r in hold.rows_of(account):
                if hold.quantity[r] <= 0:
                    continue
                pair = hold.pairs[hold.pair[r]]
                m = pair.spot_market
                if m >= 0:
                    lots = int(hold.quantity[r] / self.markets.lot_size[m])
                    bid, _ = self.quotes(m)
                    if lots > 0 and np.isfinite(bid):
                        fill = self.execution.execute(m, -lots, bid * (1 - hold.max_sale_discount), False, account)
                        if fill.lots:
                            q = -fill.lots * float(self.markets.lot_size[m])
                            hold.sold(r, q, q * fill.average_price, self.accounts.wallet)
                sold_any = True
                self.ledger.external_in += hold.convert_off_book(r)
        if sold_any:
            self._revalue_collateral()
            still = set(self._liquidatable(np.array(sorted({a for a, _ in units}), dtype=np.int64)))
            units = [u for u in units if u in still]
        return units

    def _phase_funds(self, clock: Clock) -> None:
        frac = self.scenario.engine.fund_unwind_fraction
        for k in self._keeper_ids[self.positions.size_lots[self._keeper_ids] != 0]:  # keepers unwind too
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
        ts["index"][t] = np.where(self.is_spot, self.fundamental, self.index_now)
        ts["mark"][t] = mk.mark
        ts["last"][t] = self.last_trade
        ts["best_bid"][t] = bid
        ts["best_ask"][t] = ask
        # depth within 1 % of the book's own mid (as Binance's bookDepth archive measures it); a one-sided book
        # measures from its best price, an empty one from the mark
        centre = np.where(np.isnan(bid), ask, np.where(np.isnan(ask), bid, 0.5 * (bid + ask)))
        centre = np.where(np.isnan(centre), mk.mark, centre)
        self.books.depth_all(0.01, centre, ts["depth_bid_1pct_usd"][t], ts["depth_ask_1pct_usd"][t])
        longs = self.accounting.long_lots
        fund_long = np.maximum(self.funds.inventory, 0).sum(axis=0) / mk.lot_size
        ts["open_interest_usd"][t] = np.where(self.is_spot, np.nan, (longs + fund_long) * mk.lot_size * mk.mark)
        ts["funding_rate"][t] = np.where(self.is_spot, np.nan, self.funding_rate)
        if self.collateral.pairs:
            self.collateral_ts[t, :, 0] = self.collateral.price
            self.collateral_ts[t, :, 1] = self.collateral.reference
        equity = np.array([self.funds.equity(f, mk.mark) for f in range(len(self.venues))])
        ts["insurance_fund_usd"][t] = equity[mk.venue]
        if t % self._invariant_every == 0 or t == self.scenario.steps - 1:  # full recounts, O(positions)
            self.max_value_error = max(self.max_value_error, abs(self.total_value() - self.value_start))
            self.max_oi_imbalance = max(self.max_oi_imbalance, self.oi_imbalance())
            units = self.asset_units()
            for asset, start_units in self.units_start.items():
                self.max_units_error = max(self.max_units_error, abs(units[asset] - start_units))
            recount = np.bincount(
                self.positions.market, weights=np.maximum(self.positions.size_lots, 0), minlength=mk.n
            )
            if not np.array_equal(recount.astype(np.int64), self.accounting.long_lots):  # spot rows included
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
