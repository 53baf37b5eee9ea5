"""Compiled liquidation: a venue's admitted units in one call, for the procedures whose steps are book orders,
the fund's takeover and the backstop vault, with the gap settlement after each unit.

:func:`liquidate_units` walks the units in order and does for each what its procedure's Python code does
(:func:`~perpstress.mechanisms.liquidation.base.order_then_takeover` for
:class:`~perpstress.mechanisms.liquidation.ioc_then_takeover.IocThenTakeoverLiquidation` and
:class:`~perpstress.mechanisms.liquidation.tier_step.TierStepLiquidation`,
:meth:`~perpstress.mechanisms.liquidation.backstop_vault.BackstopVaultLiquidation.liquidate`, then
:meth:`~perpstress.mechanisms.liquidation.LiquidationEngine.settle_gap`): orders walk the book through the order
book's ``_match`` and the makers' side settles through ``settle_maker_fills``; closes, fees, fund payments and
takeovers are the :class:`~perpstress.mechanisms.accounting.Accounting` and
:class:`~perpstress.mechanisms.insurance.InsuranceFunds` arithmetic in the same order, so the outcome is identical
bit for bit (sums that NumPy adds pairwise are added pairwise here, by
:func:`~perpstress.mechanisms.price_kernels.numpy_sum`). Record rows and ADL requests are written into arrays the
engine appends to its records. The Python procedures stay the reference (and the path for the other procedures, for
a socialised-loss venue, for executions other than the books and for runs that record every trade).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from perpstress.mechanisms.accounting import settle_maker_fills
from perpstress.mechanisms.price_kernels import numpy_sum
from perpstress.mechanisms.unit_kernels import (
    _bankruptcy_price,
    _close,
    _trade,
    _unit_equity,
    _unit_maintenance,
    _unit_positions,
)
from perpstress.state.orderbook import _match

IOC_THEN_TAKEOVER, TIER_STEP, BACKSTOP_VAULT, FILLABLE_PRICE_IOC, KEEPER_TAKEOVER = 1, 2, 3, 4, 5
"""Procedure codes of :func:`liquidate_units`."""
KIND_NAMES = ("book", "takeover", "backstop", "keeper")
"""Record kinds by the code in column ``R_KIND`` of the integer rows."""
BOOK, TAKEOVER, BACKSTOP, KEEPER = 0, 1, 2, 3

P_MAX_DEVIATION, P_FEE_RATE, P_FULL_BELOW_TIER, P_TIERS_TO_DROP, P_FILL_OR_KILL = 0, 1, 2, 3, 4
P_MM_FRACTION, P_PARTIAL_USD, P_PARTIAL_FRACTION = 5, 6, 7
P_BANKRUPTCY_ADJUSTMENT, P_SPREAD_TO_MM, P_POSITION_PORTION, P_MIN_NOTIONAL, P_MAX_BLOCK_NOTIONAL = 8, 9, 10, 11, 12
P_MAX_INSURANCE_LOST, P_MAX_LIQUIDATION_FEE = 13, 14
P_LIQUIDATOR_FEE, P_IF_FEE, P_INITIAL_FRACTION, P_DURATION_S, P_BUFFER, P_WHOLE_BELOW = 15, 16, 17, 18, 19, 20
P_SOCIALISES = 21
N_PARAMS = 22
"""Indices of the procedure's parameters in ``params`` (unused ones are 0); ``P_SOCIALISES`` is 1 where the
venue's ADL rule socialises what the fund cannot pay."""
R_MARKET, R_ACCOUNT, R_SIDE, R_LOTS, R_KIND = 0, 1, 2, 3, 4
F_NOTIONAL, F_PRICE, F_MARK, F_FEE = 0, 1, 2, 3
Q_MARKET, Q_ACCOUNT, Q_POSITION, Q_LOTS = 0, 1, 2, 3
C_RECORDS, C_REQUESTS, C_ERROR = 0, 1, 2
"""Counters in ``counts``: rows written, requests written, and where the Python code raises, an error code
(:data:`E_NEGATIVE_DEPOSIT`, :data:`E_NO_KEEPER`, :data:`E_NOT_A_NUMBER`)."""
E_NEGATIVE_DEPOSIT, E_NO_KEEPER, E_NOT_A_NUMBER = 1, 2, 3
"""Error codes: a negative deposit (``InsuranceFunds.deposit`` raises), a market without a keeper (the keepers'
dict raises), a lot count that is not a number (``int()`` raises)."""


def _execute_py(m, lots, limit_price, fill_or_kill, positions, accounts, markets, books, makers):  # type: ignore[no-untyped-def]
    """:meth:`BookExecution.execute` without trade records: the book walk (fill-or-kill if ``fill_or_kill``), the
    makers' side, the last trade and the volume; returns the signed lots filled and their average price (NaN if
    none)."""
    tick_size, market_venue = markets[2], markets[3]
    lot_size = markets[1]
    price, book_lots, owner, count, fill_owner, fill_tick, fill_lots = books
    maker_fee, maker_filled, fee_pool, last_trade, volume_usd, maker_long_lots = makers
    pos_market, size_lots, entry_price = positions[0], positions[1], positions[2]
    wallet = accounts[2]
    tick = tick_size[m]
    limit = int(np.floor(limit_price / tick + 1e-09)) if lots > 0 else int(np.ceil(limit_price / tick - 1e-09))
    k = _match(price, book_lots, owner, count, m, lots, limit, fill_or_kill, fill_owner, fill_tick, fill_lots)
    if k == 0:
        return 0, np.nan
    prices = np.empty(k)
    for i in range(k):
        prices[i] = fill_tick[i] * tick
    venue = market_venue[m]
    sign = 1 if lots > 0 else -1
    settle_maker_fills(fill_owner[:k], prices, fill_lots[:k], sign, lot_size[m], maker_fee[venue], venue, pos_market,
                       lot_size, size_lots, entry_price, wallet, maker_long_lots, maker_filled, fee_pool)  # fmt: skip
    total = 0
    value = np.empty(k)
    for i in range(k):
        total += fill_lots[i]
        value[i] = prices[i] * fill_lots[i]
    last_trade[m] = prices[k - 1]
    s = numpy_sum(value, k)
    volume_usd[m] += s * lot_size[m]
    return sign * total, s / total


_execute = njit(cache=True)(_execute_py)


def _fund_trade_py(fund, m, size, price, funds):  # type: ignore[no-untyped-def]
    """:meth:`InsuranceFunds.take_over` (its ``_trade``): add ``size`` to the fund's inventory at ``price``."""
    balance, inventory, entry_price, cost_adjustment = funds[0], funds[1], funds[2], funds[4]
    inv = inventory[fund, m]
    entry = entry_price[fund, m]
    if inv == 0:
        entry_price[fund, m] = price
        inventory[fund, m] = size
        return
    if np.sign(inv) == np.sign(size):
        cost_adjustment[fund, m] += size * (entry - price)
        inventory[fund, m] = inv + size
        return
    a, b = abs(size), abs(inv)
    closing = (b if b < a else a) * np.sign(size)
    share = abs(closing) / abs(inv)
    adjustment = cost_adjustment[fund, m] * share
    cost_adjustment[fund, m] -= adjustment
    realised = -closing * (price - entry) + adjustment
    balance[fund] += realised
    rest = inv + size
    inventory[fund, m] = rest
    if rest == 0:
        entry_price[fund, m] = 0.0
        balance[fund] += cost_adjustment[fund, m]
        cost_adjustment[fund, m] = 0.0
    elif np.sign(rest) != np.sign(inv):
        entry_price[fund, m] = price


_fund_trade = njit(cache=True)(_fund_trade_py)


def _fund_equity_py(fund, mark, funds):  # type: ignore[no-untyped-def]
    """:meth:`InsuranceFunds.equity`: balance plus the inventory's unrealised PnL (summed as NumPy sums)."""
    balance, inventory, entry_price, cost_adjustment = funds[0], funds[1], funds[2], funds[4]
    n = mark.shape[0]
    upnl = np.empty(n)
    for j in range(n):
        upnl[j] = inventory[fund, j] * (mark[j] - entry_price[fund, j]) + cost_adjustment[fund, j]
    return balance[fund] + numpy_sum(upnl, n)


_fund_equity = njit(cache=True)(_fund_equity_py)


def _take_over_py(  # type: ignore[no-untyped-def]
    ts, venue, fund, account, position, p, positions, accounts, markets, funds, long_lots, rec_i, rec_f, req_i,
    req_f, counts
):  # fmt: skip
    """:func:`~perpstress.mechanisms.liquidation.base.take_over`: the fund takes ``p`` over at its bankruptcy price
    within its takeover limit and drawdown threshold, else an ADL request."""
    pos_market, size_lots = positions[0], positions[1]
    mark, lot_size = markets[0], markets[1]
    balance, inventory = funds[0], funds[1]
    takeover_fraction, drawdown_fraction, drawdown_peak = funds[5], funds[7], funds[8]
    m = pos_market[p]
    lots = size_lots[p]
    bp = _bankruptcy_price(account, position, p, positions, accounts, markets)
    size = lots * lot_size[m]
    frac = drawdown_fraction[fund]
    peak = drawdown_peak[fund]
    drawn_down = False
    if not np.isnan(frac) and not np.isnan(peak):
        drawn_down = peak > 0 and _fund_equity(fund, mark, funds) <= (1.0 - frac) * peak
    can = True
    if balance[fund] <= 0 or _fund_equity(fund, mark, funds) <= 0:
        can = False
    elif not np.isnan(takeover_fraction[fund]):
        can = abs(inventory[fund, m] + size) * bp <= takeover_fraction[fund] * balance[fund]
    if drawn_down or not can:
        r = counts[C_REQUESTS]
        req_i[r, Q_MARKET] = m
        req_i[r, Q_ACCOUNT] = account
        req_i[r, Q_POSITION] = p
        req_i[r, Q_LOTS] = lots
        req_f[r] = bp
        counts[C_REQUESTS] = r + 1
        return
    _close(account, position, p, -lots, bp, positions, accounts, lot_size, long_lots)
    _fund_trade(fund, m, size, bp, funds)
    r = counts[C_RECORDS]
    rec_i[r, R_MARKET] = m
    rec_i[r, R_ACCOUNT] = account
    rec_i[r, R_SIDE] = 1 if lots > 0 else -1
    rec_i[r, R_LOTS] = lots
    rec_i[r, R_KIND] = TAKEOVER
    rec_f[r, F_NOTIONAL] = abs(size) * bp
    rec_f[r, F_PRICE] = bp
    rec_f[r, F_MARK] = mark[m]
    rec_f[r, F_FEE] = 0.0
    counts[C_RECORDS] = r + 1


_take_over = njit(cache=True)(_take_over_py)


def _fund_pay_py(fund, market, amount, funds):  # type: ignore[no-untyped-def]
    """:meth:`InsuranceFunds.pay`: up to ``amount`` for a loss in ``market``, within the fund's balance and its
    per-market claim cap; returns what was paid."""
    balance, claimed, claim_cap = funds[0], funds[3], funds[6]
    room = balance[fund]
    room = 0.0 if room < 0.0 else room
    if not np.isnan(claim_cap[fund]):
        left = claim_cap[fund] - claimed[fund, market]
        left = 0.0 if left < 0.0 else left
        room = left if left < room else room
    want = 0.0 if amount < 0.0 else amount
    paid = room if room < want else want
    balance[fund] -= paid
    claimed[fund, market] += paid
    return paid


_fund_pay = njit(cache=True)(_fund_pay_py)


def _socialise_py(venue, market, loss, positions, accounts, lot_size, bad_debt, social):  # type: ignore[no-untyped-def]
    """:meth:`LiquidationEngine.socialise`: ``loss`` charged to every open position in ``market`` pro rata by size
    (its isolated margin, else its account's wallet), in position order; bad debt when nothing is open. ``social``:
    (position accounts, positions by market, where each market's run starts, socialised USD per venue)."""
    size_lots, isolated_margin = positions[1], positions[3]
    wallet = accounts[2]
    pos_account, market_order, market_start, socialised_usd = social
    lo, hi = market_start[market], market_start[market + 1]
    base = np.empty(hi - lo)
    n = 0
    for i in range(lo, hi):
        p = market_order[i]
        if size_lots[p] != 0:
            base[n] = abs(size_lots[p]) * lot_size[market]
            n += 1
    total = numpy_sum(base, n)
    if total == 0:
        bad_debt[venue] += loss
        return
    share = loss / total
    k = 0
    for i in range(lo, hi):
        p = market_order[i]
        if size_lots[p] != 0:
            charge = base[k] * share
            k += 1
            if not np.isnan(isolated_margin[p]):
                isolated_margin[p] -= charge
            else:
                wallet[pos_account[p]] -= charge
    socialised_usd[venue] += loss


_socialise = njit(cache=True)(_socialise_py)


def _settle_gap_py(venue, fund, account, position, positions, accounts, funds, bad_debt, ps, socialises, lot_size,  # type: ignore[no-untyped-def]
                   social):  # fmt: skip
    """:meth:`LiquidationEngine.settle_gap`: a unit with nothing left open and negative collateral has its gap paid
    by the fund (within its per-market claim cap); the rest is socialised (:func:`_socialise`) where ``socialises``,
    else bad debt."""
    pos_market, size_lots, isolated_margin = positions[0], positions[1], positions[3]
    pos_start, pos_count, wallet = accounts
    if _unit_positions(account, position, pos_start, pos_count, size_lots, isolated_margin, ps) > 0:
        return
    gap = -(isolated_margin[position] if position >= 0 else wallet[account])
    if gap <= 0:
        return
    first = position if position >= 0 else pos_start[account]
    market = pos_market[first]
    paid = _fund_pay(fund, market, gap, funds)
    if position >= 0:
        isolated_margin[position] += paid
    else:
        wallet[account] += paid
    uncovered = gap - paid
    if uncovered > 0:
        if position >= 0:
            isolated_margin[position] += uncovered
        else:
            wallet[account] += uncovered
        if socialises:
            _socialise(venue, market, uncovered, positions, accounts, lot_size, bad_debt, social)
        else:
            bad_debt[venue] += uncovered


_settle_gap = njit(cache=True)(_settle_gap_py)


def _order_then_takeover_py(  # type: ignore[no-untyped-def]
    ts, venue, fund, account, position, p, send, fok, partial, params, positions, accounts, markets, books, makers,
    funds, long_lots, rec_i, rec_f, req_i, req_f, counts
):  # fmt: skip
    """:func:`~perpstress.mechanisms.liquidation.base.order_then_takeover`: the order, its clearance fee to the
    fund, then the takeover of what is left (a partial step that filled stops there)."""
    pos_market, size_lots = positions[0], positions[1]
    mark_of, lot_size = markets[0], markets[1]
    balance = funds[0]
    m = pos_market[p]
    lots = size_lots[p]
    side = 1 if lots > 0 else -1
    mark = mark_of[m]
    if send != 0:
        limit = mark * (1 - side * params[P_MAX_DEVIATION])
        filled, average = _execute(m, send, limit, fok, positions, accounts, markets, books, makers)
        if filled != 0:
            _close(account, position, p, filled, average, positions, accounts, lot_size, long_lots)
            notional = abs(filled) * lot_size[m] * average
            eq = _unit_equity(account, position, positions, accounts, markets)
            eq = 0.0 if eq < 0.0 else eq
            fee = params[P_FEE_RATE] * notional
            fee = eq if eq < fee else fee
            if position >= 0:
                positions[3][position] += -fee
            else:
                accounts[2][account] += -fee
            if fee < 0:
                counts[C_ERROR] = E_NEGATIVE_DEPOSIT
                return
            balance[fund] += fee
            r = counts[C_RECORDS]
            rec_i[r, R_MARKET] = m
            rec_i[r, R_ACCOUNT] = account
            rec_i[r, R_SIDE] = side
            rec_i[r, R_LOTS] = -filled
            rec_i[r, R_KIND] = BOOK
            rec_f[r, F_NOTIONAL] = notional
            rec_f[r, F_PRICE] = average
            rec_f[r, F_MARK] = mark
            rec_f[r, F_FEE] = fee
            counts[C_RECORDS] = r + 1
            if partial:
                return
    if size_lots[p] == 0:
        return
    _take_over(ts, venue, fund, account, position, p, positions, accounts, markets, funds, long_lots, rec_i, rec_f,
               req_i, req_f, counts)  # fmt: skip


_order_then_takeover = njit(cache=True)(_order_then_takeover_py)


def _backstop_py(  # type: ignore[no-untyped-def]
    ts, venue, fund, account, position, params, cooldown_ms, positions, accounts, markets, books, makers, funds,
    long_lots, cooldown_until, rec_i, rec_f, req_i, req_f, counts, ps
):  # fmt: skip
    """:meth:`BackstopVaultLiquidation.liquidate`: below a share of maintenance the vault takes the positions over
    at mark with the remaining collateral (ADL at the bankruptcy prices when equity is negative); else market
    orders, a slice above the partial threshold outside the cooldown."""
    pos_market, size_lots, isolated_margin = positions[0], positions[1], positions[3]
    pos_start, pos_count, wallet = accounts
    mark_of, lot_size = markets[0], markets[1]
    balance = funds[0]
    n = _unit_positions(account, position, pos_start, pos_count, size_lots, isolated_margin, ps)
    equity = _unit_equity(account, position, positions, accounts, markets)
    maintenance = _unit_maintenance(n, ps, positions, markets)
    if equity < params[P_MM_FRACTION] * maintenance:
        if equity < 0 or _fund_equity(fund, mark_of, funds) <= 0:
            for j in range(n):
                p = ps[j]
                r = counts[C_REQUESTS]
                req_i[r, Q_MARKET] = pos_market[p]
                req_i[r, Q_ACCOUNT] = account
                req_i[r, Q_POSITION] = p
                req_i[r, Q_LOTS] = size_lots[p]
                req_f[r] = _bankruptcy_price(account, position, p, positions, accounts, markets)
                counts[C_REQUESTS] = r + 1
            return
        for j in range(n):
            p = ps[j]
            m = pos_market[p]
            lots = size_lots[p]
            mark = mark_of[m]
            _close(account, position, p, -lots, mark, positions, accounts, lot_size, long_lots)
            _fund_trade(fund, m, lots * lot_size[m], mark, funds)
            r = counts[C_RECORDS]
            rec_i[r, R_MARKET] = m
            rec_i[r, R_ACCOUNT] = account
            rec_i[r, R_SIDE] = 1 if lots > 0 else -1
            rec_i[r, R_LOTS] = lots
            rec_i[r, R_KIND] = BACKSTOP
            rec_f[r, F_NOTIONAL] = abs(lots) * lot_size[m] * mark
            rec_f[r, F_PRICE] = mark
            rec_f[r, F_MARK] = mark
            rec_f[r, F_FEE] = 0.0
            counts[C_RECORDS] = r + 1
        rest = isolated_margin[position] if position >= 0 else wallet[account]
        if position >= 0:
            isolated_margin[position] += -rest
        else:
            wallet[account] += -rest
        if rest < 0:
            counts[C_ERROR] = E_NEGATIVE_DEPOSIT
            return
        balance[fund] += rest
        return
    for j in range(n):
        p = ps[j]
        m = pos_market[p]
        lots = size_lots[p]
        side = 1 if lots > 0 else -1
        mark = mark_of[m]
        send = -lots
        if abs(lots) * lot_size[m] * mark > params[P_PARTIAL_USD] and ts >= cooldown_until[account]:
            part = int(abs(lots) * params[P_PARTIAL_FRACTION])
            send = -side * (part if part > 1 else 1)
            cooldown_until[account] = ts + cooldown_ms
        filled, average = _execute(m, send, mark * (1 - side * params[P_MAX_DEVIATION]), False, positions, accounts,
                                   markets, books, makers)  # fmt: skip
        if filled != 0:
            _close(account, position, p, filled, average, positions, accounts, lot_size, long_lots)
            r = counts[C_RECORDS]
            rec_i[r, R_MARKET] = m
            rec_i[r, R_ACCOUNT] = account
            rec_i[r, R_SIDE] = side
            rec_i[r, R_LOTS] = -filled
            rec_i[r, R_KIND] = BOOK
            rec_f[r, F_NOTIONAL] = abs(filled) * lot_size[m] * average
            rec_f[r, F_PRICE] = average
            rec_f[r, F_MARK] = mark
            rec_f[r, F_FEE] = 0.0
            counts[C_RECORDS] = r + 1


_backstop = njit(cache=True)(_backstop_py)


def _record_py(rec_i, rec_f, counts, m, account, side, lots, kind, notional, price, mark, fee):  # type: ignore[no-untyped-def]
    """:meth:`LiquidationRecord.add` as the next row of ``rec_i``/``rec_f``."""
    r = counts[C_RECORDS]
    rec_i[r, R_MARKET] = m
    rec_i[r, R_ACCOUNT] = account
    rec_i[r, R_SIDE] = side
    rec_i[r, R_LOTS] = lots
    rec_i[r, R_KIND] = kind
    rec_f[r, F_NOTIONAL] = notional
    rec_f[r, F_PRICE] = price
    rec_f[r, F_MARK] = mark
    rec_f[r, F_FEE] = fee
    counts[C_RECORDS] = r + 1


_record = njit(cache=True)(_record_py)


def _fillable_price_ioc_py(  # type: ignore[no-untyped-def]
    venue, fund, account, position, params, positions, accounts, markets, books, makers, funds, long_lots, rec_i,
    rec_f, req_i, req_f, counts, ps
):  # fmt: skip
    """:meth:`FillablePriceIocLiquidation.liquidate`: an IOC at the fillable price for a slice of the unit's first
    open position; the fill's distance from bankruptcy is the fund's fee (capped) or its payment (capped); nothing
    filled with negative net collateral is an ADL request at the bankruptcy price."""
    pos_market, size_lots, isolated_margin = positions[0], positions[1], positions[3]
    pos_start, pos_count, wallet = accounts
    mark_of, lot_size, tier_cap, tier_mmr, tier_cum = markets[0], markets[1], markets[4], markets[5], markets[6]
    balance = funds[0]
    n = _unit_positions(account, position, pos_start, pos_count, size_lots, isolated_margin, ps)
    if n == 0:
        return
    tnc = _unit_equity(account, position, positions, accounts, markets)
    tmmr = _unit_maintenance(n, ps, positions, markets)
    p = ps[0]
    m = pos_market[p]
    lots = size_lots[p]
    side = 1 if lots > 0 else -1
    oracle = mark_of[m]
    notional = abs(size_lots[p] * lot_size[m]) * oracle
    k = np.searchsorted(tier_cap[m], notional)
    mmf = (notional * tier_mmr[m, k] - tier_cum[m, k]) / notional if notional > 0 else 0.0
    abr = 1.0
    if tmmr > 0:
        x = params[P_BANKRUPTCY_ADJUSTMENT] * (1.0 - tnc / tmmr)
        if np.isnan(x):
            abr = x
        else:
            abr = x if x > 0.0 else 0.0
            abr = abr if abr < 1.0 else 1.0
    fillable = oracle * (1.0 - side * abr * params[P_SPREAD_TO_MM] * mmf)
    slice_usd = params[P_POSITION_PORTION] * notional
    slice_usd = params[P_MAX_BLOCK_NOTIONAL] if params[P_MAX_BLOCK_NOTIONAL] < slice_usd else slice_usd
    slice_usd = params[P_MIN_NOTIONAL] if params[P_MIN_NOTIONAL] > slice_usd else slice_usd
    slice_usd = notional if notional < slice_usd else slice_usd
    lots_f = slice_usd / oracle / lot_size[m]
    if not np.isfinite(lots_f):
        counts[C_ERROR] = E_NOT_A_NUMBER
        return
    want = int(lots_f)
    want = want if want > 1 else 1
    held = abs(lots)
    send = -side * (want if want < held else held)
    bp = _bankruptcy_price(account, position, p, positions, accounts, markets)
    filled, average = _execute(m, send, fillable, False, positions, accounts, markets, books, makers)
    if filled == 0:
        if tnc < 0:
            r = counts[C_REQUESTS]
            req_i[r, Q_MARKET] = m
            req_i[r, Q_ACCOUNT] = account
            req_i[r, Q_POSITION] = p
            req_i[r, Q_LOTS] = lots
            req_f[r] = bp
            counts[C_REQUESTS] = r + 1
        return
    _close(account, position, p, filled, average, positions, accounts, lot_size, long_lots)
    closed = abs(filled) * lot_size[m]
    delta = side * (average - bp) * closed
    fee = 0.0
    if delta > 0:
        cap = params[P_MAX_LIQUIDATION_FEE] * closed * average
        fee = cap if cap < delta else delta
        if position >= 0:
            isolated_margin[position] += -fee
        else:
            wallet[account] += -fee
        if fee < 0:
            counts[C_ERROR] = E_NEGATIVE_DEPOSIT
            return
        balance[fund] += fee
    else:
        lost = -delta
        lost = params[P_MAX_INSURANCE_LOST] if params[P_MAX_INSURANCE_LOST] < lost else lost
        paid = _fund_pay(fund, m, lost, funds)
        if position >= 0:
            isolated_margin[position] += paid
        else:
            wallet[account] += paid
    _record(rec_i, rec_f, counts, m, account, side, -filled, BOOK, closed * average, average, oracle, fee)


_fillable_price_ioc = njit(cache=True)(_fillable_price_ioc_py)


def _keeper_py(  # type: ignore[no-untyped-def]
    ts, fund, account, position, params, positions, accounts, markets, funds, long_lots, keeper_of,
    liquidation_started, rec_i, rec_f, counts, ps
):  # fmt: skip
    """:meth:`KeeperLiquidation.liquidate`: the market's keeper (``keeper_of``, -1 for none) takes a ramping share
    of each open position over at ``oracle -+ liquidator fee``; the user pays the IF fee (at most its equity)."""
    pos_market, size_lots, isolated_margin = positions[0], positions[1], positions[3]
    pos_start, pos_count, wallet = accounts
    mark_of, lot_size = markets[0], markets[1]
    balance = funds[0]
    if liquidation_started[account] < 0:
        liquidation_started[account] = ts
    elapsed_s = (ts - liquidation_started[account]) / 1000.0
    duration = params[P_DURATION_S]
    ramp = params[P_INITIAL_FRACTION] + (elapsed_s / duration if duration != 0 else 1.0)
    equity = _unit_equity(account, position, positions, accounts, markets)
    n = _unit_positions(account, position, pos_start, pos_count, size_lots, isolated_margin, ps)
    maintenance = _unit_maintenance(n, ps, positions, markets)
    shortfall = maintenance * (1 + params[P_BUFFER]) - equity
    whole = params[P_WHOLE_BELOW]
    for j in range(n):
        p = ps[j]
        m = pos_market[p]
        lots = size_lots[p]
        side = 1 if lots > 0 else -1
        oracle = mark_of[m]
        notional = abs(size_lots[p] * lot_size[m]) * oracle
        share = 1.0 if notional < whole or shortfall < whole else (1.0 if ramp > 1.0 else ramp)
        held = abs(lots)
        part_f = held * share
        if not np.isfinite(part_f):
            counts[C_ERROR] = E_NOT_A_NUMBER
            return
        part = int(part_f)
        part = part if part > 1 else 1
        take = -side * (part if part < held else held)
        price = oracle * (1.0 - side * params[P_LIQUIDATOR_FEE])
        keeper = keeper_of[m]
        if keeper < 0:
            counts[C_ERROR] = E_NO_KEEPER
            return
        _close(account, position, p, take, price, positions, accounts, lot_size, long_lots)
        _trade(keeper, -1, keeper, -take, price, positions, accounts, lot_size, long_lots)
        taken = abs(take) * lot_size[m] * price
        eq = _unit_equity(account, position, positions, accounts, markets)
        eq = 0.0 if eq < 0.0 else eq
        fee = params[P_IF_FEE] * taken
        fee = eq if eq < fee else fee
        if position >= 0:
            isolated_margin[position] += -fee
        else:
            wallet[account] += -fee
        if fee < 0:
            counts[C_ERROR] = E_NEGATIVE_DEPOSIT
            return
        balance[fund] += fee
        _record(rec_i, rec_f, counts, m, account, side, -take, KEEPER, taken, price, oracle, fee)


_keeper = njit(cache=True)(_keeper_py)


def _liquidate_units_py(  # type: ignore[no-untyped-def]
    kind, params, cooldown_ms, ts, venue, fund, unit_account, unit_position, positions, accounts, markets, books,
    makers, funds, long_lots, cooldown_until, bad_debt, rec_i, rec_f, req_i, req_f, counts, ps, keepers, social
):  # fmt: skip
    """One venue's admitted units in order: its procedure (``kind``: :data:`IOC_THEN_TAKEOVER`, :data:`TIER_STEP`,
    :data:`BACKSTOP_VAULT`, :data:`FILLABLE_PRICE_IOC` or :data:`KEEPER_TAKEOVER`, with ``params`` at the ``P_*``
    indices), then the unit's gap settlement.

    State, as tuples of the engine's arrays: ``positions`` (market, size_lots, entry_price, isolated_margin),
    ``accounts`` (pos_start, pos_count, wallet), ``markets`` (mark, lot_size, tick_size, venue, tier_cap, tier_mmr,
    tier_cum), ``books`` (the order book's price, lots, owner, count and its fill buffers), ``makers`` (maker_fee per
    venue, maker_filled, fee_pool, last_trade, volume_usd, the makers' open-interest counter), ``funds`` (balance,
    inventory, entry_price, claimed, cost_adjustment, then per fund: takeover notional fraction, per-market claim
    cap, drawdown fraction and the drawdown window's peak equity, NaN where none), ``keepers`` (the keeper account
    per market, -1 for none; per account, ms its liquidation started, -1 for none), ``social`` (what
    :func:`_socialise` reads). Rows go to ``rec_i``/``rec_f`` (``R_*``/``F_*`` columns), ADL requests to
    ``req_i``/``req_f`` (``Q_*`` columns, bankruptcy price), their counts to ``counts``; ``ps`` is scratch for a
    unit's positions. Stops early with an error code in ``counts[C_ERROR]`` where the Python code raises."""
    pos_start, pos_count = accounts[0], accounts[1]
    size_lots, isolated_margin = positions[1], positions[3]
    lot_size, mark_of, tier_cap = markets[1], markets[0], markets[4]
    pos_market = positions[0]
    socialises = params[P_SOCIALISES] != 0
    for u in range(unit_account.shape[0]):
        account = unit_account[u]
        position = unit_position[u]
        if kind == BACKSTOP_VAULT:
            _backstop(ts, venue, fund, account, position, params, cooldown_ms, positions, accounts, markets, books,
                      makers, funds, long_lots, cooldown_until, rec_i, rec_f, req_i, req_f, counts, ps)  # fmt: skip
        elif kind == FILLABLE_PRICE_IOC:
            _fillable_price_ioc(venue, fund, account, position, params, positions, accounts, markets, books, makers,
                                funds, long_lots, rec_i, rec_f, req_i, req_f, counts, ps)  # fmt: skip
        elif kind == KEEPER_TAKEOVER:
            _keeper(ts, fund, account, position, params, positions, accounts, markets, funds, long_lots, keepers[0],
                    keepers[1], rec_i, rec_f, counts, ps)  # fmt: skip
        else:
            n = _unit_positions(account, position, pos_start, pos_count, size_lots, isolated_margin, ps)
            for j in range(n):
                p = ps[j]
                if kind == IOC_THEN_TAKEOVER:
                    send = -size_lots[p]
                    fok, partial = False, False
                else:
                    m = pos_market[p]
                    lots = size_lots[p]
                    side = 1 if lots > 0 else -1
                    mark = mark_of[m]
                    notional = abs(lots * lot_size[m]) * mark
                    k = np.searchsorted(tier_cap[m], notional)
                    drop = int(params[P_TIERS_TO_DROP])
                    if k < int(params[P_FULL_BELOW_TIER]):
                        send, fok, partial = 0, False, False
                    else:
                        target = tier_cap[m, k - drop] if k >= drop else 0.0
                        keep = int(target / mark / lot_size[m])
                        rest = abs(lots) - keep
                        send = -side * (rest if rest > 0 else 0)
                        fok, partial = params[P_FILL_OR_KILL] != 0, keep > 0
                _order_then_takeover(ts, venue, fund, account, position, p, send, fok, partial, params, positions,
                                     accounts, markets, books, makers, funds, long_lots, rec_i, rec_f, req_i, req_f,
                                     counts)  # fmt: skip
                if counts[C_ERROR]:
                    return
        if counts[C_ERROR]:
            return
        _settle_gap(venue, fund, account, position, positions, accounts, funds, bad_debt, ps, socialises, lot_size,
                    social)  # fmt: skip


liquidate_units = njit(cache=True)(_liquidate_units_py)


def _settle_gaps_py(  # type: ignore[no-untyped-def]
    venue, fund, unit_account, unit_position, positions, accounts, funds, bad_debt, ps, socialises, lot_size, social
):  # fmt: skip
    """:meth:`LiquidationEngine.settle_gap` for each unit in order (after a round's ADL): the bankrupt units whose
    remainders went to ADL, then the ADL winners."""
    for u in range(unit_account.shape[0]):
        _settle_gap(venue, fund, unit_account[u], unit_position[u], positions, accounts, funds, bad_debt, ps,
                    socialises, lot_size, social)  # fmt: skip


settle_gaps = njit(cache=True)(_settle_gaps_py)
