"""What arbitrageurs and cross-venue hedgers need from the world, as a small protocol the engine implements."""

from __future__ import annotations

from typing import Protocol


class TradingWorld(Protocol):
    @property
    def now_ms(self) -> int:
        """Milliseconds since the epoch now."""
        ...

    def quotes(self, market: int) -> tuple[float, float]:
        """Best bid and ask of a market's book (NaN for an empty side)."""
        ...

    def taker_fee_rate(self, market: int) -> float: ...

    def lot_size(self, market: int) -> float: ...

    def trade(self, account: int, market: int, lots: int, limit_price: float) -> tuple[int, float]:
        """A taker order (IOC at ``limit_price``); returns filled lots (signed) and their average price."""
        ...

    def position_lots(self, account: int) -> int: ...

    def equity(self, account: int) -> float:
        """Margin balance of the account (wallet, collateral and unrealised PnL), USD."""
        ...

    def maintenance(self, account: int) -> float: ...

    def notional(self, account: int) -> float: ...

    def wallet(self, account: int) -> float: ...

    def in_transit_to(self, account: int) -> float:
        """USD queued or travelling towards the account."""
        ...

    def transfer(self, owner: int, src_account: int, dst_account: int, usd: float, purpose: str) -> None:
        """Debit ``usd`` from the source now; it lands in the destination when the rail delivers it."""
        ...
