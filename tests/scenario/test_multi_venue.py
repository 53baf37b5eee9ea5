"""Many venues: collateral depegs on one venue's own book, hedges across venues over a rail, arbitrage bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perpstress.config.scenario import Scenario
from perpstress.engine.simulation import Simulation
from perpstress.outputs.run import run_scenario


@pytest.fixture(scope="module")
def demo() -> Scenario:
    return Scenario.load("two-venue-demo").with_(duration_s=480)


def test_a_depeg_on_one_venues_book_liquidates_there_only(demo: Scenario) -> None:
    own_book = run_scenario(demo).summary
    usde_binance = own_book["collateral"]["USDE@binance"]
    usde_bybit = own_book["collateral"]["USDE@bybit"]
    assert usde_binance["min_price"] < 0.97  # Binance's own USDE/USDT book depegged...
    assert usde_bybit["min_price"] == pytest.approx(1.0)  # ...while the external index held
    assert usde_binance["liquidations_caused"] > 0
    assert usde_bybit["liquidations_caused"] == 0
    assert own_book["invariants"]["money_conservation_max_abs_error_usd"] < 1e-5
    assert own_book["invariants"]["collateral_units_max_abs_error"] < 1e-6
    assert own_book["invariants"]["open_interest_max_imbalance"] == 0

    fixed = demo.with_(venues__binance__collateral__USDE__method="conversion_rate")  # Binance after 2025-10-14
    after = run_scenario(fixed).summary
    assert after["collateral"]["USDE@binance"]["min_price"] == pytest.approx(1.0)
    assert after["collateral"]["USDE@binance"]["liquidations_caused"] == 0
    assert after["collateral"]["USDE@bybit"]["liquidations_caused"] == 0


def hedged_scenario(latency_s: float) -> dict[str, Any]:
    """Crowd all long on Binance with a near-empty fund, so bankruptcies go to ADL against the only winning shorts:
    hedged owners short on Binance and long on Bybit. Owner book A (one owner, 20x short, 2x long) ranks first in
    the queue and asks to move margin from its long leg; book B (8x, never tops up) ranks below A until A's top-up
    lands, and above it after."""
    calm_book = {"capital_usd": 2e9, "inventory_limit_usd": 1e9, "loss_limit_usd": 1e9}
    return {
        "name": "hedge-over-a-rail",
        "seed": 3,
        "start": "2025-10-10T21:00:00Z",
        "duration_s": 420,
        "venues": {
            "binance": {"preset": "binance", "symbols": ["BTCUSDT"], "insurance_fund": {"initial_usd": 1_000.0}},
            "bybit": {"preset": "bybit", "symbols": ["BTCUSDT"]},
        },
        "shock": {
            "kind": "jump_regime",
            "calm_vol": 0.0001,
            "at_s": 30,
            "jump": -0.03,
            "stress_vol": 0.0005,
            "half_life_s": 120,
            "drift": -0.07,
            "drift_s": 240,
            "assets": {"BTC": {"start_price": 100_000.0}},
        },
        "crowd": {
            "leverage_median": 20.0,
            "leverage_sigma": 0.05,
            "isolated_share": 0.0,
            "stop_share": 0.0,
            "topup_share": 0.0,
            "entry_dispersion": 0.001,
            "markets": {"binance:BTCUSDT": {"notional_usd": 20e6, "long_share": 1.0, "accounts": 200}},
        },
        "makers": {
            "per_market": 2,
            "capital_usd": 50e6,
            "depth_usd": 300_000.0,
            "inventory_limit_usd": 100e6,
            "loss_limit_usd": 50e6,
            "levels": 10,
            "markets": {"binance:BTCUSDT": calm_book, "bybit:BTCUSDT": calm_book},
        },
        "takers": {"rate_per_s": 0.0},
        "hedgers": [
            {
                "long": "bybit:BTCUSDT",
                "short": "binance:BTCUSDT",
                "owners": 1,
                "notional_usd": 1e6,
                "short_leverage": 20.0,
                "long_leverage": 2.0,
                "topup_fraction": 1.0,
                "adl_quantile": 0.5,
                "topup_margin_ratio": 0.9,
                "notional_sigma": 0.0,
                "check_interval_s": 1.0,
            },
            {
                "long": "bybit:BTCUSDT",
                "short": "binance:BTCUSDT",
                "owners": 20,
                "notional_usd": 60e6,
                "leverage": 8.0,
                "adl_quantile": None,
                "topup_margin_ratio": 0.99,
                "notional_sigma": 0.0,
            },
        ],
        "rails": {"default": {"latency_median_s": latency_s, "latency_sigma": 0.0, "congestion": 0.0}},
    }


def run_hedged(latency_s: float) -> Simulation:
    sim = Simulation(Scenario.from_dict(hedged_scenario(latency_s)))
    sim.run()
    return sim


def test_a_hedge_is_adld_while_its_topup_is_in_flight_and_survives_with_a_fast_rail() -> None:
    slow = run_hedged(3_000.0)
    a_short = int(slow.hedges.short_account[0])
    assert slow.rails.record.src_account[0] == int(slow.hedges.long_account[0])  # A asked for margin first
    assert a_short in slow.adl.record.account  # ...and was deleveraged before it landed
    rec = slow.hedges.record
    rows = [i for i, a in enumerate(rec.account) if a == a_short]
    assert rows
    assert all(rec.kind[i] == "adl" for i in rows)
    assert all(rec.transfer_in_flight_usd[i] > 0 for i in rows)
    assert max(rec.unhedged_notional_usd[i] for i in rows) > 0
    summary = run_scenario(Scenario.from_dict(hedged_scenario(3_000.0))).summary
    assert summary["hedges"]["broken"] >= 1
    assert summary["transfers"]["delayed_count"] == 0  # slow, but as slow as the route always is

    fast = run_hedged(1.0)
    assert len(fast.adl.record.account) > 0  # ADL still ran...
    assert int(fast.hedges.short_account[0]) not in fast.adl.record.account  # ...but the topped-up leg survived
    assert fast.rails.record.landed_ms[0] >= 0
    assert int(fast.hedges.owner[0]) not in fast.hedges.broken_notional


def test_money_in_transit_is_counted() -> None:
    sim = run_hedged(3_000.0)
    assert sim.rails.in_transit_usd > 0  # the top-up never landed within the run...
    assert sim.max_value_error < 1e-6  # ...and the money check, which counts it, still balances
    assert abs(sim.total_value() - sim.value_start) < 1e-6


CALM = {
    "kind": "jump_regime",
    "calm_vol": 0.0001,
    "at_s": 10_000,  # no news within the run
    "jump": 0.0,
    "stress_vol": 0.0001,
    "half_life_s": 60,
    "assets": {"BTC": {"start_price": 100_000.0}},
}
SKEWING_MAKERS = {
    "per_market": 2,
    "capital_usd": 50e6,
    "depth_usd": 1e6,
    "inventory_limit_usd": 3e6,
    "loss_limit_usd": 10e6,
    "levels": 15,
    "inventory_skew_bps": 60.0,  # one-sided flow moves their quotes, so a basis opens
}


def arbitrage_scenario(capital_usd: float) -> dict[str, Any]:
    """Calm: perpetual buyers on Binance only push its perp over spot; a basis trader sells perp and buys spot."""
    return {
        "name": "basis",
        "seed": 5,
        "start": "2025-10-10T12:00:00Z",
        "duration_s": 300,
        "venues": {"binance": {"preset": "binance", "symbols": ["BTCUSDT"], "spot_symbols": ["BTC/USDT"]}},
        "shock": CALM,
        "makers": SKEWING_MAKERS,
        "takers": {
            "rate_per_s": 0.0,
            "markets": {"binance:BTCUSDT": {"rate_per_s": 2.0, "median_usd": 100_000.0, "buy_bias": 0.45}},
        },
        "arbitrage": {
            "basis": [
                {
                    "perpetual": "binance:BTCUSDT",
                    "spot": "binance:BTC/USDT",
                    "capital_usd": capital_usd,
                    "clip_usd": 2_000_000.0,
                    "max_leverage": 3.0,
                }
            ]
        },
    }


BAND = 2 * 0.0005 + 2e-4
"""Both legs' Binance taker fees and the trader's threshold."""


def basis_gap(capital_usd: float | None) -> np.ndarray:
    """Perpetual best bid over spot best ask, less one, each step after the first minute."""
    data = arbitrage_scenario(capital_usd or 1.0)
    if capital_usd is None:
        data["arbitrage"] = {}
    ts = run_scenario(Scenario.from_dict(data)).tables.timeseries
    return np.asarray(ts["best_bid"][60:, 0] / ts["best_ask"][60:, 1] - 1)


def test_arbitrage_holds_the_basis_in_its_band_until_capital_binds() -> None:
    free = basis_gap(None)
    assert np.nanmedian(free) > BAND  # the one-sided flow alone opens the basis beyond the band
    ample = basis_gap(50e6)
    assert np.nanpercentile(ample, 95) <= BAND  # a capitalised basis trader holds it inside
    starved = basis_gap(50_000.0)
    assert np.nanmedian(starved) > BAND  # one that runs out of capital does not


def cross_venue_scenario(rail: dict[str, Any]) -> dict[str, Any]:
    """Calm: buyers on Binance's perpetual and sellers on Bybit's open a gap; a cross-venue trader with little
    capital on Binance and plenty on Bybit sells Binance and buys Bybit, moving capital to Binance over the rail."""
    flow = {"rate_per_s": 2.0, "median_usd": 100_000.0}
    return {
        "name": "cross-venue",
        "seed": 8,
        "start": "2025-10-10T12:00:00Z",
        "duration_s": 400,
        "venues": {
            "binance": {"preset": "binance", "symbols": ["BTCUSDT"]},
            "bybit": {"preset": "bybit", "symbols": ["BTCUSDT"]},
        },
        "shock": CALM,
        "makers": SKEWING_MAKERS,
        "takers": {
            "rate_per_s": 0.0,
            "markets": {"binance:BTCUSDT": {**flow, "buy_bias": 0.45}, "bybit:BTCUSDT": {**flow, "buy_bias": -0.45}},
        },
        "arbitrage": {
            "cross_venue": [
                {
                    "legs": ["binance:BTCUSDT", "bybit:BTCUSDT"],
                    "capital_usd": 10e6,
                    "capital_split": [0.02, 1.0],
                    "clip_usd": 1_000_000.0,
                    "max_leverage": 5.0,
                }
            ]
        },
        "rails": {"default": rail},
    }


def cross_gap(rail: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    out = run_scenario(Scenario.from_dict(cross_venue_scenario(rail)))
    ts = out.tables.timeseries
    return np.asarray(ts["best_bid"][120:, 0] / ts["best_ask"][120:, 1] - 1), out.summary


def test_cross_venue_arbitrage_breaks_when_its_rail_binds() -> None:
    band = 0.0005 + 0.00055 + 2e-4  # Binance and Bybit taker fees and the threshold
    fast, fast_summary = cross_gap({"latency_median_s": 2.0, "latency_sigma": 0.0, "congestion": 0.0})
    assert fast_summary["transfers"]["landed"] >= 1
    assert np.nanpercentile(fast, 95) <= band  # capital arrives where the trade needs it
    halted, halted_summary = cross_gap(
        {"latency_median_s": 2.0, "disruptions": [{"from_s": 0, "to_s": 10_000, "halted": True}]}
    )
    assert halted_summary["transfers"]["landed"] == 0
    assert np.nanmedian(halted) > band  # the same trader, stuck on the small side, lets the gap open
