"""The funding phase on small hand-built worlds: the rule each venue preset gets, the venues' worked examples run
through the phase (shared/reference/exchange-rules.md section 2), and settlement that conserves money."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from perpstress.calculator import load_venue
from perpstress.config.markets import PerpetualMarket
from perpstress.config.venue import FundingCap, FundingMethod, PremiumAveraging, VenueConfig
from perpstress.mechanisms.funding import (
    AVERAGES,
    CAPS,
    FUNDING_RULES,
    DriftTwapSpreadFunding,
    DydxPremiumVotesFunding,
    FundingPhase,
    LinearWeightedAverage,
    MeanAverage,
    MidPremiumMovingAverageFunding,
    PremiumInterestClampFunding,
)
from perpstress.mechanisms.insurance import FundLimits, InsuranceFunds
from perpstress.rules import funding as funding_rules
from perpstress.state.orderbook import ASK, BID, OrderBooks
from perpstress.state.portfolio import Accounts, Markets, Positions, group_by_account

HOUR_MS = 3_600_000
T0 = 8 * HOUR_MS * 61_000
"""A settlement time of every interval (a multiple of 8 h since the epoch, 2025-09)."""
DEEP = 1e7
"""Base units at one price level: enough for any impact notional, so the impact price is that level's price."""


@dataclass
class World:
    phase: FundingPhase
    venues: list[VenueConfig]
    markets: Markets
    books: OrderBooks
    positions: Positions
    accounts: Accounts
    funds: InsuranceFunds

    def cash(self) -> np.ndarray:
        """Each position's holder's money: isolated margin, else cross wallet (one position per account)."""
        return self.accounts.wallet + np.nan_to_num(self.positions.isolated_margin)

    def quote(self, market: int, bid: float, ask: float) -> None:
        """One deep bid level and one deep ask level."""
        self.books.replace_ladder(market, BID, 10_000, np.array([bid]), np.array([DEEP]))
        self.books.replace_ladder(market, ASK, 10_000, np.array([ask]), np.array([DEEP]))


def build(
    venues: list[VenueConfig],
    symbols: list[tuple[int, str]],
    holdings: Sequence[tuple[int, int, bool]] = (),
    fund_inventory: dict[tuple[int, int], float] | None = None,
    step_ms: int = 1000,
    price: float = 100.0,
) -> World:
    """Markets ``(venue, symbol)`` with lot size 1 and tick 0.01; ``holdings`` ``(market, lots, isolated)``, one
    account each with 1,000 USD; ``fund_inventory`` ``{(fund, market): base units}``."""
    configs: list[PerpetualMarket] = [venues[v].perpetuals[s] for v, s in symbols]
    n = len(symbols)
    markets = Markets.from_tables([v for v, _ in symbols], [1.0] * n, [0.01] * n, [c.tier_table() for c in configs])
    markets.mark[:] = price
    k = len(holdings)
    acc = np.arange(k, dtype=np.int32)
    start, count = group_by_account(k, acc)
    isolated = np.array([h[2] for h in holdings], dtype=bool)
    market_of = np.array([h[0] for h in holdings], dtype=np.int32)
    accounts = Accounts(markets.venue[market_of], np.where(isolated, 0.0, 1_000.0), start, count)
    positions = Positions(acc, market_of, np.array([h[1] for h in holdings], dtype=np.int64), np.full(k, price),
                          np.where(isolated, 1_000.0, np.nan))  # fmt: skip
    funds = InsuranceFunds.create([1e6] * len(venues), n, [FundLimits() for _ in venues])
    for (f, m), units in (fund_inventory or {}).items():
        funds.inventory[f, m] = units
    books = OrderBooks(n, 8, markets.tick_size, markets.lot_size)
    phase = FundingPhase(venues, configs, markets, books, positions, accounts, funds, step_ms)
    return World(phase, venues, markets, books, positions, accounts, funds)


def run(world: World, steps: int, index: Callable[[int], float], step_ms: int = 1000, ts0: int = T0 + 1) -> None:
    """Drive the phase ``steps`` steps from ``ts0`` (by default just after a settlement) with every market's index
    at ``index(step)``; the books are as the test left them."""
    for s in range(steps):
        world.phase.step(s, ts0 + s * step_ms, np.full(world.markets.n, index(s)))


def with_funding(venue: VenueConfig, **changes: object) -> VenueConfig:
    return venue.model_copy(update={"funding": venue.funding.model_copy(update=changes)})


# --- which rule --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "symbol", "rule", "average"),
    [
        ("binance", "BTCUSDT", PremiumInterestClampFunding, LinearWeightedAverage),
        ("bybit", "BTCUSDT", PremiumInterestClampFunding, LinearWeightedAverage),
        ("hyperliquid", "BTC", PremiumInterestClampFunding, MeanAverage),
        ("okx", "BTC-USDT-SWAP", MidPremiumMovingAverageFunding, MeanAverage),
        ("dydx", "BTC-USD", DydxPremiumVotesFunding, MeanAverage),
        ("drift", "BTC-PERP", DriftTwapSpreadFunding, MeanAverage),
    ],
)
def test_the_registry_picks_each_presets_rule_and_averaging(preset: str, symbol: str, rule: type,
                                                             average: type) -> None:  # fmt: skip
    w = build([load_venue(preset)], [(0, symbol)])
    assert len(w.phase.rules) == 1
    built = w.phase.rules[0]
    assert type(built) is rule
    assert type(built.average) is average
    np.testing.assert_array_equal(built.rows, [0])


def test_every_method_averaging_and_cap_has_an_entry() -> None:
    assert set(FUNDING_RULES) == set(FundingMethod)
    assert set(AVERAGES) == set(PremiumAveraging)
    assert set(CAPS) == set(FundingCap)


def test_one_rule_per_venue_over_its_own_markets_only() -> None:
    w = build([load_venue("binance"), load_venue("okx")], [(0, "BTCUSDT"), (1, "BTC-USDT-SWAP"), (0, "ETHUSDT")])
    assert [type(r) for r in w.phase.rules] == [PremiumInterestClampFunding, MidPremiumMovingAverageFunding]
    np.testing.assert_array_equal(w.phase.rules[0].rows, [0, 2])
    np.testing.assert_array_equal(w.phase.rules[1].rows, [1])


def test_caps_are_resolved_per_market_at_build() -> None:
    binance, okx, dydx, drift, hl = (load_venue(v) for v in ("binance", "okx", "dydx", "drift", "hyperliquid"))
    cases = [
        (binance, "BTCUSDT", 0.75 * 0.004),  # k x first-tier MMR
        (okx, "BTC-USDT-SWAP", 0.00375),  # the market's own cap overrides the venue's 1.5 %
        (okx, "ACE-USDT-SWAP", 0.015),  # no market cap: the venue's fixed cap
        (dydx, "BTC-USD", 6 * (0.05 - 0.03) / 8),  # 6 (IMF - MMF) per 8 h, paid hourly
        (drift, "BTC-PERP", 1 / 33 / 24),  # contract tier A
        (hl, "BTC", 0.04),  # 4 % per hour
    ]
    for venue, symbol, cap in cases:
        rule = build([venue], [(0, symbol)]).phase.rules[0]
        assert float(rule.markets.cap[0]) == pytest.approx(cap), (venue.name, symbol)


# --- worked examples through the phase ---------------------------------------------------------------------------
def test_binance_constant_premium_rate_scaled_to_the_interval_and_capped_by_mmr() -> None:
    # test_funding_rules: 0.1 % premium all interval -> 0.1 % - 0.05 % at 8 h, half at 4 h; a 5 % premium is capped at
    # 0.75 x MMR (BTCUSDT tier 1 MMR 0.4 %). Binance: https://www.binance.com/en/support/articles/360033525031
    binance = load_venue("binance")
    for venue, expected in ((binance, 0.0005), (with_funding(binance, interval_hours=4.0), 0.00025)):
        w = build([venue], [(0, "BTCUSDT")], step_ms=5000)
        w.quote(0, 100.1, 100.2)  # impact bid 100.1 over an index of 100: premium 0.1 %
        run(w, 12, lambda s: 100.0, step_ms=5000)
        assert w.phase.rate[0] == pytest.approx(expected, rel=1e-9)
    w = build([binance], [(0, "BTCUSDT")], step_ms=5000)
    w.quote(0, 105.0, 105.1)
    run(w, 3, lambda s: 100.0, step_ms=5000)
    assert w.phase.rate[0] == pytest.approx(0.003)


def test_binance_weights_later_samples_more_and_matches_the_rules_function() -> None:
    binance = load_venue("binance")
    n = 40
    index = 100.0 / (1 + np.linspace(0.001, 0.004, n))  # the premium over a fixed impact bid rises through the run
    rates = {}
    for name, venue in (("linear", binance), ("mean", with_funding(binance, averaging=PremiumAveraging.MEAN))):
        w = build([venue], [(0, "BTCUSDT")], step_ms=5000)  # one sample a step
        w.quote(0, 100.0, 100.2)
        run(w, n, lambda s: float(index[s]), step_ms=5000)
        rates[name] = float(w.phase.rate[0])
    bid = w.books.impact_price(0, BID, 30_000.0)
    samples = (bid - index) / index  # the premium written out: impact bid above the index
    assert rates["linear"] == pytest.approx(float(funding_rules.binance_funding_rate(samples, 8.0, 0.004)), rel=1e-9)
    mean_rate = float(funding_rules.premium_interest_clamp_rate(samples.mean(), 8.0, 0.003))
    assert rates["mean"] == pytest.approx(mean_rate, rel=1e-9)
    assert rates["linear"] > rates["mean"] + 4e-4  # linear weights follow the rise; the mean lags it


def test_linear_weighted_average_running_equals_the_rules_average() -> None:
    samples = np.random.default_rng(3).normal(0.001, 0.002, size=(25, 2))
    average = LinearWeightedAverage(2)
    for n in range(1, 26):
        got = average.add(samples[n - 1])
    np.testing.assert_allclose(got, funding_rules.linear_weighted_average(samples, axis=0), rtol=1e-12)
    assert not np.allclose(got, samples.mean(axis=0))
    average.clear()
    np.testing.assert_allclose(average.add(samples[0]), samples[0])


def test_bybit_minute_samples_weigh_1_to_480() -> None:
    # Bybit (https://bybitglobal.com/en-US/help-center/bybitHC_Article?id=000001123): 480 minute samples over 8 h
    # weighted 1..480, sum of weights 115,440. Only the last sample has a premium p: the average is 480 p / 115,440.
    bybit = load_venue("bybit")
    w = build([bybit], [(0, "BTCUSDT")], step_ms=60_000)
    w.quote(0, 100.0, 100.2)
    last = 100.0 / 1.2  # the impact bid 20 % over the index
    run(w, 480, lambda s: 100.1 if s < 479 else last, step_ms=60_000)  # the index inside the spread: premium 0
    p = (w.books.impact_price(0, BID, 10_000.0) - last) / last
    average = 480 * p / 115_440
    assert average == pytest.approx(0.2 * 480 / 115_440)
    assert w.phase.rate[0] == pytest.approx(average + np.clip(0.0001 - average, -0.0005, 0.0005), rel=1e-9)


def test_okx_averages_the_mid_premium_and_caps_per_asset() -> None:
    # OKX (https://www.okx.com/help/okx-to-optimize-funding-rate-calculation): F = clamp(MA(P - Ir)), Ir = 0,
    # P = (mid - index) / index; BTC capped at +-0.375 % (the venue's 1.5 % is for others).
    okx = load_venue("okx")
    w = build([okx], [(0, "BTC-USDT-SWAP")], step_ms=60_000)
    w.quote(0, 100.05, 100.15)  # mid 100.1: a 0.1 % mid premium over 100
    run(w, 10, lambda s: 100.0, step_ms=60_000)
    assert w.phase.rate[0] == pytest.approx(0.001, rel=1e-9)
    w.quote(0, 98.95, 99.05)  # mid 99: -1 %, capped at -0.375 %
    run(w, 200, lambda s: 100.0, step_ms=60_000, ts0=T0 + 11 * 60_000)
    assert w.phase.rate[0] == pytest.approx(-0.00375)


def test_okx_reads_the_mid_where_the_impact_premium_is_zero() -> None:
    # The index sits inside the spread: an impact premium would be 0; OKX's mid premium is not.
    w = build([load_venue("okx")], [(0, "BTC-USDT-SWAP")], step_ms=60_000)
    w.quote(0, 100.05, 100.15)
    run(w, 3, lambda s: 100.08, step_ms=60_000)
    assert float(funding_rules.premium_index(100.05, 100.15, 100.08)) == 0.0
    assert w.phase.rate[0] == pytest.approx((100.1 - 100.08) / 100.08, rel=1e-9)


def test_hyperliquid_pays_an_eighth_hourly_and_caps_at_four_percent() -> None:
    # Hyperliquid docs/trading/funding.md: F_8h / 8 hourly, interest 0.01 % per 8 h, cap 4 % per hour.
    hl = load_venue("hyperliquid")
    w = build([hl], [(0, "BTC")], step_ms=5000)
    w.quote(0, 99.9, 100.1)  # the index inside the impact spread: premium 0
    run(w, 20, lambda s: 100.0, step_ms=5000)
    assert w.phase.rate[0] == pytest.approx(0.0001 / 8)
    w = build([hl], [(0, "BTC")], step_ms=5000)
    w.quote(0, 200.0, 200.1)  # premium 100 %
    run(w, 20, lambda s: 100.0, step_ms=5000)
    assert w.phase.rate[0] == pytest.approx(0.04)


def test_dydx_minute_sample_is_the_median_of_votes_padded_to_fifteen() -> None:
    # dYdX v4 x/perpetuals/keeper/perpetual.go: a minute with 3 votes of 1 % is padded with 12 zeros -> median 0;
    # a minute of 60 votes of 1 % gives 1 %, paid hourly at 1 % / 8 (default funding 0 in the launch genesis).
    dydx = load_venue("dydx")
    w = build([dydx], [(0, "BTC-USD")], step_ms=20_000)  # 3 steps (votes) a minute
    w.quote(0, 101.0, 101.1)  # impact bid 1 % over the oracle: every vote 1 %
    run(w, 30, lambda s: 100.0, step_ms=20_000)
    assert w.phase.rate[0] == 0.0
    w = build([dydx], [(0, "BTC-USD")], step_ms=1000)  # 60 votes a minute
    w.quote(0, 101.0, 101.1)
    run(w, 59, lambda s: 100.0)
    assert w.phase.rate[0] == 0.0  # the first minute is not complete: no sample yet
    run(w, 1, lambda s: 100.0, ts0=T0 + 60_000)
    assert w.phase.rate[0] == pytest.approx(0.01 / 8, rel=1e-9)


def test_dydx_clamps_at_six_times_imf_minus_mmf() -> None:
    # exchange-rules.md 2.7 [derived]: launch values IMF 5 %, MMF 3 % -> |R_8h| <= 6 x 2 % = 12 %, 1.5 % an hour. A
    # 50 % premium passes the vote clamp (60 x 2 % = 120 %) and is clamped per hour.
    w = build([load_venue("dydx")], [(0, "BTC-USD")], step_ms=1000)
    w.quote(0, 150.0, 150.1)
    run(w, 120, lambda s: 100.0)
    assert w.phase.rate[0] == pytest.approx(0.12 / 8)


def test_drift_spread_offset_and_tier_clamp() -> None:
    # Drift v2 math/funding.rs: spread = markTWAP - oracleTWAP + oracleTWAP/5000, / 24 per hour, clamped to
    # oracleTWAP/33 (tier A) or /20 (tier C).
    drift = load_venue("drift")
    w = build([drift], [(0, "BTC-PERP")])
    w.quote(0, 99.99, 100.01)  # mid = oracle
    run(w, 30, lambda s: 100.0)
    assert w.phase.rate[0] == pytest.approx(1 / 5000 / 24, rel=1e-9)
    for venue, divisor in ((drift, 33), (with_funding(drift, drift_contract_tier="C"), 20)):
        w = build([venue], [(0, "BTC-PERP")])
        w.quote(0, 199.99, 200.01)  # mid at twice the oracle
        run(w, 30, lambda s: 100.0)
        assert w.phase.rate[0] == pytest.approx(1 / divisor / 24)


def test_drift_twaps_are_averages_over_the_interval() -> None:
    # Half the interval the mid sits 0.1 % over the oracle, half at it: markTWAP - oracleTWAP = 0.05 % of oracle.
    w = build([load_venue("drift")], [(0, "BTC-PERP")])
    w.quote(0, 100.09, 100.11)
    run(w, 10, lambda s: 100.0)
    w.quote(0, 99.99, 100.01)
    run(w, 10, lambda s: 100.0, ts0=T0 + 11_000)
    assert w.phase.rate[0] == pytest.approx((0.0005 + 1 / 5000) / 24, rel=1e-6)


# --- timing ------------------------------------------------------------------------------------------------------
def test_a_venue_settles_at_its_interval_only_and_restarts_its_average() -> None:
    # Binance (8 h) and Hyperliquid (1 h) on one clock, from 59 s before an hour that is not a multiple of 8 h.
    w = build([load_venue("binance"), load_venue("hyperliquid")], [(0, "BTCUSDT"), (1, "BTC")],
              holdings=[(0, 3, False), (0, -3, False), (1, 2, False), (1, -2, True)])  # fmt: skip
    w.quote(0, 100.5, 100.6)
    w.quote(1, 100.5, 100.6)
    ts0 = T0 + HOUR_MS - 59_000
    before = w.cash().copy()
    paid_at = {}
    for s in range(60):
        paid = w.phase.step(s, ts0 + s * 1000, np.full(2, 100.0))
        if paid.size:
            paid_at[s] = paid
    assert list(paid_at) == [59]  # the hour, and only for Hyperliquid's positions
    np.testing.assert_array_equal(np.sort(paid_at[59]), [2, 3])
    moved = w.cash() != before
    np.testing.assert_array_equal(moved, [False, False, True, True])
    # after the settlement the hour starts over: 13 new samples (every 5 s) of a 0.1 % premium; the 12 samples of
    # 0.5 % before the hour no longer count
    w.quote(1, 100.1, 100.2)
    for s in range(60, 121):
        w.phase.step(s, ts0 + s * 1000, np.full(2, 100.0))
    assert w.phase.rate[1] == pytest.approx(float(funding_rules.hyperliquid_funding_rate([0.001])), rel=1e-6)


def test_nothing_settles_at_the_first_step_even_on_the_hour() -> None:
    w = build([load_venue("hyperliquid")], [(0, "BTC")], holdings=[(0, 1, False), (0, -1, False)])
    w.phase.rate[0] = 0.01
    assert w.phase.step(0, T0, np.full(1, 100.0)).size == 0
    assert w.phase.step(1, T0 + HOUR_MS, np.full(1, 100.0)).size == 2


def test_seconds_to_settlement_per_venue_interval() -> None:
    w = build([load_venue("binance"), load_venue("hyperliquid")], [(0, "BTCUSDT"), (1, "BTC")])
    np.testing.assert_allclose(w.phase.seconds_to_settlement(T0 + 1_500), [8 * 3600 - 1.5, 3600 - 1.5])


# --- settlement --------------------------------------------------------------------------------------------------
def test_settlement_conserves_money_with_the_funds_side() -> None:
    # Longs 5 + 2 lots, shorts 3 (cross) + 1 (isolated) and the fund's taken-over 3 short: balanced.
    w = build([load_venue("binance")], [(0, "BTCUSDT")],
              holdings=[(0, 5, False), (0, 2, True), (0, -3, False), (0, -1, True), (0, 0, False)],
              fund_inventory={(0, 0): -3.0})  # fmt: skip
    w.markets.mark[0] = 101.0
    w.phase.rate[0] = 0.0007
    cash, fund = w.cash().copy(), w.funds.balance.copy()
    paid_ids = w.phase.settle(np.array([0]), np.full(1, 100.0))
    paid = cash - w.cash()
    fund_paid = fund - w.funds.balance
    np.testing.assert_allclose(paid, np.array([5, 2, -3, -1, 0]) * 101.0 * 0.0007)  # longs pay a positive rate
    assert fund_paid[0] == pytest.approx(-3 * 101.0 * 0.0007)  # the fund is short: it receives
    assert paid.sum() + fund_paid.sum() == pytest.approx(0.0, abs=1e-9)  # cash ~1,000: rounding only
    np.testing.assert_array_equal(np.sort(paid_ids), [0, 1, 2, 3])  # the flat position is not touched


@pytest.mark.parametrize(
    ("preset", "symbol", "price"),
    [
        ("binance", "BTCUSDT", 101.0),
        ("hyperliquid", "BTC", 100.0),
        ("dydx", "BTC-USD", 100.0),
        ("okx", "BTC-USDT-SWAP", 101.0),
    ],
)
def test_settlement_price_is_the_presets_payment_price(preset: str, symbol: str, price: float) -> None:  # fmt: skip
    # mark 101, index (oracle) 100: Binance and OKX pay on mark, Hyperliquid and dYdX on the oracle.
    w = build([load_venue(preset)], [(0, symbol)], holdings=[(0, 4, False), (0, -4, True)])
    w.markets.mark[0] = 101.0
    w.phase.rate[0] = 0.001
    cash = w.cash().copy()
    w.phase.settle(np.array([0]), np.full(1, 100.0))
    np.testing.assert_allclose(cash - w.cash(), [4 * price * 0.001, -4 * price * 0.001])


def test_settlement_touches_only_the_settling_markets_positions() -> None:
    w = build([load_venue("binance")], [(0, "BTCUSDT"), (0, "ETHUSDT"), (0, "SOLUSDT")],
              holdings=[(1, 2, False), (0, 1, False), (2, -1, True), (1, -2, True), (0, -1, False), (1, 0, True)],
              fund_inventory={(0, 0): 5.0, (0, 2): 7.0})  # fmt: skip
    w.phase.rate[:] = [0.001, 0.002, 0.003]
    cash, fund = w.cash().copy(), w.funds.balance.copy()
    paid = w.phase.settle(np.array([1]), np.full(3, 100.0))
    np.testing.assert_array_equal(np.sort(paid), [0, 3])
    moved = np.flatnonzero(w.cash() != cash)
    np.testing.assert_array_equal(moved, [0, 3])
    np.testing.assert_array_equal(w.funds.balance, fund)  # the fund holds nothing in market 1


def test_positions_grouped_by_market_match_a_scan() -> None:
    rng = np.random.default_rng(11)
    markets = rng.integers(0, 4, size=60)
    w = build([load_venue("binance")], [(0, s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HIVEUSDT")],
              holdings=[(int(m), 1, False) for m in markets])  # fmt: skip
    for rows in ([0], [3], [1, 2], [0, 1, 2, 3]):
        expected = np.flatnonzero(np.isin(w.positions.market, rows))
        np.testing.assert_array_equal(np.sort(w.phase.positions_in(np.array(rows))), expected)
