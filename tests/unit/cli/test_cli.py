"""The ``perpstress`` command line, run as a user runs it: a subprocess, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

EXAMPLE = ["--venue", "binance", "--symbol", "BTCUSDT", "--side", "long", "--size", "1.5", "--entry", "100000"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_margin_json_matches_the_issue_example() -> None:
    out = cli("margin", *EXAMPLE, "--collateral", "12000", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["liquidation_price"] == pytest.approx(92_369.48, abs=0.01)
    assert data["bankruptcy_price"] == pytest.approx(92_000.0)
    assert data["maintenance_margin"] == pytest.approx(600.0)
    assert data["tier"] == 1


def test_margin_table_prints_every_figure() -> None:
    out = cli("margin", *EXAMPLE, "--collateral", "12000", "--leverage", "20")
    assert out.returncode == 0, out.stderr
    for text in ("92,369.48", "92,000.00", "600.00", "initial margin at 20x", "7,500.00"):
        assert text in out.stdout


def test_cross_mode_counts_the_other_positions() -> None:
    alone = json.loads(cli("margin", *EXAMPLE, "--collateral", "12000", "--mode", "cross", "--json").stdout)
    crowded = json.loads(
        cli(
            "margin", *EXAMPLE, "--collateral", "12000", "--mode", "cross", "--other-maintenance", "3000", "--json"
        ).stdout
    )
    # 3,000 of other maintenance margin is 2,000 per BTC less cushion, divided by (1 - MMR).
    assert crowded["liquidation_price"] - alone["liquidation_price"] == pytest.approx(3000 / 1.5 / 0.996, rel=1e-9)


def test_all_venues_compare_one_position() -> None:
    args = "margin --venue all --symbol BTCUSDT --side short --size 2 --entry 100000 --collateral 10000 --json"
    out = cli(*args.split())
    assert out.returncode == 0, out.stderr
    rows = {r["venue"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"binance", "bybit", "okx", "hyperliquid", "dydx", "drift", "bitget"}
    assert rows["hyperliquid"]["symbol"] == "BTC"
    assert rows["dydx"]["price_reference"] == "oracle"
    # A short is liquidated above entry and below its bankruptcy price on every venue.
    assert all(100_000 < r["liquidation_price"] < r["bankruptcy_price"] for r in rows.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--venue", "kraken", "--symbol", "BTCUSDT"], "unknown venue 'kraken'"),
        (["--venue", "binance", "--symbol", "NOPE"], "unknown symbol on binance 'NOPE'"),
        (["--venue", "binance", "--symbol", "BTCUSDT", "--size", "-1"], "--size must be a positive"),
        (["--venue", "binance", "--symbol", "BTCUSDT", "--collateral", "-5"], "--collateral must be zero or more"),
        (["--venue", "binance", "--symbol", "BTCUSDT", "--leverage", "500"], "above the 150x maximum"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    base = {"--side": "long", "--size": "1", "--entry": "100000", "--collateral": "1000"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv]
    out = cli("margin", *flat)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("command", [[], ["margin"], ["schema"], ["presets"], ["scenarios"], ["check"]])
def test_help_reads(command: list[str]) -> None:
    out = cli(*command, "--help")
    assert out.returncode == 0
    assert "Usage: perpstress" in out.stdout
    if command == ["margin"]:
        for option in ("--venue", "--collateral", "--mode", "--leverage", "--json"):
            assert option in out.stdout


def test_schema_is_json_schema_of_the_scenario(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    assert cli("schema", "--out", str(target)).returncode == 0
    schema = json.loads(target.read_text())
    assert schema["title"] == "perpstress scenario"
    assert "venues" in schema["properties"]
    assert "VenueConfig" in schema["$defs"]
    assert "required" not in schema["$defs"]["VenueConfig"]  # a preset may supply every venue field


def test_check_reports_file_field_and_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\nstart = 2025-10-10T20:30:00Z\nduration_s = 60\n'
        '[venues.binance]\npreset = "binance"\ninsurance_fund.initial_usd = -1\n'
    )
    out = cli("check", str(bad))
    assert out.returncode == 2
    assert "bad.toml: venues.binance.insurance_fund.initial_usd:" in out.stderr
    assert "greater than or equal to 0" in out.stderr


def test_check_writes_a_resolved_scenario_that_loads_again(tmp_path: Path) -> None:
    target = tmp_path / "resolved.toml"
    out = cli("check", "quickstart", "--resolved", str(target))
    assert out.returncode == 0, out.stderr
    again = cli("check", str(target))
    assert again.returncode == 0, again.stderr
    # The same configuration hash: nothing was lost writing every preset value out.
    assert out.stdout.split("config hash ")[1].split()[0] == again.stdout.split("config hash ")[1].split()[0]


def test_presets_show_sources() -> None:
    out = cli("presets", "hyperliquid")
    assert out.returncode == 0, out.stderr
    assert "liquidation.backstop_mm_fraction" in out.stdout
    assert "official" in out.stdout
    assert "UNCONFIRMED" in out.stdout


def test_run_with_profile_prints_the_time_of_every_phase(
    make_tiny: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tomli_w.dumps(make_tiny(duration_s=20)))
    out = cli("run", str(scenario), "--out", str(tmp_path / "run"), "--profile")
    assert out.returncode == 0, out.stderr
    table = out.stdout.split("wall-clock time per phase")[1]
    timing = json.loads((tmp_path / "run" / "summary.json").read_text())["timing"]
    rows = [line.strip("│┃ ").split("│")[0].strip() for line in table.splitlines() if line.startswith("│")]
    phases = list(timing["phases"])
    assert "liquidation" in phases  # the summary's phases are the kernel's (tests/scenario/test_engine_parts.py)
    assert [r for r in rows if r in phases] == phases  # every phase, in the kernel's order
    assert rows[rows.index("liquidation") + 1] == "cascade"  # the cascade right under liquidation
    assert "│   cascade" in table  # indented
    assert rows[-1] == "step total"
    assert table.splitlines()[0].strip().endswith(f"{timing['steps']:,} steps")
    plain = cli("run", str(scenario), "--out", str(tmp_path / "again"))
    assert plain.returncode == 0, plain.stderr
    assert "wall-clock time per phase" not in plain.stdout


def test_check_every_step_recounts_the_invariants_every_step(
    make_tiny: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERPSTRESS_CHECK_EVERY_STEP")  # the suite's own every-step mode (tests/conftest.py)
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tomli_w.dumps(make_tiny(duration_s=20)))
    every = cli("run", str(scenario), "--out", str(tmp_path / "every"), "--check-every-step")
    assert every.returncode == 0, every.stderr
    default = cli("run", str(scenario), "--out", str(tmp_path / "default"))
    assert default.returncode == 0, default.stderr
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("every", "default")]
    assert summaries[0]["invariants"]["recounts"] == 20  # every step
    assert summaries[1]["invariants"]["recounts"] == 2  # the first step (a 600 s cadence) and the last
    assert summaries[0]["invariants"]["open_interest_max_imbalance"] == 0
    # checking more often changes no outcome
    assert summaries[0]["liquidations"] == summaries[1]["liquidations"]
