"""A staking token priced off a venue's own thin book: its fall liquidates holders on that venue only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perpstress.config.scenario import Scenario
from perpstress.outputs.run import run_scenario


def staking_token_scenario() -> dict[str, Any]:
    """Binance values wBETH as 20 % its own thin WBETH/USDT book and 80 % the staking rate times ETH (its rule before
    2025-10-14); Bybit (here) values it at the staking rate only. Half of each venue's cross accounts post wBETH;
    sellers dominate the book after the news."""
    return {
        "name": "staking-token-book",
        "seed": 5,
        "start": "2025-10-10T21:00:00Z",
        "duration_s": 360,
        "venues": {
            "binance": {"preset": "binance", "symbols": ["ETHUSDT"], "spot_symbols": ["WBETH/USDT"]},
            "bybit": {
                "preset": "bybit",
                "symbols": ["ETHUSDT"],
                "collateral": {
                    "WBETH": {"method": "conversion_rate", "underlying": "ETH", "rate": 1.08, "haircut": 0.05}
                },
            },
        },
        "shock": {
            "kind": "jump_regime",
            "calm_vol": 0.0001,
            "at_s": 30,
            "jump": -0.03,
            "stress_vol": 0.0015,
            "half_life_s": 120,
            "drift": -0.04,
            "drift_s": 180,
            "assets": {"ETH": {"start_price": 4_000.0}, "WBETH": {"tracks": "ETH", "rate": 1.08}},
        },
        "crowd": {
            "leverage_median": 12.0,
            "leverage_sigma": 0.4,
            "isolated_share": 0.0,
            "entry_dispersion": 0.005,
            "collateral": {"binance": {"WBETH": 0.5}, "bybit": {"WBETH": 0.5}},
            "markets": {
                "binance:ETHUSDT": {"notional_usd": 100e6, "long_share": 0.8, "accounts": 1500},
                "bybit:ETHUSDT": {"notional_usd": 100e6, "long_share": 0.8, "accounts": 1500},
            },
        },
        "makers": {
            "per_market": 2,
            "capital_usd": 30e6,
            "depth_usd": 2e6,
            "inventory_limit_usd": 60e6,
            "loss_limit_usd": 10e6,
            "levels": 25,
            "half_spread_bps": 0.5,
            "level_spacing_bps": 4.0,
            "vol_ref": 0.00006,
            "withdraw_vol_multiple": 100.0,
            "return_vol_multiple": 30.0,
            "markets": {
                "binance:WBETH/USDT": {
                    "capital_usd": 1e6,
                    "depth_usd": 40_000.0,
                    "inventory_limit_usd": 150_000.0,
                    "loss_limit_usd": 30_000.0,
                    "spread_vol_elasticity": 1.0,
                }
            },
        },
        "takers": {
            "rate_per_s": 0.5,
            "median_usd": 10_000.0,
            "markets": {
                "binance:WBETH/USDT": {"rate_per_s": 2.0, "median_usd": 20_000.0, "sell_bias_after_shock": 0.5}
            },
        },
    }


@pytest.fixture(scope="module")
def summaries() -> tuple[dict[str, Any], dict[str, Any]]:
    before_fix = Scenario.from_dict(staking_token_scenario())
    after_fix = before_fix.with_(venues__binance__collateral__WBETH__method="conversion_rate")  # Binance's fix
    return run_scenario(before_fix).summary, run_scenario(after_fix).summary


def test_a_thin_books_fall_liquidates_its_venues_holders_only(summaries: tuple[dict[str, Any], dict[str, Any]]) -> None:
    own_book, _ = summaries
    binance, bybit = own_book["collateral"]["WBETH@binance"], own_book["collateral"]["WBETH@bybit"]
    assert binance["min_book_price"] < 0.9 * binance["min_reference_price"]  # the book fell far below ETH x rate
    assert binance["min_price"] < binance["min_reference_price"]  # ...and dragged the mixed margin price
    assert binance["min_price"] > binance["min_book_price"]  # ...by its 20 % weight only
    assert bybit["min_book_price"] is None  # no book: the staking rate alone
    assert bybit["min_price"] == pytest.approx(bybit["min_reference_price"])
    assert binance["liquidations_caused"] > 0
    assert bybit["liquidations_caused"] == 0
    assert own_book["liquidations"]["count"] > 0
    inv = own_book["invariants"]
    assert inv["money_conservation_max_abs_error_usd"] < 1e-5
    assert inv["collateral_units_max_abs_error"] < 1e-6
    assert inv["open_interest_max_imbalance"] == 0


def test_after_the_fix_the_same_fall_liquidates_nobody_for_its_collateral(
    summaries: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    own_book, fixed = summaries
    assert fixed["collateral"]["WBETH@binance"]["liquidations_caused"] == 0
    assert fixed["collateral"]["WBETH@binance"]["min_price"] == pytest.approx(
        fixed["collateral"]["WBETH@binance"]["min_reference_price"]
    )
    assert fixed["liquidations"]["count"] < own_book["liquidations"]["count"]


def test_a_stopped_holders_collateral_goes_to_cash_at_the_close() -> None:
    """A stop leaves a wBETH holder owing its USD loss against its collateral; the collateral is converted at its
    margin value at the close, so the book's fall later in the same cascade round cannot leave the closed account
    with unpaid negative equity."""
    from perpstress.engine.kernel import Clock
    from perpstress.engine.simulation import Simulation

    sim = Simulation(Scenario.from_dict(staking_token_scenario()))
    w = sim.world
    clock = Clock(step=0, ts_ms=w.scenario.ts_start_ms, step_ms=w.scenario.step_ms)
    sim.exogenous(clock)
    sim.makers(clock)
    sim.prices(clock)
    hold = w.collateral
    pair = next(i for i, p in enumerate(hold.pairs) if p.asset == "WBETH" and w.venue_names[p.venue] == "binance")
    row = int(np.flatnonzero(hold.pair == pair)[0])
    account = int(hold.account[row])
    book = hold.pairs[pair].spot_market
    assert hold.quantity[row] > 0
    external = w.ledger.external_in
    value = float(hold.value[row])
    sim.crowd_stops.stop(account, np.zeros((w.markets.n, 2), dtype=bool))
    assert w.positions.size_lots[account] == 0
    assert hold.quantity[row] == 0.0  # converted at the close
    assert w.ledger.external_in - external == pytest.approx(value)  # its margin value came in from outside
    wallet = float(w.accounts.wallet[account])
    for maker in np.unique([owner for *_, owner in w.books.rows(book)]):
        w.books.cancel_owner(int(maker))  # the book's makers withdraw and its last trade is far below ETH x rate
    w.last_trade[book] = 0.1 * hold.reference[pair]
    sim.prices.revalue_collateral()
    assert w.accounts.wallet[account] == pytest.approx(wallet)  # the fall no longer reaches it
    assert hold.price[pair] < 0.85 * hold.reference[pair]  # the other holders' collateral did fall
