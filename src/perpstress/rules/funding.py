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
    avg = linear_weighted_average(premium_samples)
    rate = scale_to_interval(premium_interest_clamp(avg, interest_rate_8h, interest_clamp), interval_hours)
    return cap_rate(rate, cap_mmr_multiple * np.asarray(maintenance_margin_rate, dtype=np.float64))


def okx_funding_rate(
    premium_samples: ArrayLike, cap: ArrayLike, floor: ArrayLike | None = None, interest_rate: float = 0.0
) -> FloatArray:
    """OKX: ``clamp(mean(P - Ir), floor, cap)`` over the rolling window's samples (last axis)."""
    avg = np.asarray(premium_samples, dtype=np.float64).mean(axis=-1) - interest_rate
    return cap_rate(avg, cap, floor)


def hyperliquid_funding_rate(
    premium_samples: ArrayLike, hourly_cap: float = 0.04, interest_rate_8h: float = 0.0001
) -> FloatArray:
    """Hyperliquid hourly rate: ``(mean(P) + clamp(0.01% - mean(P), +-0.05%)) / 8``, capped at 4 % per hour."""
    avg = np.asarray(premium_samples, dtype=np.float64).mean(axis=-1)
    return cap_rate(premium_interest_clamp(avg, interest_rate_8h) / 8.0, hourly_cap)


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


def dydx_funding_rate(
    samples: ArrayLike,
    initial_margin_fraction: float,
    maintenance_margin_fraction: float,
    default_funding_8h: float = 0.0,
    rate_clamp_factor: float = 6.0,
) -> float:
    """Hourly dYdX v4 rate: ``clamp(mean(samples) + default, +-6*(IMF-MMF)) / 8`` (funding index delta / O)."""
    r8 = float(np.mean(np.asarray(samples, dtype=np.float64))) + default_funding_8h
    bound = rate_clamp_factor * (initial_margin_fraction - maintenance_margin_fraction)
    return float(np.clip(r8, -bound, bound)) / 8.0


DRIFT_TIER_CLAMP_DIVISOR = {"A": 33.0, "B": 33.0, "C": 20.0, "speculative": 10.0}
"""Drift v2 funding clamp: spread clamped to oracle TWAP / divisor by contract tier (math/funding.rs)."""


def drift_funding_rate(mark_twap: ArrayLike, oracle_twap: ArrayLike, contract_tier: str = "A") -> FloatArray:
    """Drift v2 hourly rate as a fraction of the oracle TWAP.

    ``spread = markTWAP - oracleTWAP + oracleTWAP/5000``, clamped to ``+-oracleTWAP/divisor``, divided by 24.
    """
    o = np.asarray(oracle_twap, dtype=np.float64)
    spread = np.asarray(mark_twap, dtype=np.float64) - o + o / 5000.0
    bound = o / DRIFT_TIER_CLAMP_DIVISOR[contract_tier]
    return np.asarray(np.clip(spread, -bound, bound) / 24.0 / o, dtype=np.float64)


def funding_payment(side: ArrayLike, size: ArrayLike, price: ArrayLike, rate: ArrayLike) -> FloatArray:
    """What a position pays, USD: ``s * Q * price * F`` (negative: it receives)."""
    return np.asarray(
        np.asarray(side, dtype=np.float64) * np.asarray(size) * np.asarray(price) * np.asarray(rate),
        dtype=np.float64,
    )
