"""Market makers widen, thin, withdraw and return by their stated rules."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from perpstress.config.agents import MarketMakerConfig
from perpstress.mechanisms.market_makers import MakerState, quote, quote_shape, settle, skew_lots, update_state

CFG = MarketMakerConfig(capital_usd=5e6, depth_usd=1e6, inventory_limit_usd=2e6, loss_limit_usd=5e5)
CALM = CFG.vol_ref


def depth(ladder, side: str) -> float:
    price, size = (ladder.bid_price, ladder.bid_size) if side == "bid" else (ladder.ask_price, ladder.ask_size)
    return float((price * size).sum())


def test_calm_ladder_holds_the_configured_depth_around_fair() -> None:
    lad = quote(CFG, MakerState(), 100.0, CALM, 0.0, 1.0)
    assert depth(lad, "bid") == pytest.approx(1e6)
    assert depth(lad, "ask") == pytest.approx(1e6)
    assert lad.bid_price[0] == pytest.approx(100.0 * (1 - 1e-4))
    assert lad.ask_price[0] == pytest.approx(100.0 * (1 + 1e-4))
    assert np.all(np.diff(lad.bid_price) < 0)
    assert np.all(np.diff(lad.ask_price) > 0)


def test_volatility_widens_and_thins() -> None:
    calm = quote(CFG, MakerState(), 100.0, CALM, 0.0, 1.0)
    wild = quote(CFG, MakerState(), 100.0, 4 * CALM, 0.0, 1.0)
    assert wild.ask_price[0] - 100 == pytest.approx(4 * (calm.ask_price[0] - 100))
    assert depth(wild, "ask") == pytest.approx(depth(calm, "ask") / 4)


def test_inventory_pulls_the_side_that_adds_to_it() -> None:
    long_half = quote(CFG, MakerState(), 100.0, CALM, 1e6, 1.0)
    assert depth(long_half, "bid") == pytest.approx(0.5e6)  # halfway to the limit: half the bids
    assert depth(long_half, "ask") == pytest.approx(1e6)  # selling reduces inventory: kept
    at_limit = quote(CFG, MakerState(), 100.0, CALM, 2e6, 1.0)
    assert depth(at_limit, "bid") == 0.0
    assert at_limit.ask_price[0] < quote(CFG, MakerState(), 100.0, CALM, 0.0, 1.0).ask_price[0]  # skewed down


def test_the_skew_of_one_fill_fades_to_its_permanent_share_with_the_half_life() -> None:
    cfg = CFG.model_copy(
        update={"inventory_skew_bps": 100.0, "inventory_skew_permanent": 0.7, "inventory_skew_half_life_s": 60.0}
    )
    lots, price = 10_000.0, 100.0  # taken on once, at t = 0: $1M, half the limit

    def centre(t: int) -> float:
        laid = 0.0
        for _ in range(t):
            laid = settle(cfg, laid, lots, 1.0)
        shape = quote_shape(cfg, MakerState(), price, CALM, lots * price, 1.0, skew_lots(cfg, laid, lots) * price)
        assert shape is not None
        return shape.mid / price - 1.0

    full = -0.5 * 100e-4  # half the limit: half the skew at the limit
    assert centre(0) == pytest.approx(full)  # nothing laid off yet: the whole inventory skews
    assert centre(60) == pytest.approx(full * (0.7 + 0.3 * 0.5))  # one half-life: half the transient part left
    assert centre(120) == pytest.approx(full * (0.7 + 0.3 * 0.25))
    assert centre(3600) == pytest.approx(full * 0.7, rel=1e-6)  # only the permanent share stays
    held = quote(cfg, MakerState(), price, CALM, lots * price, 1.0, 0.0)  # all laid off, nothing permanent
    assert (held.bid_price[0], held.ask_price[0]) == pytest.approx((price * (1 - 1e-4), price * (1 + 1e-4)))
    assert depth(held, "bid") == pytest.approx(0.5e6)  # the sides' limits still read the whole inventory


def test_a_permanent_skew_follows_the_whole_inventory_whatever_was_laid_off() -> None:
    assert skew_lots(CFG, 123.0, 500.0) == 500.0
    assert settle(CFG, 0.0, 500.0, 300.0) == pytest.approx(250.0)  # the default half-life is 300 s


def test_appetite_scales_size() -> None:
    assert depth(quote(CFG, MakerState(), 100.0, CALM, 0.0, 0.2), "ask") == pytest.approx(0.2e6)


EQUITY = 5e6
"""A maker's equity at its capital: nothing lost."""


@pytest.mark.parametrize(
    ("vol", "equity", "adl"),
    [(9 * CALM, EQUITY, 0.0), (CALM, EQUITY - 5e5, 0.0), (CALM, EQUITY, 0.6)],
    ids=["volatility", "loss", "adl-exposure"],
)
def test_withdraws_past_each_threshold(vol: float, equity: float, adl: float) -> None:
    state = update_state(CFG, MakerState(peak_equity=EQUITY), vol, equity, adl, 1.0)
    assert not state.active
    assert depth(quote(CFG, state, 100.0, CALM, 0.0, 1.0), "bid") == 0.0


def test_returns_only_when_calm_and_ramps_back() -> None:
    out = update_state(CFG, MakerState(peak_equity=EQUITY), 9 * CALM, EQUITY, 0.0, 1.0)
    still = update_state(CFG, out, 5 * CALM, EQUITY, 0.0, 1.0)  # below withdrawal, above the return level
    assert not still.active
    back = update_state(CFG, still, 2 * CALM, EQUITY, 0.0, 1.0)
    assert back.active
    assert back.ramp == 0.0
    state = back
    for _ in range(300):  # one half-life
        state = update_state(CFG, state, CALM, EQUITY, 0.0, 1.0)
    assert state.ramp == pytest.approx(0.5, abs=0.01)


def test_a_maker_with_nothing_left_withdraws_within_its_loss_limit_and_stays_out() -> None:
    """Back from a withdrawal with a new loss budget (its limit, 5e5) larger than the equity it has left (3e5), a
    maker that loses the rest withdraws (its drawdown, 3e5, still inside the limit) and, with nothing to lose,
    does not come back however calm the market."""
    low = 3e5
    out = update_state(CFG, MakerState(peak_equity=low), 9 * CALM, low, 0.0, 1.0)
    back = update_state(CFG, out, CALM, low, 0.0, 1.0)
    assert back.active
    assert back.peak_equity == low
    gone = update_state(CFG, back, CALM, 0.0, 0.0, 1.0)
    assert not gone.active
    for _ in range(600):
        gone = update_state(CFG, gone, CALM, 0.0, 0.0, 1.0)
    assert not gone.active
    assert depth(quote(CFG, gone, 100.0, CALM, 0.0, 1.0), "bid") == 0.0
    steady = CFG.model_copy(update={"withdraws": False})
    assert update_state(steady, back, CALM, 0.0, 0.0, 1.0).active  # makers that never withdraw stay


def test_return_level_must_be_below_withdrawal_level() -> None:
    with pytest.raises(ValidationError, match="flicker"):
        MarketMakerConfig(capital_usd=1, depth_usd=1, inventory_limit_usd=1, loss_limit_usd=1, return_vol_multiple=9)
