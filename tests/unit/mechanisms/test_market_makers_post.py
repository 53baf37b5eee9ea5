"""The compiled ladder poster equals the plain ladder posted through the book's rounding, for any quote."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.config.agents import MarketMakerConfig
from perpstress.mechanisms.market_makers import MakerState, post_ladder, quote, quote_shape
from perpstress.state.orderbook import ASK, BID, OrderBooks


@settings(max_examples=60, deadline=None)
@given(
    fair=st.floats(0.01, 200_000.0),
    vol=st.floats(1e-6, 1e-2),
    inventory=st.floats(-2e6, 2e6),
    appetite=st.floats(0.05, 1.0),
    ramp=st.floats(0.01, 1.0),
    levels=st.integers(1, 40),
)
def test_compiled_post_equals_the_plain_ladder(fair, vol, inventory, appetite, ramp, levels) -> None:  # type: ignore[no-untyped-def]
    cfg = MarketMakerConfig(capital_usd=1e6, depth_usd=5e5, inventory_limit_usd=1e6, loss_limit_usd=1e5,
                            levels=levels, inventory_skew_bps=30.0)  # fmt: skip
    state = MakerState(active=True, ramp=ramp, peak_equity=1e6)
    tick, lot = fair * 1e-5, 1e-3
    plain, fast = (OrderBooks(1, 128, np.array([tick]), np.array([lot])) for _ in range(2))
    ladder = quote(cfg, state, fair, vol, inventory, appetite)
    plain.replace_ladder(0, BID, 7, ladder.bid_price, ladder.bid_size)
    plain.replace_ladder(0, ASK, 7, ladder.ask_price, ladder.ask_size)
    q = quote_shape(cfg, state, fair, vol, inventory, appetite)
    assert q is not None
    post_ladder(fast.price, fast.lots, fast.owner, fast.count, 0, 7, q.mid, q.half, q.spacing, q.levels, q.side_usd,
                q.bid_scale, q.ask_scale, tick, lot)  # fmt: skip
    for arr in ("price", "lots", "owner", "count"):
        np.testing.assert_array_equal(getattr(plain, arr), getattr(fast, arr))
