"""Positions snapshots: round trips through CSV and Parquet, every rule's error naming line and field, whole-file
refusal, and the conversion into the engine's crowd arrays."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perpstress.config.scenario import Scenario
from perpstress.errors import DataError, UsageError
from perpstress.population.positions_file import (
    MAX_REPORTED,
    REQUIRED_COLUMNS,
    load_positions,
    positions_to_crowd,
    scenario_market_keys,
)

SCENARIO = Scenario.load("quickstart")  # binance BTCUSDT (lot 0.001) and HIVEUSDT (lot 1); hyperliquid BTC, DOGE
HEADER = ",".join(REQUIRED_COLUMNS)
GOOD_ROWS = [
    "binance,a1,BTCUSDT,long,1.5,116000,isolated,12000",
    "binance,a2,BTCUSDT,short,0.25,117000,cross,5000",
    "binance,a2,HIVEUSDT,long,1000,0.25,cross,5000",
    "hyperliquid,a1,BTC,long,0.01,116500,cross,200",
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "positions.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DataError) as info:
        load_positions(path, SCENARIO)
    return list(info.value.problems)


def test_good_csv_loads_every_field(tmp_path: Path) -> None:
    snap = load_positions(write_csv(tmp_path, GOOD_ROWS), SCENARIO)
    keys = scenario_market_keys(SCENARIO)
    assert snap.market_keys == tuple(keys)
    assert [keys[m] for m in snap.market] == [
        "binance:BTCUSDT",
        "binance:BTCUSDT",
        "binance:HIVEUSDT",
        "hyperliquid:BTC",
    ]
    assert snap.size_lots.tolist() == [1500, -250, 1000, 1000]
    assert snap.entry_price.tolist() == [116000.0, 117000.0, 0.25, 116500.0]
    assert snap.isolated.tolist() == [True, False, False, False]
    assert snap.collateral.tolist() == [12000.0, 5000.0, 5000.0, 200.0]
    assert snap.collateral_asset.tolist() == ["USDT", "USDT", "USDT", "USDC"]  # each market's settlement asset
    assert snap.line.tolist() == [2, 3, 4, 5]
    # (venue, account) names an account: a1 on binance and a1 on hyperliquid are two
    assert snap.accounts == (("binance", "a1"), ("binance", "a2"), ("hyperliquid", "a1"))
    assert snap.account.tolist() == [0, 1, 1, 2]
    assert snap.size.tolist() == pytest.approx([1.5, -0.25, 1000.0, 0.01])


def test_parquet_round_trip_equals_csv(tmp_path: Path) -> None:
    csv_snap = load_positions(write_csv(tmp_path, GOOD_ROWS), SCENARIO)
    cols = list(zip(*(r.split(",") for r in GOOD_ROWS), strict=True))
    table = pa.table(
        {
            name: pa.array([float(v) for v in col]) if name in ("size", "entry_price", "collateral") else list(col)
            for name, col in zip(REQUIRED_COLUMNS, cols, strict=True)
        }
    )
    path = tmp_path / "positions.parquet"
    pq.write_table(table, path)
    pq_snap = load_positions(path, SCENARIO)
    for name in ("account", "market", "size_lots", "entry_price", "isolated", "collateral", "collateral_asset"):
        assert np.array_equal(getattr(pq_snap, name), getattr(csv_snap, name)), name
    assert pq_snap.accounts == csv_snap.accounts
    assert pq_snap.line.tolist() == [1, 2, 3, 4]  # Parquet has no lines: 1-based data rows


def test_summary_totals(tmp_path: Path) -> None:
    s = load_positions(write_csv(tmp_path, GOOD_ROWS), SCENARIO).summary()
    assert s["accounts"] == 3
    assert s["positions"] == 4
    assert s["notional_usd"] == pytest.approx(1.5 * 116000 + 0.25 * 117000 + 1000 * 0.25 + 0.01 * 116500)
    btc = s["by_market"]["binance:BTCUSDT"]
    assert btc["long_share"] == pytest.approx(174000 / (174000 + 29250))
    assert s["by_venue"]["binance"]["accounts"] == 2
    assert s["by_venue"]["hyperliquid"]["long_share"] == 1.0


def test_positions_to_crowd_splits_a_cross_wallet_by_notional(tmp_path: Path) -> None:
    snap = load_positions(write_csv(tmp_path, GOOD_ROWS), SCENARIO)
    crowd = positions_to_crowd(snap)
    assert crowd.market.dtype == np.int32
    assert crowd.size_lots.tolist() == snap.size_lots.tolist()
    assert crowd.margin[0] == 12000.0  # isolated: its own margin
    a2 = np.array([0.25 * 117000, 1000 * 0.25])
    assert crowd.margin[1:3].tolist() == pytest.approx((5000 * a2 / a2.sum()).tolist())
    assert math.fsum(crowd.margin[1:3]) == pytest.approx(5000.0, rel=1e-15)
    assert crowd.margin[3] == 200.0  # one cross position keeps the whole wallet
    assert np.isnan(crowd.stop_price).all()
    assert (crowd.topup_reserve == 0).all()


def test_blank_lines_and_multiline_fields_keep_editor_line_numbers(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], "", 'binance,"a\nb",BTCUSDT,long,1,116000,isolated,abc', GOOD_ROWS[3]]
    got = problems(write_csv(tmp_path, rows))
    assert got == [f"{tmp_path / 'positions.csv'}: line 4: collateral: 'abc' is not a number"]


def test_header_is_case_and_space_insensitive_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    header = " Venue,ACCOUNT,market,side,size,entry_price,margin_mode,collateral,note"
    snap = load_positions(write_csv(tmp_path, [r + ",hello" for r in GOOD_ROWS], header=header), SCENARIO)
    assert snap.n == 4


BAD = [
    ("binance,a1,BTCUSDT,long,1.0005,116000,isolated,12000", "size", "not a whole number of binance:BTCUSDT lots"),
    ("binance,a1,BTCUSDT,long,abc,116000,isolated,12000", "size", "'abc' is not a number"),
    ("binance,a1,BTCUSDT,long,nan,116000,isolated,12000", "size", "not a finite number"),
    ("binance,a1,BTCUSDT,long,-1,116000,isolated,12000", "size", "-1 must be greater than 0"),
    ("binance,a1,BTCUSDT,long,1,0,isolated,12000", "entry_price", "0 must be greater than 0"),
    ("binance,a1,BTCUSDT,long,1,116000,isolated,", "collateral", "missing value"),
    ("binance,a1,BTCUSDT,up,1,116000,isolated,12000", "side", "'up' must be long or short"),
    ("binance,a1,BTCUSDT,long,1,116000,portfolio,12000", "margin_mode", "'portfolio' must be cross or isolated"),
    ("kraken,a1,BTCUSDT,long,1,116000,isolated,12000", "venue", "'kraken' is not a venue of scenario quickstart"),
    ("binance,a1,ETHUSDT,long,1,4000,isolated,1000", "market", "'ETHUSDT' is not a perpetual of binance"),
    ("binance,,BTCUSDT,long,1,116000,isolated,12000", "account", "missing value"),
    ("binance,a1,BTCUSDT,long,1,116000,isolated,100", "collateral", "leverage 1160x"),
    ("binance,a1,HIVEUSDT,long,20000000,1,isolated,20000000", "size", "above binance:HIVEUSDT's largest tier cap"),
    ("binance,a1,BTCUSDT,long,1,116000,isolated,12000,x", "(row)", "9 fields where the header has 8"),
]


@pytest.mark.parametrize(("row", "field", "message"), BAD, ids=[b[2][:30] for b in BAD])
def test_each_rule_names_line_field_and_rule(tmp_path: Path, row: str, field: str, message: str) -> None:
    got = problems(write_csv(tmp_path, [GOOD_ROWS[3], row]))
    assert len(got) == 1, got
    assert got[0].startswith(f"{tmp_path / 'positions.csv'}: line 3: {field}: ")
    assert message in got[0]


def test_collateral_asset_rules(tmp_path: Path) -> None:
    header = HEADER + ",collateral_asset"
    rows = [
        "binance,a1,BTCUSDT,long,1,116000,cross,20000,USDE",  # Binance accepts USDe in cross mode
        "binance,a2,BTCUSDT,long,1,116000,isolated,20000,USDE",
        "hyperliquid,a3,BTC,long,1,116000,cross,20000,USDE",
    ]
    got = problems(write_csv(tmp_path, rows, header=header))
    assert len(got) == 2
    assert "line 3: collateral_asset: isolated margin is held in binance:BTCUSDT's settlement asset USDT" in got[0]
    assert "line 4: collateral_asset: 'USDE' is not accepted as margin by hyperliquid (accepted: USDC)" in got[1]


def test_duplicates_and_cross_wallets(tmp_path: Path) -> None:
    rows = [
        "binance,a1,BTCUSDT,long,1,116000,isolated,12000",
        "binance,a1,BTCUSDT,short,1,116000,isolated,12000",  # same account and market again
        "binance,a2,BTCUSDT,long,1,116000,cross,5000",
        "binance,a2,HIVEUSDT,long,1000,0.25,cross,5100",  # wallet differs from line 4's
        "binance,a3,BTCUSDT,long,1,116000,cross,700",  # 116,000 / 150x = 773.33 initial margin
    ]
    got = problems(write_csv(tmp_path, rows))
    assert len(got) == 3, got
    assert "line 3: market: duplicate of line 2" in got[0]
    assert "line 5: collateral: 5,100.00 differs from 5,000.00 on line 4" in got[1]
    assert "line 6: collateral: cross wallet 700.00 of account a3 on binance is below the initial margin" in got[2]
    assert "773.33" in got[2]


def test_a_wallet_mismatch_is_reported_even_when_the_first_row_has_another_problem(tmp_path: Path) -> None:
    rows = ["binance,b,BTCUSDT,short,1.2345,116900,cross,60000", "binance,b,HIVEUSDT,long,40000,0.262,cross,6000"]
    got = problems(write_csv(tmp_path, rows))
    assert [g.split(": ", 1)[1] for g in got] == [
        "line 2: size: 1.2345 is not a whole number of binance:BTCUSDT lots (0.001 base units each); rejected "
        "rather than rounded",
        "line 3: collateral: 6,000.00 differs from 60,000.00 on line 2: a cross account's wallet must be the same "
        "on each of its cross rows",
    ]


def test_missing_columns_are_listed_at_once(tmp_path: Path) -> None:
    got = problems(write_csv(tmp_path, GOOD_ROWS[:1], header="venue,account,market,side,size"))
    assert len(got) == 1
    assert "line 1: missing columns entry_price, margin_mode, collateral" in got[0]


def test_empty_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    assert "empty file" in problems(tmp_path / "empty.csv")[0]
    assert "no positions" in problems(write_csv(tmp_path, []))[0]


def test_many_bad_rows_are_all_counted_and_the_file_refused(tmp_path: Path) -> None:
    rows = [f"binance,acct{i},BTCUSDT,long,0.0001,116000,isolated,1000" for i in range(120)]
    rows.insert(60, GOOD_ROWS[0])  # one good row among them: still refused
    got = problems(write_csv(tmp_path, rows))
    assert len(got) == MAX_REPORTED + 1
    assert [int(line.split(": line ")[1].split(":")[0]) for line in got[:-1]] == list(range(2, 2 + MAX_REPORTED))
    assert got[-1].endswith("and 70 more problems (file refused)")


def test_parquet_rows_and_nulls(tmp_path: Path) -> None:
    table = pa.table(
        {
            "venue": ["binance", "binance"],
            "account": [1, 2],
            "market": ["BTCUSDT", None],
            "side": ["long", "short"],
            "size": [1.0, None],
            "entry_price": [116000.0, 116000.0],
            "margin_mode": ["cross", "cross"],
            "collateral": [float("inf"), 1000.0],
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    got = problems(path)
    assert got == [
        f"{path}: row 1: collateral: 'inf' is not a finite number",
        f"{path}: row 2: market: missing value",
        f"{path}: row 2: size: missing value",
    ]


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "p.xlsx").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match=r"unknown positions format \.xlsx"):
        load_positions(tmp_path / "p.xlsx", SCENARIO)
    with pytest.raises(UsageError, match="no such positions file"):
        load_positions(tmp_path / "none.csv", SCENARIO)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, timeout=120)


def test_positions_check_command(tmp_path: Path) -> None:
    good = cli("positions", "check", str(write_csv(tmp_path, GOOD_ROWS)), "--scenario", "quickstart")
    assert good.returncode == 0, good.stderr
    for text in ("4 positions of 3 accounts", "binance:HIVEUSDT", "203,250", "85.6%", "1 isolated, 3 cross"):
        assert text in good.stdout
    data = json.loads(
        cli("positions", "check", str(tmp_path / "positions.csv"), "--scenario", "quickstart", "--json").stdout
    )
    assert data["by_market"]["hyperliquid:BTC"]["notional_usd"] == pytest.approx(1165.0)
    bad_rows = [GOOD_ROWS[0], "binance,a9,BTCUSDT,long,abc,116000,isolated,1", "kraken,a1,BTC,long,1,1,cross,1"]
    bad = cli("positions", "check", str(write_csv(tmp_path, bad_rows, name="bad.csv")), "--scenario", "quickstart")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"error: {tmp_path / 'bad.csv'}: line ") for line in lines)
    assert "line 3: size: 'abc' is not a number" in lines[0]
    assert "line 4: venue: 'kraken'" in lines[1]


def test_the_howto_example_is_valid(tmp_path: Path) -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "howto" / "bring-your-own-positions.md"
    block = doc.read_text(encoding="utf-8").split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "positions.csv").write_text(block, encoding="utf-8")
    s = load_positions(tmp_path / "positions.csv", SCENARIO).summary()
    assert (s["positions"], s["accounts"]) == (6, 5)
    assert s["by_market"]["binance:BTCUSDT"]["long_share"] == pytest.approx(0.734, abs=5e-4)
    assert s["notional_usd"] == pytest.approx(958_160.0)
