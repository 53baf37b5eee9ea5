"""``perpstress query`` as a user runs it: a subprocess over three tiny runs, its output and exit code."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

ADL_BY_VENUE = "SELECT venue, sum(notional_usd) AS usd FROM adl GROUP BY venue ORDER BY venue"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, timeout=120)


def expected_adl(root: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for path in root.rglob("summary.json"):
        for venue, usd in json.loads(path.read_text())["adl"]["by_venue"].items():
            out[venue] = out.get(venue, 0.0) + usd
    return out


def test_table_json_and_csv_give_the_same_numbers(tiny_runs: Path) -> None:
    expected = expected_adl(tiny_runs)
    table = cli("query", str(tiny_runs), ADL_BY_VENUE)
    assert table.returncode == 0, table.stderr
    for venue, usd in expected.items():
        assert venue in table.stdout
        assert f"{usd:,.2f}" in table.stdout
    assert f"2 rows from 3 runs under {tiny_runs}" in " ".join(table.stdout.split())  # however the line wraps
    as_json = cli("query", str(tiny_runs), ADL_BY_VENUE, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert {r["venue"]: r["usd"] for r in json.loads(as_json.stdout)} == pytest.approx(expected, rel=1e-12)
    as_csv = cli("query", str(tiny_runs), ADL_BY_VENUE, "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["venue"]: float(r["usd"]) for r in rows} == pytest.approx(expected, rel=1e-12)


def test_tables_lists_every_view_and_its_columns(tiny_runs: Path) -> None:
    out = cli("query", str(tiny_runs), "--tables", "--json")
    assert out.returncode == 0, out.stderr
    views = json.loads(out.stdout)
    assert {"runs", "liquidations", "adl", "timeseries", "transfers"} <= set(views)
    assert next(iter(views["adl"]["columns"])) == "run_id"
    assert views["adl"]["columns"]["notional_usd"] == "DOUBLE"
    assert views["runs"]["columns"]["summary"] == "JSON"
    assert views["liquidations"]["source"] == "events/liquidations.parquet in 3 of 3 runs"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["SELECT nope FROM adl"], 'error: query failed: Binder Error: Referenced column "nope" not found'),
        (["SELECT CAST(venue AS INTEGER) FROM adl"], "error: query failed: Conversion Error: "),
        (["SELECT 1", "--json", "--csv"], "error: --json and --csv exclude each other"),
        ([], "error: give a SQL query, or --tables"),
    ],
)
def test_bad_queries_are_one_line_and_exit_2(tiny_runs: Path, args: list[str], message: str) -> None:
    out = cli("query", str(tiny_runs), *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(message)
    assert "Traceback" not in out.stderr


def test_a_folder_without_runs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = cli("query", str(tmp_path), "SELECT 1")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path}: no run directories under it (a run directory holds summary.json)"


def test_ids_and_times_print_without_thousands_separators() -> None:
    from perpstress.cli.query_command import _is_identifier

    assert all(_is_identifier(c) for c in ("seed", "population_seed", "account", "ts_ms", "run_id", "seed_index"))
    assert not any(_is_identifier(c) for c in ("fills", "liquidated_usd", "lots", "count"))
