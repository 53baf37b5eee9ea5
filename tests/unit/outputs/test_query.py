"""DuckDB over many runs: the views agree with the runs' own summaries; bad input is one clear error.

The runs are three one-minute ``tiny`` runs (``tests/unit/conftest.py``) that differ in seed and Binance's fund."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import perpstress
from perpstress import DataError, UsageError
from perpstress.outputs.query import connect, fetch, one_line


def summaries(root: Path) -> dict[str, dict]:
    return {p.parent.relative_to(root).as_posix(): json.loads(p.read_text()) for p in root.rglob("summary.json")}


def test_adl_by_venue_across_runs_is_one_query(tiny_runs: Path) -> None:
    frame = perpstress.query(tiny_runs, "SELECT venue, sum(notional_usd) AS usd, count(*) AS n FROM adl GROUP BY venue")
    got = dict(zip(frame["venue"], frame["usd"], strict=True))
    expected: dict[str, float] = {}
    fills = 0
    for s in summaries(tiny_runs).values():
        fills += s["adl"]["count"]
        for venue, usd in s["adl"]["by_venue"].items():
            expected[venue] = expected.get(venue, 0.0) + usd
    assert set(got) == set(expected) == {"binance", "hyperliquid"}
    assert got == pytest.approx(expected, rel=1e-12)
    assert frame["n"].sum() == fills


def test_runs_has_one_row_per_run_with_its_headline(tiny_runs: Path, tiny_run_specs: dict) -> None:
    frame = perpstress.query(
        tiny_runs,
        "SELECT run_id, run_name, seed, scale, config_hash, liquidated_usd, long_share, fund_start_usd_binance, "
        "CAST(summary->>'$.adl.count' AS BIGINT) AS adl_fills FROM runs ORDER BY run_id",
    )
    assert list(frame["run_id"]) == sorted(tiny_run_specs)
    by_id = summaries(tiny_runs)
    for row in frame.itertuples():
        fund, seed = tiny_run_specs[row.run_id]
        s = by_id[row.run_id]
        assert row.run_name == row.run_id.rsplit("/", 1)[-1]
        assert (row.seed, row.fund_start_usd_binance) == (seed, fund)
        assert row.scale == s["scale"] == 1.0
        assert row.config_hash == s["config_hash"]
        assert row.liquidated_usd == s["liquidations"]["notional_usd"]
        assert row.long_share == pytest.approx(s["liquidations"]["long_notional_usd"] / row.liquidated_usd)
        assert row.adl_fills == s["adl"]["count"]


def test_table_views_carry_run_id_and_match_each_summary(tiny_runs: Path) -> None:
    con, catalog = connect(tiny_runs)
    names = {v.name for v in catalog.views}
    assert {"runs", "liquidations", "adl", "timeseries", "transfers", "hedges"} <= names
    result = fetch(con, "SELECT run_id, sum(notional_usd), count(*) FROM liquidations GROUP BY run_id ORDER BY 1")
    assert result is not None
    by_id = summaries(tiny_runs)
    assert [r[0] for r in result.rows] == sorted(by_id)
    for run_id, usd, n in result.rows:
        assert usd == pytest.approx(by_id[run_id]["liquidations"]["notional_usd"], rel=1e-12)
        assert n == by_id[run_id]["liquidations"]["count"]
    steps = fetch(con, "SELECT count(DISTINCT ts_ms) FROM timeseries WHERE run_id = 'fund-5m/seed3'")
    assert steps is not None
    assert steps.rows[0][0] == by_id["fund-5m/seed3"]["steps"]
    con.close()


def test_tables_union_by_name_across_runs_and_versions(tiny_runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    shutil.copytree(tiny_runs, root)
    newer = root / "fund-1m" / "seed1"
    adl = pq.read_table(newer / "events" / "adl.parquet")
    pq.write_table(
        adl.append_column("queue_rank", pa.array(range(adl.num_rows), pa.int64())), newer / "events/adl.parquet"
    )
    pq.write_table(pa.table({"ts_ms": [1, 2], "usd": [3.0, 4.0]}), newer / "events" / "bridge.parquet")
    con, catalog = connect(root)
    rows = fetch(con, "SELECT run_id, count(queue_rank), count(*) FROM adl GROUP BY run_id ORDER BY 1")
    assert rows is not None
    for run_id, ranked, n in rows.rows:
        assert ranked == (n if run_id == "fund-1m/seed1" else 0)  # NULL where a run lacks the column
    bridge = fetch(con, "SELECT run_id, sum(usd) FROM bridge GROUP BY run_id")
    assert bridge is not None
    assert bridge.rows == [("fund-1m/seed1", 7.0)]
    assert next(v for v in catalog.views if v.name == "bridge").source == "events/bridge.parquet in 1 of 3 runs"
    con.close()


def test_partial_runs_are_skipped_and_a_sweep_results_file_is_a_view(tiny_runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    shutil.copytree(tiny_runs, root / "runs")
    shutil.copytree(tiny_runs / "fund-1m" / "seed1", root / "runs" / ".seed9.partial-42")
    pq.write_table(pa.table({"run_key": ["seed1", "seed2"], "adl_usd": [1.0, 2.0]}), root / "results.parquet")
    con, catalog = connect(root)
    assert catalog.runs == sorted(f"runs/{k}" for k in summaries(tiny_runs))
    joined = fetch(con, "SELECT r.run_id, results.adl_usd FROM results JOIN runs r ON r.run_name = results.run_key")
    assert joined is not None
    assert sorted(joined.rows) == [("runs/fund-1m/seed1", 1.0), ("runs/fund-200k/seed2", 2.0)]
    con.close()


def test_a_run_directory_itself_is_one_run_named_by_its_folder(tiny_runs: Path) -> None:
    frame = perpstress.query(tiny_runs / "fund-200k" / "seed2", "SELECT DISTINCT run_id FROM liquidations")
    assert list(frame["run_id"]) == ["seed2"]


def test_bad_input_is_a_one_line_usage_error(tiny_runs: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such directory"):
        connect(tmp_path / "nope")
    with pytest.raises(UsageError, match=r"no run directories under it \(a run directory holds summary.json\)"):
        connect(tmp_path)
    con, _ = connect(tiny_runs)
    with pytest.raises(UsageError, match=r'^query failed: Binder Error: Referenced column "nope" not found') as err:
        fetch(con, "SELECT nope FROM adl")
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match=r"^query failed: Parser Error: syntax error at or near \"SELEC\"$"):
        fetch(con, "SELEC 1")
    with pytest.raises(UsageError, match=r"^query failed: Conversion Error: "):  # raised while reading, not planning
        fetch(con, "SELECT CAST(venue AS INTEGER) FROM adl")
    with pytest.raises(UsageError, match="the SQL query is empty"):
        fetch(con, "  ")
    con.close()


def test_a_damaged_summary_names_its_file(tiny_runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "damaged"
    shutil.copytree(tiny_runs, root)
    (root / "fund-5m" / "seed3" / "summary.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"fund-5m/seed3/summary.json: not a run summary \(a JSON object"):
        connect(root)


def test_a_damaged_table_names_its_file(tiny_runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "damaged"
    shutil.copytree(tiny_runs, root)
    bad = root / "fund-1m" / "seed1" / "events" / "adl.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=rf"File '{bad}' too small to be a Parquet file"):
        connect(root)


def test_without_duckdb_the_error_names_the_extra(tiny_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(UsageError, match=r"^duckdb is not installed; .*pip install 'perpstress\[query\]'$"):
        connect(tiny_runs)


def test_one_line_keeps_the_message_and_drops_the_excerpt() -> None:
    message = 'Parser Error: syntax error at or near "selec"\n\nLINE 1: selec 1\n        ^^^^^'
    assert one_line(message) == 'Parser Error: syntax error at or near "selec"'
    assert one_line('Binder Error: x!\nCandidate bindings: "a"') == 'Binder Error: x! Candidate bindings: "a"'
