"""Funding: each venue's rate rule sampled from its books, and settlement between positions and funds.

Rules modelled (shared/reference/exchange-rules.md section 2; the formulas are :mod:`perpstress.rules.funding`'s):

- ``premium_interest_clamp``, :class:`PremiumInterestClampFunding` (Binance 2.2, Bybit 2.3, Hyperliquid 2.6, and
  Bitget 2.9 by assumption): every ``sample_interval_s`` the premium ``[max(0, ImpactBid - I) - max(0, I -
  ImpactAsk)] / I``, the impact prices for the market's impact notional (else the venue's; Binance: ``200 USDT /
  IMR``, i.e. ``impact_margin_usd`` times the first tier's max leverage) walked in the market's book. The interval's
  samples are averaged by ``FundingConfig.averaging``: ``linear_weighted`` (Binance, Bybit: ``sum(i P_i) / sum(i)``,
  kept running with two accumulators) or ``mean`` (Hyperliquid). ``F_8h = P + clamp(Ir - P, +-c)``, scaled to the
  interval (``/ (8 / N)``; Hyperliquid pays ``F_8h / 8`` hourly), capped.
- ``mid_premium_ma``, :class:`MidPremiumMovingAverageFunding` (OKX 2.4): the premium is the best bid and ask's mid
  against the index, ``(mid - I) / I``; ``F = clamp(MA(P) - Ir, -cap, cap)``.
- ``dydx_premium_votes``, :class:`DydxPremiumVotesFunding` (dYdX v4 2.7, ``x/clob/memclob/memclob.go``,
  ``x/perpetuals/keeper/perpetual.go``): one premium vote per simulation step (a step stands for a block, the
  market's one book for the proposer's): ``ImpactBid / O - 1`` if the oracle is below the impact bid, ``ImpactAsk /
  O - 1`` if above the impact ask, else 0, clamped at ``60 (IMF - MMF)``. Each ``sample_interval_s`` of votes makes a
  sample, their median padded with zeros to 15 votes; ``R_8h = mean(samples) + default`` (the venue's
  ``interest_rate_8h`` stands for ``default_funding_ppm``), scaled to the interval, capped.
- ``drift_twap_spread``, :class:`DriftTwapSpreadFunding` (Drift v2 2.8, ``math/funding.rs``): TWAPs over the
  interval of the book's mid (standing for the AMM's mark, the AMM not being modelled; the oracle when a side is
  empty) and of the oracle, both sampled every ``sample_interval_s``; ``(markTWAP - oracleTWAP + oracleTWAP / 5000)
  / oracleTWAP``, per hour ``/ 24``, clamped by contract tier.

Which rule a venue runs is looked up once, at build, in :data:`FUNDING_RULES` (keyed by ``FundingMethod``); the
averaging in :data:`AVERAGES` (keyed by ``PremiumAveraging``), which every rule honours.

Caps, per interval, resolved per market once at build: the market's ``funding_cap`` if set, else the venue's
``FundingCap`` (:data:`CAPS`): ``mmr_multiple`` (``k x`` the first tier's MMR; which tier Binance uses is
unconfirmed), ``margin_fraction_multiple`` (``k (IMF - MMF)`` per 8 h, IMF = 1 / the first tier's max leverage,
MMF = the first tier's MMR), ``drift_contract_tier`` (oracle TWAP / 33, 20 or 10 per day, / 24 per hour) or
``fixed``.

Timing: between settlements a market's rate is its interval's rate so far (the venues' predicted rate; the mark's
funding-basis term reads it). A book without the impact notional's depth on a side, or an empty side, gives a
premium (or vote) of 0 [assumed]. A venue settles when the clock reaches a multiple of its interval since the epoch,
never at the run's first step; its average then starts over.

Settlement: every open position in the market pays ``size x lot x price x F`` (``F > 0``: longs pay), price the
index for ``payment_price = oracle`` and the mark otherwise, from its isolated margin or its cross wallet; insurance
funds' and backstop vaults' inventory pays or receives the same way, so a balanced market's payments sum to zero.
Positions are grouped by market once at build (a position never changes market).

Not modelled: OKX's rolling N-hour window (the moving average restarts at each settlement, OKX's rule before
2024-03-05) and its cross-cycle settlement; BitMEX's funding basis inside the premium; the exact 5-s sample clock
(samples fall on the step grid, every ``round(sample_interval_s / step)`` steps); dYdX's votes from many proposers
(one vote per step: steps longer than 4 s give fewer than 15 votes a minute, which the padding pulls towards 0) and
its sample tail removal (ratio 0 today); Drift's trade-updated TWAPs, its blocking of funding on invalid or
divergent oracles, and its fee-pool limit that can give longs and shorts different rates (here both sides pay and
receive the same rate); per-symbol interval changes; Hyperliquid HIP-3's premium.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numba import njit

from perpstress.config.markets import PerpetualMarket
from perpstress.config.venue import (
    FundingCap,
    FundingConfig,
    FundingMethod,
    PremiumAveraging,
    PriceReference,
    VenueConfig,
)
from perpstress.mechanisms.insurance import InsuranceFunds
from perpstress.mechanisms.price_kernels import numpy_sum
from perpstress.rules import funding as funding_rules
from perpstress.state.orderbook import ASK, BID, OrderBooks
from perpstress.state.portfolio import F64, I64, Accounts, Markets, Positions

DEFAULT_IMPACT_NOTIONAL_USD = 10_000.0
"""Impact notional when neither the market nor the venue names one, USD."""

_NO_POSITIONS = np.zeros(0, dtype=np.int64)


# --- averages of an interval's samples ---------------------------------------------------------------------------
class RunningAverage(Protocol):
    """An average of one interval's samples over some columns, kept without storing the samples."""

    def add(self, sample: F64) -> F64:
        """Take one sample per column; returns the average so far."""
        ...

    def clear(self) -> None:
        """Start a new interval."""
        ...


class MeanAverage:
    """Plain mean of the interval's samples (Hyperliquid, OKX, dYdX's hourly mean, Drift's TWAPs)."""

    def __init__(self, columns: int) -> None:
        self._total = np.zeros(columns)
        self._count = 0

    def add(self, sample: F64) -> F64:
        self._total, self._count, average = funding_rules.running_mean(self._total, self._count, sample)
        return average

    def clear(self) -> None:
        self._total = np.zeros_like(self._total)
        self._count = 0


class LinearWeightedAverage:
    """``sum(i P_i) / sum(i)``: the i-th sample of the interval weighs i (Bybit, Binance)."""

    def __init__(self, columns: int) -> None:
        self._weighted_sum = np.zeros(columns)
        self._count = 0

    def add(self, sample: F64) -> F64:
        self._weighted_sum, self._count, average = funding_rules.running_linear_weighted_average(
            self._weighted_sum, self._count, sample
        )
        return average

    def clear(self) -> None:
        self._weighted_sum = np.zeros_like(self._weighted_sum)
        self._count = 0


AVERAGES: dict[PremiumAveraging, Callable[[int], RunningAverage]] = {
    PremiumAveraging.MEAN: MeanAverage,
    PremiumAveraging.LINEAR_WEIGHTED: LinearWeightedAverage,
}
"""How an interval's samples are averaged, by ``FundingConfig.averaging``."""


# --- the per-venue rate rule -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FundingMarkets:
    """The perpetual markets one venue's rule covers, with what the rule needs of each, resolved at build."""

    rows: I64
    """Market ids."""
    impact_notional_usd: F64
    """Notional the impact bid and ask are walked for, USD."""
    cap: F64
    """Largest ``|rate|`` per interval, fraction of notional."""
    initial_margin_fraction: F64
    """IMF: 1 / the first tier's max leverage."""
    maintenance_margin_fraction: F64
    """MMF: the first tier's maintenance margin rate."""


class FundingRule(Protocol):
    """One venue's rate rule over its perpetual markets ``rows``."""

    rows: I64

    def observe(self, step: int, index: F64, books: OrderBooks) -> F64 | None:
        """This step's look at the books (``index``: every market's index or oracle); the rows' rate per interval
        when it changed, else None."""
        ...

    def restart(self) -> None:
        """The venue settled: the next interval's average starts from no samples."""
        ...


def steps_per_sample(sample_interval_s: float, step_ms: int) -> int:
    """Steps between samples: the sample interval on the step grid, at least every step."""
    return max(1, round(sample_interval_s * 1000 / step_ms))


def _impact_prices_py(price, lots, count, tick, lot, rows, notional, side, out):  # type: ignore[no-untyped-def]
    """:meth:`~perpstress.state.orderbook.OrderBooks.impact_price` of ``side`` for each market ``rows[j]`` and its
    ``notional[j]`` USD, into ``out[j]``: the running sum of the levels' notional (as ``np.cumsum`` adds it), the
    first level where it reaches the notional (``np.searchsorted``, left), the size before it summed as ``np.sum``
    does (:func:`~perpstress.mechanisms.price_kernels.numpy_sum`); NaN where the side holds less than the
    notional, or for a notional of 0."""
    cap = price.shape[2]
    value = np.empty(cap)
    q = np.empty(cap)
    for j in range(rows.shape[0]):
        m = rows[j]
        want = notional[j]
        n = count[m, side]
        total = 0.0
        for i in range(n):
            q[i] = lots[m, side, i] * lot[m]
            total += price[m, side, i] * tick[m] * q[i]
            value[i] = total
        if n == 0 or value[n - 1] < want:
            out[j] = np.nan
            continue
        k = 0
        while k < n and value[k] < want:
            k += 1
        if want == 0:  # NumPy's 0 / 0
            out[j] = np.nan
            continue
        before_v = value[k - 1] if k else 0.0
        part = (want - before_v) / (price[m, side, k] * tick[m])
        out[j] = want / (numpy_sum(q, k) + part)


impact_prices_of = njit(cache=True)(_impact_prices_py)
"""Compiled: see :func:`_impact_prices_py`."""


def impact_prices(books: OrderBooks, rows: I64, notional_usd: F64) -> tuple[F64, F64]:
    """Impact bid and ask of each row's book for its notional (NaN where a side is too thin)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    notional_usd = np.ascontiguousarray(notional_usd, dtype=np.float64)
    out = np.empty((2, rows.size))
    for side in (BID, ASK):
        impact_prices_of(books.price, books.lots, books.count, books.tick_size, books.lot_size, rows, notional_usd,
                         side, out[side])  # fmt: skip
    return out[BID], out[ASK]


class _SampledRule:
    """What the rules share: their markets, config, sample cadence and the interval's average."""

    def __init__(self, config: FundingConfig, markets: FundingMarkets, step_ms: int, columns: int) -> None:
        self.config = config
        self.markets = markets
        self.rows = markets.rows
        self.every = steps_per_sample(config.sample_interval_s, step_ms)
        self.average = AVERAGES[config.averaging](columns)

    def restart(self) -> None:
        self.average.clear()


class PremiumInterestClampFunding(_SampledRule):
    """Impact-price premium, averaged by the venue's weighting; ``P + clamp(Ir - P, +-c)`` scaled and capped."""

    def __init__(self, config: FundingConfig, markets: FundingMarkets, step_ms: int) -> None:
        super().__init__(config, markets, step_ms, markets.rows.size)

    def observe(self, step: int, index: F64, books: OrderBooks) -> F64 | None:
        if step % self.every:
            return None
        bid, ask = impact_prices(books, self.rows, self.markets.impact_notional_usd)
        thin = np.isnan(bid) | np.isnan(ask)
        premium = np.where(thin, 0.0, funding_rules.premium_index(bid, ask, index[self.rows]))
        f = self.config
        return funding_rules.premium_interest_clamp_rate(
            self.average.add(premium), f.interval_hours, self.markets.cap, f.interest_rate_8h, f.interest_clamp_8h
        )


class MidPremiumMovingAverageFunding(_SampledRule):
    """OKX: mid premium ``(mid - I) / I``, its moving average less the interest, capped."""

    def __init__(self, config: FundingConfig, markets: FundingMarkets, step_ms: int) -> None:
        super().__init__(config, markets, step_ms, markets.rows.size)

    def observe(self, step: int, index: F64, books: OrderBooks) -> F64 | None:
        if step % self.every:
            return None
        best_bid, best_ask = books.best_bid_ask()
        bid, ask = best_bid[self.rows], best_ask[self.rows]
        empty = np.isnan(bid) | np.isnan(ask)
        premium = np.where(empty, 0.0, funding_rules.mid_premium(bid, ask, index[self.rows]))
        return funding_rules.mid_premium_ma_rate(
            self.average.add(premium), self.markets.cap, None, self.config.interest_rate_8h
        )


class DydxPremiumVotesFunding(_SampledRule):
    """dYdX v4: a vote per step, a median-of-votes sample per sample interval, the samples' mean per interval."""

    def __init__(self, config: FundingConfig, markets: FundingMarkets, step_ms: int) -> None:
        super().__init__(config, markets, step_ms, markets.rows.size)
        self._votes = np.zeros((markets.rows.size, self.every))
        self._n_votes = 0

    def observe(self, step: int, index: F64, books: OrderBooks) -> F64 | None:
        m = self.markets
        bid, ask = impact_prices(books, self.rows, m.impact_notional_usd)
        thin = np.isnan(bid) | np.isnan(ask)
        vote = funding_rules.dydx_premium_vote(
            bid, ask, index[self.rows], m.initial_margin_fraction, m.maintenance_margin_fraction
        )
        self._votes[:, self._n_votes] = np.where(thin, 0.0, vote)
        self._n_votes += 1
        if self._n_votes < self.every:
            return None
        samples = np.array([funding_rules.dydx_funding_sample(v) for v in self._votes])
        self._n_votes = 0
        f = self.config
        return funding_rules.dydx_rate(self.average.add(samples), m.cap, f.interest_rate_8h, f.interval_hours)


class DriftTwapSpreadFunding(_SampledRule):
    """Drift v2: TWAPs of the book's mid and of the oracle; the offset spread over the oracle TWAP, / 24, capped."""

    def __init__(self, config: FundingConfig, markets: FundingMarkets, step_ms: int) -> None:
        super().__init__(config, markets, step_ms, 2 * markets.rows.size)  # mark columns, then oracle columns

    def observe(self, step: int, index: F64, books: OrderBooks) -> F64 | None:
        if step % self.every:
            return None
        best_bid, best_ask = books.best_bid_ask()
        oracle = index[self.rows]
        mid = 0.5 * (best_bid[self.rows] + best_ask[self.rows])
        mark = np.where(np.isnan(mid), oracle, mid)
        twap = self.average.add(np.concatenate([mark, oracle]))
        k = self.rows.size
        return funding_rules.drift_rate(twap[:k], twap[k:], self.markets.cap, self.config.interval_hours)


RuleFactory = Callable[[FundingConfig, FundingMarkets, int], FundingRule]

FUNDING_RULES: dict[FundingMethod, RuleFactory] = {
    FundingMethod.PREMIUM_INTEREST_CLAMP: PremiumInterestClampFunding,
    FundingMethod.MID_PREMIUM_MA: MidPremiumMovingAverageFunding,
    FundingMethod.DYDX_PREMIUM_VOTES: DydxPremiumVotesFunding,
    FundingMethod.DRIFT_TWAP_SPREAD: DriftTwapSpreadFunding,
}
"""The rate rule of each ``FundingMethod``, called as ``rule(config, markets, step_ms)``."""


# --- caps --------------------------------------------------------------------------------------------------------
def _mmr_multiple_cap(f: FundingConfig, imf: float, mmf: float) -> float:
    return float(funding_rules.mmr_multiple_cap(f.cap_value, mmf))


def _margin_fraction_cap(f: FundingConfig, imf: float, mmf: float) -> float:
    return float(funding_rules.margin_fraction_cap(f.cap_value, imf, mmf, f.interval_hours))


def _drift_tier_cap(f: FundingConfig, imf: float, mmf: float) -> float:
    tier = f.drift_contract_tier or "A"  # the config requires a tier with this cap
    return float(funding_rules.drift_tier_cap(tier, f.interval_hours))


def _fixed_cap(f: FundingConfig, imf: float, mmf: float) -> float:
    return f.cap_value


CAPS: dict[FundingCap, Callable[[FundingConfig, float, float], float]] = {
    FundingCap.MMR_MULTIPLE: _mmr_multiple_cap,
    FundingCap.MARGIN_FRACTION_MULTIPLE: _margin_fraction_cap,
    FundingCap.DRIFT_CONTRACT_TIER: _drift_tier_cap,
    FundingCap.FIXED: _fixed_cap,
}
"""A venue's cap per interval, from its config, a market's IMF and its MMF."""


def funding_markets(
    f: FundingConfig, rows: I64, configs: Sequence[PerpetualMarket], markets: Markets
) -> FundingMarkets:
    """Resolve, per market of ``rows``, its impact notional, cap, IMF and MMF (``configs`` indexed by market id)."""
    imf = 1.0 / markets.tier_max_leverage[rows, 0]
    mmf = markets.tier_mmr[rows, 0].copy()
    notional = np.empty(rows.size)
    cap = np.empty(rows.size)
    for k, m in enumerate(rows):
        cfg = configs[int(m)]
        notional[k] = cfg.impact_notional_usd or f.impact_notional_usd or DEFAULT_IMPACT_NOTIONAL_USD
        if f.impact_margin_usd:  # Binance: 200 USDT / IMR at the max leverage
            notional[k] = f.impact_margin_usd * float(markets.tier_max_leverage[m, 0])
        cap[k] = cfg.funding_cap if cfg.funding_cap is not None else CAPS[f.cap](f, float(imf[k]), float(mmf[k]))
    return FundingMarkets(rows, notional, cap, imf, mmf)


# --- the phase ---------------------------------------------------------------------------------------------------
class FundingPhase:
    """Funding over the state arrays: each step every venue's rule looks at the books; at a venue's interval its
    markets settle.

    ``market_configs``: the perpetuals' configs, market ids ``0..len-1`` (the rows after them, spot books, have no
    funding). ``rate`` is updated in place (a reader may keep a reference to it).
    """

    def __init__(
        self,
        venues: Sequence[VenueConfig],
        market_configs: Sequence[PerpetualMarket],
        markets: Markets,
        books: OrderBooks,
        positions: Positions,
        accounts: Accounts,
        funds: InsuranceFunds,
        step_ms: int,
    ) -> None:
        self.markets = markets
        self.books = books
        self.positions = positions
        self.accounts = accounts
        self.funds = funds
        self.rate = np.zeros(markets.n)
        """Each market's current rate per interval (positive: longs pay); 0 for spot books."""
        self.interval_ms = np.array([int(venues[v].funding.interval_hours * 3_600_000) for v in markets.venue],
                                    dtype=np.int64)  # fmt: skip
        """Each market's venue's funding interval, ms."""
        self.pays_oracle = np.array([venues[v].funding.payment_price is PriceReference.ORACLE for v in markets.venue])
        """Per market: payments at the index (oracle) rather than the mark."""
        n_perpetual = len(market_configs)
        venue_of = markets.venue[:n_perpetual]
        self.rules: list[FundingRule] = []
        for v, venue in enumerate(venues):
            rows = np.flatnonzero(venue_of == v).astype(np.int64)
            if rows.size:
                resolved = funding_markets(venue.funding, rows, market_configs, markets)
                self.rules.append(FUNDING_RULES[venue.funding.method](venue.funding, resolved, step_ms))
        self._rule_interval_ms = np.array([self.interval_ms[r.rows[0]] for r in self.rules], dtype=np.int64)
        market_of = np.asarray(positions.market)
        self._by_market = np.argsort(market_of, kind="stable").astype(np.int64)
        """Position ids sorted by market (stable: ascending ids within a market)."""
        self._market_start = np.searchsorted(market_of[self._by_market], np.arange(markets.n + 1))
        """Market m's positions are ``_by_market[_market_start[m]:_market_start[m + 1]]``."""

    def positions_in(self, rows: I64) -> I64:
        """Ids of every position (open or flat) in the markets ``rows``."""
        start = self._market_start
        return np.concatenate([self._by_market[start[m] : start[m + 1]] for m in rows] or [_NO_POSITIONS])

    def seconds_to_settlement(self, ts_ms: int) -> F64:
        """Per market, seconds from ``ts_ms`` to its venue's next settlement."""
        return np.asarray((self.interval_ms - ts_ms % self.interval_ms) / 1000.0, dtype=np.float64)

    def step(self, step: int, ts_ms: int, index: F64) -> I64:
        """One step: sample by each venue's rule, then settle the venues whose interval ends at ``ts_ms``.

        ``index``: every market's index (the oracle on oracle venues). Returns the ids of the positions that paid
        or received (their holders' margin moved), empty when nothing settled.
        """
        for rule in self.rules:
            rate = rule.observe(step, index, self.books)
            if rate is not None:
                self.rate[rule.rows] = rate
        if step == 0:
            return _NO_POSITIONS
        due = np.flatnonzero(ts_ms % self._rule_interval_ms == 0)
        if due.size == 0:
            return _NO_POSITIONS
        touched = []
        for k in due:
            rule = self.rules[int(k)]
            touched.append(self.settle(rule.rows, index))
            rule.restart()
        return np.concatenate(touched)

    def settle(self, rows: I64, index: F64) -> I64:
        """Pay the markets ``rows`` at their current rate: each open position pays ``size x lot x price x rate``
        from its isolated margin or its cross wallet, each fund's inventory likewise from its balance. Returns the
        ids of the positions paid."""
        pos, mk = self.positions, self.markets
        ids = self.positions_in(np.asarray(rows, dtype=np.int64))
        ids = np.asarray(ids[pos.size_lots[ids] != 0], dtype=np.int64)
        price = np.where(self.pays_oracle, index, mk.mark)
        m = pos.market[ids]
        pay = pos.size_lots[ids] * mk.lot_size[m] * price[m] * self.rate[m]
        iso = ~np.isnan(pos.isolated_margin[ids])
        pos.isolated_margin[ids[iso]] -= pay[iso]
        np.subtract.at(self.accounts.wallet, pos.account[ids[~iso]], pay[~iso])
        for r in rows:  # funds pay or receive like anyone holding the position
            self.funds.balance -= self.funds.inventory[:, r] * price[r] * self.rate[r]
        return ids
