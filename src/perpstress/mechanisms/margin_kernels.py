"""Margin checks over the position arrays, compiled with numba.

A margin unit (a cross account, or one isolated position) is liquidatable when its margin balance is below its
maintenance margin at the current mark (oracle on dYdX/Drift). The functions here compute, for given units, that
balance and requirement, and each position's *trigger band*: a range of its market's mark inside which the unit is
certainly not liquidatable, so that :mod:`perpstress.state.triggers` checks a unit only when a mark leaves a band.

- A unit with one position (an isolated position, or a cross account holding one market) gets its exact liquidation
  price (the tiered solve of :mod:`perpstress.rules.liquidation`) as the band edge.
- A cross account with several positions gets a conservative band per position: its cushion (balance minus
  requirement) is shared out so that the same relative move in every one of its markets at once cannot exhaust it.
  Each position can lose at most ``|Q| * (1 + MMR_max)`` per unit of adverse move, so a relative move
  ``f = cushion / sum(|N| * (1 + MMR_max))`` is safe for all positions together.

The plain-Python bodies (``*_py``) are the reference; the compiled versions are what runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.state.portfolio import F64, I32, I64


def _maintenance_py(notional: float, caps: F64, mmr: F64, cum: F64) -> float:
    k = 0
    while notional > caps[k]:
        k += 1
    return float(notional * mmr[k] - cum[k])


_maintenance = njit(cache=True)(_maintenance_py)


def _liquidation_price_py(side: float, q: float, ep: float, c: float, caps: F64, mmr: F64, cum: F64) -> float:
    """Exact tiered solve of ``c + s*q*(P - ep) = MM(q*P)``; 0 for a long that no price liquidates."""
    if side > 0 and c >= q * ep:
        return 0.0
    lower = 0.0
    for k in range(caps.shape[0]):
        p = (c + cum[k] - side * q * ep) / (q * mmr[k] - side * q)
        n = q * p
        if p >= 0.0 and n >= lower * (1.0 - 1e-12) and n <= caps[k] * (1.0 + 1e-12):
            return float(p)
        lower = caps[k]
    return np.nan


_liquidation_price = njit(cache=True)(_liquidation_price_py)


def _cross_sums_py(
    a: int, pos_start: I64, pos_count: I32, wallet: F64, pos_market: I32, size_lots: I64, entry: F64, iso_margin: F64,
    lot: F64, mark: F64, caps: F64, mmr: F64, cum: F64,
) -> tuple[float, float, float, int, int]:  # fmt: skip
    """Account ``a``'s cross margin balance, maintenance requirement, worst-case exposure per unit relative move
    (``sum |N| * (1 + MMR_max)``), number of cross positions and the last one's id."""
    bal = wallet[a]
    req = 0.0
    exposure = 0.0
    n_cross = 0
    last = -1
    for p in range(pos_start[a], pos_start[a] + pos_count[a]):
        if size_lots[p] == 0 or not np.isnan(iso_margin[p]):
            continue
        m = pos_market[p]
        q = size_lots[p] * lot[m]
        bal += q * (mark[m] - entry[p])
        req += _maintenance(abs(q) * mark[m], caps[m], mmr[m], cum[m])
        exposure += abs(q) * mark[m] * (1.0 + mmr[m][mmr.shape[1] - 1])
        n_cross += 1
        last = p
    return bal, req, exposure, n_cross, last


_cross_sums = njit(cache=True)(_cross_sums_py)


def unit_balances_py(
    accounts: I32,
    pos_start: I64,
    pos_count: I32,
    wallet: F64,
    pos_market: I32,
    size_lots: I64,
    entry: F64,
    iso_margin: F64,
    lot: F64,
    mark: F64,
    caps: F64,
    mmr: F64,
    cum: F64,
) -> tuple[F64, F64]:
    """Cross margin balance and maintenance requirement of each account in ``accounts`` (isolated positions are
    left out: see :func:`isolated_balances`)."""
    n = accounts.shape[0]
    balance = np.empty(n)
    requirement = np.empty(n)
    for i in range(n):
        bal, req, _, _, _ = _cross_sums(
            accounts[i], pos_start, pos_count, wallet, pos_market, size_lots, entry, iso_margin, lot, mark, caps, mmr,
            cum,
        )  # fmt: skip
        balance[i] = bal
        requirement[i] = req
    return balance, requirement


unit_balances = njit(cache=True)(unit_balances_py)


def isolated_balances_py(
    positions: I64, pos_market: I32, size_lots: I64, entry: F64, iso_margin: F64, lot: F64, mark: F64,
    caps: F64, mmr: F64, cum: F64,
) -> tuple[F64, F64]:  # fmt: skip
    """Margin balance and maintenance requirement of each isolated position in ``positions``."""
    n = positions.shape[0]
    balance = np.empty(n)
    requirement = np.empty(n)
    for i in range(n):
        p = positions[i]
        m = pos_market[p]
        q = size_lots[p] * lot[m]
        balance[i] = iso_margin[p] + q * (mark[m] - entry[p])
        requirement[i] = _maintenance(abs(q) * mark[m], caps[m], mmr[m], cum[m])
    return balance, requirement


isolated_balances = njit(cache=True)(isolated_balances_py)


def _exact_band_py(
    p: int, collateral: float, pos_market: I32, size_lots: I64, entry: F64, lot: F64, caps: F64, mmr: F64, cum: F64,
    band_lo: F64, band_hi: F64,
) -> None:  # fmt: skip
    """Set position ``p``'s band edge to its exact liquidation price given ``collateral``."""
    m = pos_market[p]
    q = size_lots[p] * lot[m]
    side = 1.0 if q > 0 else -1.0
    lp = _liquidation_price(side, abs(q), entry[p], collateral, caps[m], mmr[m], cum[m])
    if lp != lp:  # no price solves it: a short whose collateral is below -Q*EP is liquidatable at every price
        lp = np.inf if side > 0 else -np.inf  # so its band fires at once
    if side > 0:
        band_lo[p] = lp
    else:
        band_hi[p] = lp


_exact_band = njit(cache=True)(_exact_band_py)


def position_bands_py(
    accounts: I32,
    pos_start: I64,
    pos_count: I32,
    wallet: F64,
    cushion: F64,
    pos_market: I32,
    size_lots: I64,
    entry: F64,
    iso_margin: F64,
    lot: F64,
    mark: F64,
    caps: F64,
    mmr: F64,
    cum: F64,
    band_lo: F64,
    band_hi: F64,
) -> None:
    """Write the trigger band of every open position of ``accounts`` into ``band_lo``/``band_hi`` (in place).

    A long fires when its market's mark falls to ``band_lo`` or below; a short when it rises to ``band_hi`` or above.
    A unit already liquidatable gets a band that fires at once (``lo = +inf`` or ``hi = -inf``). ``cushion``: USD per
    account taken off its cross wallet for the band only (a collateral holder's allowance for its collateral falling
    before its next re-band), so the band is conservative: it fires no later than the exact one would.
    """
    for i in range(accounts.shape[0]):
        a = accounts[i]
        start = pos_start[a]
        stop = start + pos_count[a]
        for p in range(start, stop):
            band_lo[p] = -np.inf
            band_hi[p] = np.inf
            if size_lots[p] != 0 and not np.isnan(iso_margin[p]):
                _exact_band(p, iso_margin[p], pos_market, size_lots, entry, lot, caps, mmr, cum, band_lo, band_hi)
        bal, req, exposure, n_cross, last_cross = _cross_sums(
            a, pos_start, pos_count, wallet, pos_market, size_lots, entry, iso_margin, lot, mark, caps, mmr, cum
        )
        bal -= cushion[a]
        if n_cross == 1:  # one cross position: its exact liquidation price against the whole wallet
            c = wallet[a] - cushion[a]
            _exact_band(last_cross, c, pos_market, size_lots, entry, lot, caps, mmr, cum, band_lo, band_hi)
        elif n_cross > 1:
            spare = bal - req
            f = spare / exposure if spare > 0.0 else -1.0
            for p in range(start, stop):
                if size_lots[p] == 0 or not np.isnan(iso_margin[p]):
                    continue
                m = pos_market[p]
                if f < 0.0:
                    if size_lots[p] > 0:
                        band_lo[p] = np.inf
                    else:
                        band_hi[p] = -np.inf
                elif size_lots[p] > 0:
                    band_lo[p] = mark[m] * (1.0 - f)
                else:
                    band_hi[p] = mark[m] * (1.0 + f)


position_bands = njit(cache=True)(position_bands_py)


def fold_triggers_py(
    positions: I64,
    pos_market: I32,
    size_lots: I64,
    entry: F64,
    iso_margin: F64,
    wallet: F64,
    cushion: F64,
    lot: F64,
    stop_price: F64,
    topup_reserve: F64,
    caps: F64,
    topup_mmr: F64,
    topup_cum: F64,
    band_lo: F64,
    band_hi: F64,
) -> None:
    """Tighten each open position's band (in place) to its stop price and to its top-up trigger.

    The top-up trigger is where maintenance over the unit's balance reaches the top-up ratio ``r``: the liquidation
    price solve with the tiers' rates and deductions divided by ``r`` (``topup_mmr = mmr / r``, ``topup_cum = cum /
    r``), against the position's isolated margin or its account's wallet less its ``cushion`` (position id ==
    account id). NaN stops, closed positions and positions without a top-up reserve leave the band as it is.
    """
    for i in range(positions.shape[0]):
        p = positions[i]
        if size_lots[p] == 0:
            continue
        m = pos_market[p]
        q = size_lots[p] * lot[m]
        long = q > 0
        e = stop_price[p]
        if e == e:
            if long:
                band_lo[p] = max(band_lo[p], e)
            else:
                band_hi[p] = min(band_hi[p], e)
        if topup_reserve[p] > 0:
            c = iso_margin[p] if not np.isnan(iso_margin[p]) else wallet[p] - cushion[p]
            side = 1.0 if long else -1.0
            e = _liquidation_price(side, abs(q), entry[p], c, caps[m], topup_mmr[m], topup_cum[m])
            if e == e:
                if long:
                    band_lo[p] = max(band_lo[p], e)
                else:
                    band_hi[p] = min(band_hi[p], e)


fold_triggers = njit(cache=True)(fold_triggers_py)
