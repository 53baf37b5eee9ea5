"""Funding-rate methods (shared/reference/exchange-rules.md section 2).

Rates are fractions of notional per funding interval, positive when longs pay shorts; a payment is
``s * Q * price_ref * F`` (the payer's account decreases). Interest and clamps are quoted per 8 hours and scaled to
the interval where venues do so.

- ``premium_interest_clamp`` (Binance, Bybit, BitMEX, Hyperliquid): ``F_8h = P + clamp(Ir - P, -c, +c)``.
- Binance: premium sampled every 5 s, time-weighted with later samples weighing more (linear weights, as Bybit
  states for its minute samples); ``F = F_8h / (8 / N)`` for N-hour intervals; capped at ``k * MMR``.
- OKX: ``clamp(MA(P - Ir), floor, cap)`` with ``Ir = 0`` and ``P = (mid - I) / I``.
- Hyperliquid: mean of 5-s premium samples over the hour, paid hourly at ``F_8h / 8``, capped at 4 % per hour.
- dYdX v4: per-block premium votes, per-minute median samples padded with zeros to 15 votes, hourly mean,
  ``R_8h = mean + default``, clamped at ``6 * (IMF - MMF)``, paid hourly at ``R_8h / 8``.
- Drift v2: ``spread = markTWAP - oracleTWAP + oracleTWAP/5000``, clamped by contract tier, per hour ``/ 24``.

Each venue function above is an average of its samples followed by a rate rule applied to that average. The rate
rules are also exposed on their own (``premium_interest_clamp_rate``, ``mid_premium_ma_rate``, ``dydx_rate``,
``drift_rate``), with the caps resolved beforehand (``mmr_multiple_cap``, ``margin_fraction_cap``,
``drift_tier_cap``), so a simulation can keep the average running (``running_mean``,
``running_linear_weighted_average``) instead of storing every sample, and still compute the venue's rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from perpstress.rules.margin import FloatArray

EIGHT_HOURS_S = 8 * 3600


def premium_index(impact_bid: ArrayLike, impact_ask: ArrayLike, index: ArrayLike) -> FloatArray:
    """``[max(0, impact_bid - I) - max(0, I - impact_ask)] / I``: zero while the index is inside the impact spread."""
    i = np.asarray(index, dtype=np.float64)
    above = np.maximum(0.0, np.asarray(impact_bid, dtype=np.float64) - i)
    below = np.maximum(0.0, i - np.asarray(impact_ask, dtype=np.float64))
    return np.asarray((above - below) / i, dtype=np.float64)


def mid_premium(best_bid: ArrayLike, best_ask: ArrayLike, index: ArrayLike) -> FloatArray:
    """OKX premium ``((bid + ask)/2 - I) / I``."""
    i = np.asarray(index, dtype=np.float64)
    mid = 0.5 * (np.asarray(best_bid, dtype=np.float64) + np.asarray(best_ask, dtype=np.float64))
    return np.asarray((mid - i) / i, dtype=np.float64)


def linear_weighted_average(samples: ArrayLike, axis: int = -1) -> FloatArray:
    """``sum(i * P_i) / sum(i)`` for i = 1..n along ``axis``: later samples weigh more (Bybit, Binance)."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[axis]
    w = np.arange(1, n + 1, dtype=np.float64)
    shape = [1] * x.ndim
    shape[axis] = n
    return np.asarray((x * w.reshape(shape)).sum(axis=axis) / w.sum(), dtype=np.float64)


def running_mean(total: ArrayLike, count: int, sample: ArrayLike) -> tuple[FloatArray, int, FloatArray]:
    """One more sample into a plain mean kept as ``(total, count)``: returns the new total, count and mean."""
    t = np.asarray(total, dtype=np.float64) + np.asarray(sample, dtype=np.float64)
    n = count + 1
    return t, n, np.asarray(t / n, dtype=np.float64)


def running_linear_weighted_average(
    weighted_sum: ArrayLike, count: int, sample: ArrayLike
) -> tuple[FloatArray, int, FloatArray]:
    """One more sample into ``sum(i * P_i) / sum(i)`` kept as ``(sum(i * P_i), n)``, without storing samples.

    The n-th sample gets weight n and ``sum(i) = n (n + 1) / 2``, so two accumulators suffice; after the samples
    ``P_1..P_n`` the average equals :func:`linear_weighted_average` of them (Bybit, Binance: later samples weigh
    more). Returns the new weighted sum, count and average.
    """
    n = count + 1
    ws = np.asarray(weighted_sum, dtype=np.float64) + n * np.asarray(sample, dtype=np.float64)
    return ws, n, np.asarray(ws / (0.5 * n * (n + 1)), dtype=np.float64)


def premium_interest_clamp(
    average_premium: ArrayLike, interest_rate: ArrayLike = 0.0001, interest_clamp: ArrayLike = 0.0005
) -> FloatArray:
    """``F_8h = P + clamp(Ir - P, -c, +c)``; defaults are the common 0.01 % interest and 0.05 % clamp per 8 h."""
    p = np.asarray(average_premium, dtype=np.float64)
    c = np.asarray(interest_clamp, dtype=np.float64)
    return np.asarray(p + np.clip(np.asarray(interest_rate) - p, -c, c), dtype=np.float64)


def scale_to_interval(rate_8h: ArrayLike, interval_hours: ArrayLike) -> FloatArray:
    """An 8-hour rate scaled to an N-hour interval: ``F_8h / (8 / N)``."""
    return np.asarray(
        np.asarray(rate_8h, dtype=np.float64) * np.asarray(interval_hours, dtype=np.float64) / 8.0, dtype=np.float64
    )


def cap_rate(rate: ArrayLike, cap: ArrayLike, floor: ArrayLike | None = None) -> FloatArray:
    """Clamp to ``[floor, cap]`` (``floor`` defaults to ``-cap``)."""
    c = np.asarray(cap, dtype=np.float64)
    f = -c if floor is None else np.asarray(floor, dtype=np.float64)
    return np.asarray(np.clip(np.asarray(rate, dtype=np.float64), f, c), dtype=np.float64)


def mmr_multiple_cap(multiple: ArrayLike, maintenance_margin_rate: ArrayLike) -> FloatArray:
    """Binance's cap on ``|F|`` per interval: ``k * MMR`` (k = 0.75 by default, 1 for some symbols)."""
    return np.asarray(
        np.asarray(multiple, dtype=np.float64) * np.asarray(maintenance_margin_rate, dtype=np.float64),
        dtype=np.float64,
    )


def premium_interest_clamp_rate(
    average_premium: ArrayLike,
    interval_hours: ArrayLike,
    cap: ArrayLike,
    interest_rate_8h: ArrayLike = 0.0001,
    interest_clamp: ArrayLike = 0.0005,
) -> FloatArray:
    """The common CEX rate per interval from the interval's average premium: ``P + clamp(Ir - P, +-c)`` per 8 h,
    scaled to the interval (``/ (8 / N)``) and clamped to ``+-cap`` (cap per interval)."""
    rate = scale_to_interval(premium_interest_clamp(average_premium, interest_rate_8h, interest_clamp), interval_hours)
    return cap_rate(rate, cap)


def binance_funding_rate(
    premium_samples: ArrayLike,
    interval_hours: float,
    maintenance_margin_rate: ArrayLike,
    cap_mmr_multiple: float = 0.75,
    interest_rate_8h: float = 0.0001,
    interest_clamp: float = 0.0005,
) -> FloatArray:
    """Binance USD-M rate for one interval from the interval's premium samples (last axis).

    ``maintenance_margin_rate``: the MMR the cap multiplies (which tier is unconfirmed; see the preset).
    """
    cap = mmr_multiple_cap(cap_mmr_multiple, maintenance_margin_rate)
    avg = linear_weighted_average(premium_samples)
    return premium_interest_clamp_rate(avg, interval_hours, cap, interest_rate_8h, interest_clamp)


def mid_premium_ma_rate(
    average_premium: ArrayLike, cap: ArrayLike, floor: ArrayLike | None = None, interest_rate: ArrayLike = 0.0
) -> FloatArray:
    """OKX's rate from the moving average of mid premiums: ``clamp(MA(P) - Ir, floor, cap)`` (= ``MA(P - Ir)``)."""
    avg = np.asarray(average_premium, dtype=np.float64) - np.asarray(interest_rate, dtype=np.float64)
    return cap_rate(avg, cap, floor)


def okx_funding_rate(
    premium_samples: ArrayLike, cap: ArrayLike, floor: ArrayLike | None = None, interest_rate: float = 0.0
) -> FloatArray:
    """OKX: ``clamp(mean(P - Ir), floor, cap)`` over the rolling window's samples (last axis)."""
    avg = np.asarray(premium_samples, dtype=np.float64).mean(axis=-1)
    return mid_premium_ma_rate(avg, cap, floor, interest_rate)


def hyperliquid_funding_rate(
    premium_samples: ArrayLike, hourly_cap: float = 0.04, interest_rate_8h: float = 0.0001
) -> FloatArray:
    """Hyperliquid hourly rate: ``(mean(P) + clamp(0.01% - mean(P), +-0.05%)) / 8``, capped at 4 % per hour."""
    avg = np.asarray(premium_samples, dtype=np.float64).mean(axis=-1)
    return premium_interest_clamp_rate(avg, 1.0, hourly_cap, interest_rate_8h)


def dydx_premium_vote(
    impact_bid: ArrayLike,
    impact_ask: ArrayLike,
    oracle: ArrayLike,
    initial_margin_fraction: ArrayLike,
    maintenance_margin_fraction: ArrayLike,
    vote_clamp_factor: float = 60.0,
) -> FloatArray:
    """dYdX v4 per-block vote: ``bid/O - 1`` if O < impact bid, ``ask/O - 1`` if O > impact ask, else 0.

    Clamped to ``+-vote_clamp_factor * (IMF - MMF)``. Source: v4-chain protocol/x/clob/memclob/memclob.go.
    """
    o = np.asarray(oracle, dtype=np.float64)
    bid = np.asarray(impact_bid, dtype=np.float64)
    ask = np.asarray(impact_ask, dtype=np.float64)
    vote = np.where(o < bid, bid / o - 1.0, np.where(o > ask, ask / o - 1.0, 0.0))
    bound = vote_clamp_factor * (
        np.asarray(initial_margin_fraction, dtype=np.float64) - np.asarray(maintenance_margin_fraction)
    )
    return np.asarray(np.clip(vote, -bound, bound), dtype=np.float64)


def dydx_funding_sample(votes: ArrayLike, min_votes: int = 15) -> float:
    """Median of one minute's votes, padded with zeros up to ``min_votes`` (perpetuals keeper)."""
    v = np.asarray(votes, dtype=np.float64).ravel()
    if v.size < min_votes:
        v = np.concatenate([v, np.zeros(min_votes - v.size)])
    return float(np.median(v))


def margin_fraction_cap(
    multiple: ArrayLike,
    initial_margin_fraction: ArrayLike,
    maintenance_margin_fraction: ArrayLike,
    interval_hours: ArrayLike = 1.0,
) -> FloatArray:
    """dYdX v4's cap on ``|R|`` per interval: ``k * (IMF - MMF)`` per 8 h (k = ``funding_rate_clamp_factor``, 6),
    scaled to the interval (liquidity_tier.go ``GetMaxAbsFundingClampPpm``)."""
    imf = np.asarray(initial_margin_fraction, dtype=np.float64)
    per_8h = np.asarray(multiple, dtype=np.float64) * (imf - np.asarray(maintenance_margin_fraction))
    return scale_to_interval(per_8h, interval_hours)


def dydx_rate(
    average_sample: ArrayLike, cap: ArrayLike, default_funding_8h: ArrayLike = 0.0, interval_hours: ArrayLike = 1.0
) -> FloatArray:
    """dYdX v4 rate per interval from the mean of the interval's samples: ``(mean + default)`` per 8 h, scaled to
    the interval and clamped to ``+-cap`` (cap per interval, e.g. :func:`margin_fraction_cap`)."""
    r8 = np.asarray(average_sample, dtype=np.float64) + np.asarray(default_funding_8h, dtype=np.float64)
    return cap_rate(scale_to_interval(r8, interval_hours), cap)


def dydx_funding_rate(
    samples: ArrayLike,
    initial_margin_fraction: float,
    maintenance_margin_fraction: float,
    default_funding_8h: float = 0.0,
    rate_clamp_factor: float = 6.0,
) -> float:
    """Hourly dYdX v4 rate: ``clamp(mean(samples) + default, +-6*(IMF-MMF)) / 8`` (funding index delta / O)."""
    cap = margin_fraction_cap(rate_clamp_factor, initial_margin_fraction, maintenance_margin_fraction, 1.0)
    return float(dydx_rate(np.mean(np.asarray(samples, dtype=np.float64)), cap, default_funding_8h, 1.0))


DRIFT_TIER_CLAMP_DIVISOR = {"A": 33.0, "B": 33.0, "C": 20.0, "speculative": 10.0}
"""Drift v2 funding clamp: spread clamped to oracle TWAP / divisor by contract tier (math/funding.rs)."""


def drift_tier_cap(contract_tier: str, interval_hours: ArrayLike = 1.0) -> FloatArray:
    """Drift v2's cap on the rate per interval, as a fraction of the oracle TWAP: the spread's clamp
    ``oracleTWAP / divisor`` (by contract tier) divided by 24 per hour (``period_adjustment``)."""
    per_day = 1.0 / DRIFT_TIER_CLAMP_DIVISOR[contract_tier]
    return np.asarray(per_day * np.asarray(interval_hours, dtype=np.float64) / 24.0, dtype=np.float64)


def drift_rate(
    mark_twap: ArrayLike, oracle_twap: ArrayLike, cap: ArrayLike, interval_hours: ArrayLike = 1.0
) -> FloatArray:
    """Drift v2 rate per interval, fraction of the oracle TWAP: ``spread = markTWAP - oracleTWAP + oracleTWAP/5000``
    over the oracle TWAP, times ``interval / 24 h``, clamped to ``+-cap`` (e.g. :func:`drift_tier_cap`)."""
    o = np.asarray(oracle_twap, dtype=np.float64)
    spread = np.asarray(mark_twap, dtype=np.float64) - o + o / 5000.0
    return cap_rate(spread / o * np.asarray(interval_hours, dtype=np.float64) / 24.0, cap)


def drift_funding_rate(mark_twap: ArrayLike, oracle_twap: ArrayLike, contract_tier: str = "A") -> FloatArray:
    """Drift v2 hourly rate as a fraction of the oracle TWAP.

    ``spread = markTWAP - oracleTWAP + oracleTWAP/5000``, clamped to ``+-oracleTWAP/divisor``, divided by 24.
    """
    return drift_rate(mark_twap, oracle_twap, drift_tier_cap(contract_tier, 1.0), 1.0)


def funding_payment(side: ArrayLike, size: ArrayLike, price: ArrayLike, rate: ArrayLike) -> FloatArray:
    """What a position pays, USD: ``s * Q * price * F`` (negative: it receives)."""
    return np.asarray(
        np.asarray(side, dtype=np.float64) * np.asarray(size) * np.asarray(price) * np.asarray(rate),
        dtype=np.float64,
    )
