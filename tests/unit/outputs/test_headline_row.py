"""The flat headline row: computed from summary.json alone, optional sections used when present, never required."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from perpstress.outputs.headline_row import headline

MINIMAL: dict[str, Any] = {
    "liquidations": {
        "count": 4,
        "notional_usd": 1_000.0,
        "long_notional_usd": 750.0,
        "short_notional_usd": 250.0,
        "by_venue": {"binance": 600.0, "okx": 400.0},
    },
    "adl": {"count": 2, "notional_usd": 300.0, "by_venue": {"okx": 300.0}},
    "insurance_funds": {
        "binance": {"start_usd": 100.0, "end_usd": 90.0, "min_usd": 80.0},
        "okx": {"start_usd": 50.0, "end_usd": -10.0, "min_usd": -20.0},
    },
    "bad_debt_usd": 5.0,
}
"""The sections every engine version has written; nothing else."""


def test_the_minimal_summary_gives_the_required_numbers_only() -> None:
    h = headline(MINIMAL)
    assert h["liquidated_usd"] == 1_000.0
    assert h["liquidations_count"] == 4
    assert h["long_share"] == 0.75
    assert h["adl_usd"] == 300.0
    assert h["bad_debt_usd"] == 5.0
    assert h["fund_drawdown_usd_binance"] == 20.0
    assert h["fund_drawdown_usd_okx"] == 70.0  # a fund that goes below zero counts in full
    assert h["fund_drawdown_usd"] == 90.0
    assert h["adl_usd_binance"] == 0.0  # a venue without ADL has a zero, not a missing column
    assert h["liquidated_usd_okx"] == 400.0
    for optional in (
        "worst_price_drawdown",
        "money_error_usd",
        "hedges_broken",
        "transfers_count",
        "collateral_min_price",
    ):
        assert optional not in h


def test_nothing_liquidated_has_no_long_share() -> None:
    quiet = copy.deepcopy(MINIMAL)
    quiet["liquidations"].update(count=0, notional_usd=0.0, long_notional_usd=0.0, short_notional_usd=0.0)
    assert headline(quiet)["long_share"] is None


def test_optional_sections_add_their_columns() -> None:
    full = copy.deepcopy(MINIMAL)
    full["prices"] = {
        "binance:BTCUSDT": {"max_drawdown": -0.12},
        "okx:HIVE-USDT-SWAP": {"max_drawdown": -0.55},
    }
    full["invariants"] = {"money_conservation_max_abs_error_usd": 3e-7, "open_interest_max_imbalance": 0}
    full["hedges"] = {"accounts": 40, "broken": 12, "broken_notional_usd": 1.5e7}
    full["transfers"] = {"count": 17, "delayed_count": 13, "max_delay_s": 648.0}
    full["collateral"] = {
        "USDE@binance": {"min_price": 0.6534, "liquidations_caused": 132},
        "USDE@bybit": {"min_price": 0.999, "liquidations_caused": 0},
    }
    h = headline(full)
    assert (h["worst_drawdown_market"], h["worst_price_drawdown"]) == ("okx:HIVE-USDT-SWAP", -0.55)
    assert h["money_error_usd"] == 3e-7
    assert h["oi_imbalance_lots"] == 0
    assert (h["hedges_broken"], h["hedges_broken_notional_usd"]) == (12, 1.5e7)
    assert (h["transfers_count"], h["transfers_delayed_count"], h["transfers_max_delay_s"]) == (17, 13, 648.0)
    assert (h["collateral_min_price"], h["collateral_min_price_pair"]) == (0.6534, "USDE@binance")
    assert h["collateral_liquidations_caused"] == 132
    full["by_venue"] = {"binance": {"adl_count": 4, "bad_debt_usd": 0.0}, "okx": {"adl_count": 0, "bad_debt_usd": 2.5}}
    full["hedges"] = {"broken": {"count": 5, "notional_usd": 1e6}}  # broken hedges given as a table
    h = headline(full)
    assert (h["adl_count_binance"], h["bad_debt_usd_binance"], h["adl_count_okx"], h["bad_debt_usd_okx"]) == (
        4,
        0.0,
        0,
        2.5,
    )
    assert (h["hedges_broken"], h["hedges_broken_notional_usd"]) == (5, 1e6)


def test_a_missing_required_section_is_a_key_error_naming_it() -> None:
    broken = {k: v for k, v in MINIMAL.items() if k != "adl"}
    with pytest.raises(KeyError, match="adl"):
        headline(broken)
