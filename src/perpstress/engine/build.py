"""Building a run's World from a scenario: the population becomes accounts and positions, makers take the crowd's
net position, keepers, hedged owners and arbitrageurs get their accounts, crowd accounts margined in non-USD
collateral get their holdings.

Rules of the build (what a run starts from):

- Makers hold the crowd's net position per market, split evenly (the first maker takes the remainder), so every
  market's open interest balances. A maker's start position stands for a hedged book: like the crowd, no maker
  starts near liquidation; one whose start position needs more than half its capital as maintenance margin holds
  twice that instead.
- Noise traders and keepers are exempt from liquidation and start at zero.
- A collateral holder's quantity is its margin over the asset's haircut price at the start, so its margin balance
  is unchanged: its USD wallet is emptied and revaluation puts the value back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from perpstress.config.layout import market_layout
from perpstress.config.scenario import Scenario
from perpstress.config.venue import CollateralMethod
from perpstress.errors import UsageError
from perpstress.mechanisms import arbitrage, exogenous, hedging
from perpstress.mechanisms.agents.resting import post_resting_orders
from perpstress.mechanisms.collateral import CollateralHoldings, CollateralPair
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.mechanisms.liquidation import PROCEDURES
from perpstress.mechanisms.transfers import TransferRails
from perpstress.population.initial import InitialDraw, draw_population, population_key, population_streams
from perpstress.population.positions_file import PositionsSnapshot
from perpstress.rules.margin import maintenance_margin
from perpstress.state.ledger import Ledger
from perpstress.state.orderbook import OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account
from perpstress.state.triggers import TriggerIndex
from perpstress.state.world import ABSORBER, ARBITRAGEUR, CROWD, HEDGER, KEEPER, MAKER, NOISE, RESTING, SPOT, World
from perpstress.streams import RandomStreams


@dataclass
class Built:
    """A built World and the agents that own accounts in it."""

    world: World
    hedges: hedging.HedgePairs
    arbitrageurs: list[arbitrage.ArbLegs]
    keepers: dict[int, int]
    """Drift markets' keeper account, by market."""


def build_world(scenario: Scenario, scale: float, positions: PositionsSnapshot | None,
                population: InitialDraw | None, streams: RandomStreams) -> Built:  # fmt: skip
    """The World a run of ``scenario`` starts from (see the module docstring); ``positions`` replace the crowd,
    ``population`` is a population drawn beforehand for this scenario and ``scale``."""
    problems = scenario.run_problems(scale)
    if problems or scenario.shock is None or scenario.makers is None:
        raise UsageError(f"scenario {scenario.name}: {'; '.join(problems)}")
    venues = list(scenario.venues.values())
    venue_names = [v.name for v in venues]
    layout = market_layout(scenario)
    keys, venue_of, tables = list(layout.keys), list(layout.venue_of), list(layout.tables)
    lots, ticks, bases = list(layout.lot_size), list(layout.tick_size), list(layout.base)
    n_perpetual = layout.n_perpetual
    n_m = len(keys)
    is_spot = np.arange(n_m) >= n_perpetual
    markets = Markets.from_tables(venue_of, lots, ticks, tables)
    paths = exogenous.generate(
        scenario.shock, scenario.steps, scenario.step_ms / 1000.0, scenario.ts_start_ms, streams.get("shock")
    )
    asset_of = np.array([paths.asset(b) for b in bases])
    start = paths.index[0, asset_of]
    markets.mark[:] = start

    if population is None:
        crowd, hedged = draw_population(scenario, keys, bases, start, markets.lot_size, tables, scale, positions)
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
        [m for m in range(n_m) if PROCEDURES[type(venues[venue_of[m]].liquidation)].needs_keeper], dtype=np.int64
    )
    keeper_market = keeper_market[keeper_market < n_perpetual]
    n_k = keeper_market.size
    arbs = _arbitrage_accounts(scenario, keys)
    n_h = hedge["market"].size
    n_a = len(arbs["market"])
    n_ab = n_m if scenario.engine.forced_flow == "absorbed_at_mark" or mk_cfg.lay_off else 0
    n_rs = n_m if scenario.resting is not None else 0
    key_ids = {k: i for i, k in enumerate(keys)}
    mh_market = np.array([key_ids[h.hedge] for h in mk_cfg.hedges], dtype=np.int64)
    n_mh = mh_market.size
    flow_market, flow_size = _flow_pools(scenario, keys, scale)
    flow_pos_market = np.repeat(flow_market, flow_size)
    n_f = flow_pos_market.size
    pos_market = np.concatenate([crowd.market, maker_market, np.arange(n_m), keeper_market, hedge["market"],
                                 arbs["market"], np.arange(n_ab), np.arange(n_rs), mh_market,
                                 flow_pos_market]).astype(np.int32)  # fmt: skip
    size = np.concatenate([crowd.size_lots, maker_lots, np.zeros(n_m + n_k, np.int64), hedge["size"],
                           np.zeros(n_a + n_ab + n_rs + n_mh + n_f, np.int64)])  # fmt: skip
    entry = np.concatenate([crowd.entry_price, start[maker_market], start, start[keeper_market],
                            start[hedge["market"]], start[np.asarray(arbs["market"], dtype=np.int64)],
                            start[:n_ab], start[:n_rs], start[mh_market], start[flow_pos_market]])  # fmt: skip
    n_rest = n_mk + n_m + n_k + n_h + n_a + n_ab + n_rs + n_mh + n_f
    iso = np.concatenate([np.where(crowd.isolated, crowd.margin, np.nan), np.full(n_rest, np.nan)])
    capital = np.array([mk_cfg.for_market(keys[m]).capital_usd for m in maker_market])
    maker_mm = np.array([float(maintenance_margin(tables[m], lots * markets.lot_size[m] * start[m]))
                         if m < n_perpetual else 0.0
                         for m, lots in zip(maker_market, maker_lots, strict=True)])  # fmt: skip
    capital = np.maximum(capital, 2.0 * maker_mm)
    wallet = np.concatenate([np.where(crowd.isolated, 0.0, crowd.margin), capital, np.zeros(n_m + n_k),
                             hedge["wallet"], np.asarray(arbs["capital"], dtype=float), np.zeros(n_ab + n_rs),
                             np.array([h.capital_usd for h in mk_cfg.hedges]), np.zeros(n_f)])  # fmt: skip
    arb_kind = np.where(is_spot[np.asarray(arbs["market"], dtype=np.int64)], SPOT, ARBITRAGEUR)
    kind = np.concatenate(
        [
            np.full(n_c, CROWD),
            np.full(n_mk, MAKER),
            np.full(n_m, NOISE),
            np.full(n_k, KEEPER),
            np.full(n_h, HEDGER),
            arb_kind,
            np.full(n_ab, ABSORBER),
            np.full(n_rs, RESTING),
            np.full(n_mh, HEDGER),
            np.full(n_f, CROWD),
        ]
    ).astype(np.int8)
    n_acc = size.size
    owner = np.arange(n_acc, dtype=np.int64)
    first_hedger = n_c + n_mk + n_m + n_k
    owner[first_hedger : first_hedger + n_h] = first_hedger + hedge["owner"] * 2
    first_arb = first_hedger + n_h
    owner[first_arb : first_arb + n_a] = first_arb + np.asarray(arbs["owner"], dtype=np.int64)
    acc_ids = np.arange(n_acc, dtype=np.int32)
    pos_start, pos_count = group_by_account(n_acc, acc_ids)
    accounts = Accounts(np.asarray(markets.venue[pos_market], np.int32), wallet, pos_start, pos_count)
    positions_ = Positions(acc_ids, pos_market, size, entry, iso)

    limits = [
        FundLimits(
            max_takeover_notional_fraction=v.insurance_fund.max_takeover_notional_fraction,
            adl_drawdown_fraction=v.insurance_fund.adl_drawdown_fraction,
            drawdown_window_ms=int(v.insurance_fund.drawdown_window_hours * 3_600_000)
            if v.insurance_fund.drawdown_window_hours
            else None,
            per_market_claim_cap_usd=v.insurance_fund.per_market_claim_cap_usd,
        )
        for v in venues
    ]
    funds = InsuranceFunds.create([v.insurance_fund.initial_usd for v in venues], n_m, limits)
    books = OrderBooks(n_m, scenario.engine.book_capacity, markets.tick_size, markets.lot_size)
    last_trade = np.full(n_m, np.nan)
    rails = TransferRails(scenario.rails, venue_names, scenario.ts_start_ms, streams.get("rails"))
    collateral_rng = population_streams(scenario).fresh("collateral")
    collateral = _collateral_holdings(scenario, venues, paths, markets, accounts, books, last_trade, crowd,
                                      layout.spot_book_of, collateral_rng)  # fmt: skip
    pad = n_acc - n_c
    first_flow = n_acc - n_f
    maker_hedge_ids = np.arange(first_flow - n_mh, first_flow, dtype=np.int64)
    flow_start = first_flow + np.concatenate([[0], np.cumsum(flow_size)[:-1]]).astype(np.int64)
    world = World(
        scenario=scenario,
        venues=venues,
        market_keys=keys,
        market_base=bases,
        market_cfg=list(layout.perpetual_config),
        n_perpetual=n_perpetual,
        spot_book_of=layout.spot_book_of,
        paths=paths,
        asset_of=asset_of,
        markets=markets,
        accounts=accounts,
        positions=positions_,
        kind=kind,
        owner=owner,
        books=books,
        funds=funds,
        ledger=Ledger(np.zeros(len(venues)), np.zeros(len(venues))),
        collateral=collateral,
        rails=rails,
        triggers=TriggerIndex(n_m, pos_market),
        maker_fee=np.array([v.fees.maker_rate for v in venues]),
        taker_fee=np.array([v.fees.taker_rate for v in venues]),
        stop_price=np.concatenate([crowd.stop_price, np.full(pad, np.nan)]),
        topup_reserve=np.concatenate([crowd.topup_reserve, np.zeros(pad)]),
        topup_delay_ms=np.concatenate([_topup_delays(scenario, n_c, streams), np.zeros(pad)]),
        log_returns=np.zeros((n_m, max(2, int(mk_cfg.vol_window_s * 1000 // scenario.step_ms)))),
        now_ms=scenario.ts_start_ms,
        fundamental=start.copy(),
        index_now=start.copy(),
        appetite=float(paths.appetite[0]),
        last_trade=last_trade,
        maker_hedge_ids=maker_hedge_ids,
        flow_pool_start=flow_start,
        flow_pool_size=flow_size,
    )
    if scenario.resting is not None:
        post_resting_orders(world, scenario.resting, mk_cfg)
    keepers = {int(m): int(k) for m, k in zip(keeper_market, world.keeper_ids, strict=True)}
    hedges = _hedge_pairs(scenario, hedge, first_hedger)
    arbitrageurs = _arbitrageurs(arbs, first_arb, owner)
    return Built(world, hedges, arbitrageurs, keepers)


def _flow_pools(scenario: Scenario, keys: list[str], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per flow market (``flow.markets``' order): its market row and its dormant pool's size, ``accounts x scale``
    (at least one); none while the flow is off."""
    flow = scenario.flow
    if not flow.enabled:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ids = {k: i for i, k in enumerate(keys)}
    market = np.array([ids[k] for k in flow.markets], dtype=np.int64)
    size = np.array([max(1, round(f.accounts * scale)) for f in flow.markets.values()], dtype=np.int64)
    return market, size


def _topup_delays(scenario: Scenario, n_crowd: int, streams: RandomStreams) -> np.ndarray:
    """Per crowd account, ms from a margin call to its top-up: log-normal around ``crowd.topup_delay_median_s``
    (``topup_delay_sigma``), infinite for the ``topup_unanswered_share`` that never answer (a uniform below it); the
    run's ``margin_calls`` stream draws every account's uniform, then every account's normal; zeros (no draws) while
    both are 0."""
    c = scenario.crowd
    if c.topup_delay_median_s == 0 and c.topup_unanswered_share == 0:
        return np.zeros(n_crowd)
    rng = streams.get("margin_calls")
    never = rng.random(n_crowd) < c.topup_unanswered_share
    delay = c.topup_delay_median_s * 1000.0 * np.exp(c.topup_delay_sigma * rng.standard_normal(n_crowd))
    return np.where(never, np.inf, delay)


def _hedge_pairs(scenario: Scenario, hedge: dict[str, np.ndarray], first: int) -> hedging.HedgePairs:
    hs = scenario.hedgers
    n = hedge["market"].size // 2
    acc = first + np.arange(2 * n)
    step_s = scenario.step_ms / 1000.0
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


def _arbitrage_accounts(scenario: Scenario, keys: list[str]) -> dict[str, list[Any]]:
    ids = {k: i for i, k in enumerate(keys)}
    out: dict[str, list[Any]] = {"market": [], "capital": [], "owner": [], "spec": []}
    k = 0
    for b in scenario.arbitrage.basis:
        out["market"] += [ids[b.perpetual], ids[b.spot]]
        out["capital"] += [b.capital_usd, b.capital_usd]
        out["owner"] += [k, k]
        out["spec"].append(("basis", b))
        k += 2
    for c in scenario.arbitrage.cross_venue:
        out["market"] += [ids[c.legs[0]], ids[c.legs[1]]]
        out["capital"] += [c.capital_usd * c.capital_split[0], c.capital_usd * c.capital_split[1]]
        out["owner"] += [k, k]
        out["spec"].append(("cross", c))
        k += 2
    return out


def _arbitrageurs(arbs: dict[str, list[Any]], first: int, owner: np.ndarray) -> list[arbitrage.ArbLegs]:
    traders = []
    for i, (kind, spec) in enumerate(arbs["spec"]):
        a, b = first + 2 * i, first + 2 * i + 1
        traders.append(
            arbitrage.ArbLegs(
                owner=int(owner[a]),
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


def _collateral_holdings(scenario: Scenario, venues: list[Any], paths: exogenous.ExogenousPaths, markets: Markets,
                         accounts: Accounts, books: OrderBooks, last_trade: np.ndarray, crowd: Any,
                         spot_book_of: dict[tuple[int, str], int],
                         rng: np.random.Generator) -> CollateralHoldings:  # fmt: skip
    """Crowd cross accounts margined in non-USD collateral, by the scenario's shares per venue. An account's
    quantity is its margin over the asset's haircut price at the start, so its margin balance is unchanged."""
    venue_names = [v.name for v in venues]
    pairs: list[CollateralPair] = []
    account, pair, qty = [], [], []
    crowd_venue = markets.venue[crowd.market]
    for venue_name, shares in scenario.crowd.collateral.items():
        vi = venue_names.index(venue_name)
        cross = np.flatnonzero((crowd_venue == vi) & ~crowd.isolated)
        draw = rng.random(cross.size)
        low = 0.0
        for asset, share in shares.items():
            rule = venues[vi].collateral[asset]
            asset_path = paths.asset(asset) if asset in paths.assets else -1
            under = -1 if rule.underlying == "USDT" else paths.asset(rule.underlying)
            book = spot_book_of.get((vi, asset), -1) if rule.spot_symbol is not None else -1
            pairs.append(CollateralPair(vi, asset, rule, book, asset_path, under))
            chosen = cross[(draw >= low) & (draw < low + share)]
            low += share
            fundamental0 = paths.index[0, asset_path] if asset_path >= 0 else rule.rate
            price0 = (rule.rate * (1.0 if under < 0 else paths.index[0, under])
                      if rule.method is CollateralMethod.CONVERSION_RATE else fundamental0)  # fmt: skip
            account.append(chosen)
            pair.append(np.full(chosen.size, len(pairs) - 1))
            qty.append(crowd.margin[chosen] / (max(price0, rule.price_floor) * (1 - rule.haircut)))
    if not pairs:
        return CollateralHoldings([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    holdings = CollateralHoldings(pairs, np.concatenate(account), np.concatenate(pair), np.concatenate(qty))
    # the crowd's wallets already hold the margin in USD: take it out, then let revaluation put the value back
    accounts.wallet[holdings.account] = 0.0
    bid, ask = books.best_bid_ask()
    holdings.prices(paths.index[0], 0.5 * (bid + ask), last_trade)
    holdings.revalue(accounts.wallet)
    return holdings
