"""Headline numbers: computed from summary.json, optional keys used when present, two runs compared."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from perpstress.outputs.headline import (
    CONSERVATION_TOLERANCE_USD,
    compare_headlines,
    headline_numbers,
    percent,
    usd,
)

SUMMARY: dict[str, Any] = {
    "liquidations": {
        "count": 40,
        "notional_usd": 10_000_000.0,
        "long_notional_usd": 7_500_000.0,
        "short_notional_usd": 2_500_000.0,
        "by_venue": {"binance": 6e6, "okx": 4e6},
        "by_market": {"binance:BTCUSDT": 6e6, "okx:BTC-USDT-SWAP": 4e6},
    },
    "adl": {"count": 3, "notional_usd": 1_200_000.0, "by_venue": {"okx": 1.2e6}, "by_market": {}},
    "insurance_funds": {
        "binance": {"start_usd": 1e6, "end_usd": 8e5, "min_usd": 7e5},
        "okx": {"start_usd": 5e5, "end_usd": -1e5, "min_usd": -2e5},
    },
    "bad_debt_usd": 0.0,
    "prices": {
        "binance:BTCUSDT": {"start": 100.0, "min": 85.0, "max": 101.0, "end": 90.0, "max_drawdown": -0.158},
        "okx:BTC-USDT-SWAP": {"start": 100.0, "min": 60.0, "max": 100.0, "end": 70.0, "max_drawdown": -0.4},
    },
    "invariants": {"money_conservation_max_abs_error_usd": 2e-7, "open_interest_max_imbalance": 0},
}


def by_key(summary: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {h.key: h for h in headline_numbers(summary, **kw)}


def test_headline_values_come_from_the_summary() -> None:
    h = by_key(SUMMARY)
    assert h["liquidated_usd"].value == 10_000_000.0
    assert h["liquidated_usd"].text == "$10.0M"
    assert h["liquidation_count"].value == 40
    assert h["long_share"].value == pytest.approx(0.75)
    assert h["long_share"].text == "75%"
    assert h["adl_usd"].value == 1_200_000.0
    assert "3 ADL fills" in h["adl_usd"].detail
    assert h["fund:binance"].value == 8e5
    assert h["fund:binance"].text == "$1.0M \u2192 $800.0K"
    assert h["fund:okx"].tone == "bad"  # below zero
    assert h["worst_drawdown"].value == -0.4
    assert "okx:BTC-USDT-SWAP" in h["worst_drawdown"].detail
    assert h["money_conservation_error_usd"].text == "yes"
    assert h["money_conservation_error_usd"].tone == "good"
    assert h["bad_debt_usd"].tone == "good"


def test_money_check_fails_above_a_cent_or_with_open_interest_out_of_balance() -> None:
    leaky = copy.deepcopy(SUMMARY)
    leaky["invariants"]["money_conservation_max_abs_error_usd"] = CONSERVATION_TOLERANCE_USD * 2
    assert by_key(leaky)["money_conservation_error_usd"].text == "NO"
    unbalanced = copy.deepcopy(SUMMARY)
    unbalanced["invariants"]["open_interest_max_imbalance"] = 3
    h = by_key(unbalanced)["money_conservation_error_usd"]
    assert h.tone == "bad"
    assert "off by 3 lots" in h.detail


def test_no_liquidations_gives_no_long_share() -> None:
    quiet = copy.deepcopy(SUMMARY)
    quiet["liquidations"].update(count=0, notional_usd=0.0, long_notional_usd=0.0, short_notional_usd=0.0)
    h = by_key(quiet)
    assert h["long_share"].value is None
    assert h["long_share"].text == "n/a"
    assert h["liquidated_usd"].tone == "good"


def test_optional_summary_keys_add_headlines_only_when_present() -> None:
    assert not {"hedges_broken", "transfers_delayed", "collateral_min_price", "validation_passed"} & set(
        by_key(SUMMARY)
    )
    rich = copy.deepcopy(SUMMARY)
    rich["hedges"] = {"accounts": 12, "broken": 4, "broken_notional_usd": 3e6}
    rich["transfers"] = {"count": 30, "delayed_count": 7, "max_delay_s": 410.0}
    rich["collateral"] = {
        "USDe@binance": {"min_price": 0.65, "liquidations_caused": 9},
        "USDe@bybit": {"min_price": 0.998, "liquidations_caused": 0},
    }
    rows = [{"title": "a", "status": "pass"}, {"title": "b", "status": "fail"}, {"title": "c", "status": "pass"},
            {"title": "d", "status": "n/a"}]  # fmt: skip
    h = by_key(rich, validation=rows)
    assert h["hedges_broken"].value == 4
    assert "of 12 hedged accounts" in h["hedges_broken"].detail
    assert h["transfers_delayed"].value == 7
    assert "410 s" in h["transfers_delayed"].detail
    assert h["collateral_min_price"].value == 0.65
    assert h["collateral_min_price"].detail.startswith("USDe@binance; 9 liquidations")
    assert h["validation_passed"].text == "2 of 4"
    assert h["validation_passed"].tone == "bad"


def test_compare_pairs_by_key_and_judges_direction() -> None:
    b = copy.deepcopy(SUMMARY)
    b["liquidations"]["notional_usd"] = 5_000_000.0
    b["insurance_funds"]["okx"]["end_usd"] = 2e5
    del b["insurance_funds"]["binance"]
    b["insurance_funds"]["bybit"] = {"start_usd": 1e6, "end_usd": 1e6, "min_usd": 1e6}
    diffs = {d.key: d for d in compare_headlines(headline_numbers(SUMMARY), headline_numbers(b))}
    liq = diffs["liquidated_usd"]
    assert liq.change == "-$5.0M (-50%)"
    assert liq.verdict == "good"  # fewer liquidations in B
    okx = diffs["fund:okx"]
    assert okx.verdict == "good"  # fund ends higher in B
    assert okx.change.startswith("+$300.0K")
    assert diffs["fund:binance"].text_b == "-"
    assert diffs["fund:bybit"].text_a == "-"
    assert diffs["adl_usd"].change == "same"
    assert list(diffs)[-1] == "fund:bybit"  # keys only B has come last


def test_money_formats() -> None:
    assert usd(1_234_567_890) == "$1.2B"
    assert usd(-8_619_537.6) == "-$8.6M"
    assert usd(950) == "$950"
    assert usd(float("nan")) == "n/a"
    assert percent(-0.3938) == "-39.4%"


def test_headlines_of_a_real_run(quickstart_run: Path) -> None:
    summary = json.loads((quickstart_run / "summary.json").read_text())
    h = by_key(summary)
    assert h["liquidated_usd"].value == summary["liquidations"]["notional_usd"]
    assert {k for k in h if k.startswith("fund:")} == {f"fund:{v}" for v in summary["insurance_funds"]}
    worst = min(summary["prices"].values(), key=lambda p: p["max_drawdown"])
    assert h["worst_drawdown"].value == worst["max_drawdown"]
