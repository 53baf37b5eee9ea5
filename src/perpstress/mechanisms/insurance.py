"""Insurance funds and backstop vaults: balances, taken-over inventory, payment limits, ADL triggers.

Rules modelled (shared/reference/exchange-rules.md section 5):

- Inflows: liquidation (clearance) fees and surplus from liquidations closed better than the bankruptcy price.
- Takeover: the fund takes a bankrupt position over at its bankruptcy price and unwinds it through the book later;
  its equity is its balance plus the inventory's unrealised PnL at mark. Binance refuses a takeover that would
  make the fund's net notional in a market exceed ``max_takeover_notional_fraction`` of its balance; ADL follows.
- Payments: the fund pays the gap when a liquidation closes worse than bankruptcy, up to its balance and (Drift)
  up to a per-market claim cap. A fund without equity takes nothing over (ADL follows); a fund whose equity falls
  below zero is brought back to zero in the funds phase, the deficit recorded as bad debt
  (:mod:`~perpstress.mechanisms.fund_unwind`).
- ADL triggers: the fund cannot cover, or (OKX, Bybit pools) its balance has fallen ``adl_drawdown_fraction``
  below its peak within the last ``drawdown_window_hours``.

A Hyperliquid backstop vault is the same object: it takes accounts over (positions and their remaining equity).
Left out: the gradual staking inflows of Drift's fund, governance top-ups, several funds per venue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from perpstress.state.portfolio import F64


@dataclass
class FundLimits:
    """Per-fund limits, from the venue's ``InsuranceFundConfig``."""

    max_takeover_notional_fraction: float | None = None
    adl_drawdown_fraction: float | None = None
    drawdown_window_ms: int | None = None
    per_market_claim_cap_usd: float | None = None


@dataclass
class InsuranceFunds:
    """``n_funds`` funds over ``n_markets`` markets; all amounts USD, inventory in base units (long > 0)."""

    balance: F64
    inventory: F64
    """(n_funds, n_markets) taken-over position, signed base units."""
    entry_price: F64
    """(n_funds, n_markets) entry of the inventory: the first takeover's price (see ``cost_adjustment``)."""
    claimed: F64
    """(n_funds, n_markets) paid out per market so far (for per-market claim caps)."""
    cost_adjustment: F64
    """(n_funds, n_markets) value of the inventory beyond ``inventory * (mark - entry_price)``: each add books
    ``size * (entry - price)`` here instead of re-averaging the entry (a rounded average times a large inventory
    drifts money); it is realised into the balance pro rata as the inventory is sold."""
    limits: list[FundLimits]
    start_balance: F64 = field(default_factory=lambda: np.zeros(0))
    min_equity: F64 = field(default_factory=lambda: np.zeros(0))
    _history: list[deque[tuple[int, float]]] = field(default_factory=list)

    @classmethod
    def create(cls, balances: list[float], n_markets: int, limits: list[FundLimits]) -> InsuranceFunds:
        n = len(balances)
        b = np.asarray(balances, dtype=np.float64)
        return cls(
            balance=b.copy(),
            inventory=np.zeros((n, n_markets)),
            entry_price=np.zeros((n, n_markets)),
            claimed=np.zeros((n, n_markets)),
            cost_adjustment=np.zeros((n, n_markets)),
            limits=limits,
            start_balance=b.copy(),
            min_equity=b.copy(),
            _history=[deque() for _ in range(n)],
        )

    def equity(self, fund: int, mark: F64) -> float:
        """Balance plus the inventory's unrealised PnL at ``mark``."""
        upnl = self.inventory[fund] * (mark - self.entry_price[fund]) + self.cost_adjustment[fund]
        return float(self.balance[fund] + upnl.sum())

    def deposit(self, fund: int, amount: float) -> None:
        if amount < 0:
            raise ValueError("a deposit is not negative; use pay()")
        self.balance[fund] += amount

    def payable(self, fund: int, market: int) -> float:
        """Most the fund can pay now for a loss in ``market``: its balance, within a per-market claim cap."""
        room = max(self.balance[fund], 0.0)
        cap = self.limits[fund].per_market_claim_cap_usd
        if cap is not None:
            room = min(room, max(cap - self.claimed[fund, market], 0.0))
        return float(room)

    def pay(self, fund: int, market: int, amount: float) -> float:
        """Pay up to ``amount`` for a loss in ``market``; returns what was paid (the rest is uncovered)."""
        paid = min(max(amount, 0.0), self.payable(fund, market))
        self.balance[fund] -= paid
        self.claimed[fund, market] += paid
        return paid

    def can_take_over(self, fund: int, market: int, size: float, price: float, mark: F64 | None = None) -> bool:
        """Whether taking ``size`` (signed base) at ``price`` keeps the fund within its takeover limits; a fund with
        no balance, or (given the ``mark``) no equity, takes nothing over."""
        if self.balance[fund] <= 0 or (mark is not None and self.equity(fund, mark) <= 0):
            return False
        frac = self.limits[fund].max_takeover_notional_fraction
        if frac is None:
            return True
        after = abs(self.inventory[fund, market] + size) * price
        return bool(after <= frac * self.balance[fund])

    def take_over(self, fund: int, market: int, size: float, price: float) -> None:
        """Add ``size`` (signed base) to the fund's inventory at ``price`` (the bankruptcy price)."""
        self._trade(fund, market, size, price)

    def unwind(self, fund: int, market: int, size: float, price: float) -> float:
        """The fund's inventory trades ``size`` (signed, reducing) at ``price``; returns the realised PnL."""
        return self._trade(fund, market, size, price)

    def _trade(self, fund: int, market: int, size: float, price: float) -> float:
        inv = self.inventory[fund, market]
        entry = self.entry_price[fund, market]
        realised = 0.0
        if inv == 0:
            self.entry_price[fund, market] = price
            self.inventory[fund, market] = size
            return 0.0
        if np.sign(inv) == np.sign(size):  # adding: keep the entry, book the price difference as cost adjustment
            self.cost_adjustment[fund, market] += size * (entry - price)
            self.inventory[fund, market] = inv + size
            return 0.0
        closing = min(abs(size), abs(inv)) * np.sign(size)
        share = abs(closing) / abs(inv)
        adjustment = self.cost_adjustment[fund, market] * share
        self.cost_adjustment[fund, market] -= adjustment
        realised = -closing * (price - entry) + adjustment  # closing a long (closing < 0) realises inv*(price - entry)
        self.balance[fund] += realised
        rest = inv + size
        self.inventory[fund, market] = rest
        if rest == 0:
            self.entry_price[fund, market] = 0.0
            self.balance[fund] += self.cost_adjustment[fund, market]  # rounding leftovers, if any
            self.cost_adjustment[fund, market] = 0.0
        elif np.sign(rest) != np.sign(inv):  # flipped through zero: the remainder opens at price
            self.entry_price[fund, market] = price
        return float(realised)

    def observe(self, fund: int, ts_ms: int, mark: F64) -> None:
        """Record the fund's equity at ``ts_ms`` for drawdown triggers and the minimum reported."""
        self.record_equity(fund, ts_ms, self.equity(fund, mark))

    def record_equity(self, fund: int, ts_ms: int, eq: float) -> None:
        """:meth:`observe` of an equity already computed (:meth:`equity` at the marks)."""
        self.min_equity[fund] = min(self.min_equity[fund], eq)
        window = self.limits[fund].drawdown_window_ms
        if window is None:
            return
        hist = self._history[fund]
        while hist and hist[-1][1] <= eq:  # a monotone deque keeps the window's peak at the front
            hist.pop()
        hist.append((ts_ms, eq))
        while hist[0][0] < ts_ms - window:
            hist.popleft()

    def drawdown_peak(self, fund: int) -> float:
        """The peak equity within the drawdown window (NaN without a drawdown rule or history), the one
        :meth:`drawdown_triggered` compares with."""
        if self.limits[fund].adl_drawdown_fraction is None or not self._history[fund]:
            return float("nan")
        return float(self._history[fund][0][1])

    def drawdown_triggered(self, fund: int, mark: F64) -> bool:
        """OKX/Bybit: equity has fallen the configured fraction below its peak within the window."""
        frac = self.limits[fund].adl_drawdown_fraction
        hist = self._history[fund]
        if frac is None or not hist:
            return False
        peak = hist[0][1]
        return bool(peak > 0 and self.equity(fund, mark) <= (1.0 - frac) * peak)
