"""The Python API: perpstress.run, perpstress.load, Run's frames and headline, and scenarios changed in Python.

The runs are the one-minute ``tiny`` scenario of ``tests/unit/conftest.py`` (a dict built there)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import tomli_w

import perpstress
from perpstress import ConfigError, DataError, Run, Scenario, UsageError
from perpstress.config.base import set_dotted

MakeTiny = Callable[..., dict[str, Any]]


def test_a_run_in_memory_writes_nothing_and_holds_its_tables(
    make_tiny: MakeTiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = perpstress.run(make_tiny(), seed=2)
    assert run.path is None
    assert list(tmp_path.iterdir()) == []
    assert {"timeseries", "events/liquidations", "events/adl"} <= set(run.tables())
    assert run.summary["seed"] == 2
    assert run.scenario.seed == 2
    assert run.summary["config_hash"] == run.scenario.stable_hash()


def test_frames_add_up_to_the_summary(tiny_memory_run: Run) -> None:
    run, s = tiny_memory_run, tiny_memory_run.summary
    liq, adl, ts = run.liquidations, run.adl, run.timeseries
    assert isinstance(liq, pd.DataFrame)
    assert s["liquidations"]["count"] > 0  # the scenario exercises liquidations
    assert s["adl"]["count"] > 0  # and ADL
    assert len(liq) == s["liquidations"]["count"]
    assert liq["notional_usd"].sum() == pytest.approx(s["liquidations"]["notional_usd"], rel=1e-12)
    long_usd = liq.loc[liq["side"] > 0, "notional_usd"].sum()
    assert long_usd / liq["notional_usd"].sum() == pytest.approx(run.headline()["long_share"], rel=1e-12)
    by_venue = adl.groupby("venue")["notional_usd"].sum().to_dict()
    assert by_venue == pytest.approx(s["adl"]["by_venue"], rel=1e-12)
    markets = run.scenario.venues["binance"].markets().keys() | run.scenario.venues["hyperliquid"].markets().keys()
    assert len(ts) == s["steps"] * ts["market"].nunique()
    assert ts["market"].nunique() >= len(markets)


def test_polars_and_arrow_give_the_same_rows(tiny_memory_run: Run) -> None:
    run = tiny_memory_run
    frame = run.polars.liquidations
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == len(run.liquidations)
    assert frame["notional_usd"].sum() == pytest.approx(run.liquidations["notional_usd"].sum(), rel=1e-12)
    assert run.frames("polars").adl.height == len(run.adl)
    assert run.frames("polars")["events/adl"].height == len(run.adl)
    table = run.arrow("adl")
    assert isinstance(table, pa.Table)
    assert table.num_rows == len(run.adl)
    assert "liquidations" in dir(run.polars)


def test_any_table_by_path_or_last_name(tiny_memory_run: Run) -> None:
    run = tiny_memory_run
    assert "events/transfers" in run.tables()
    by_path = run.table("events/transfers")
    assert list(by_path.columns) == list(run.table("transfers").columns)
    assert "delay_s" in by_path.columns
    assert run.table("events/hedges.parquet", "polars").columns == run.polars.hedges.columns


def test_missing_tables_are_named_with_what_exists(tiny_memory_run: Run) -> None:
    with pytest.raises(UsageError, match=r"no table 'events/trades'.*record_trades = true"):
        _ = tiny_memory_run.trades
    with pytest.raises(UsageError, match=r"no table 'nope' \(tables: events/adl, "):
        tiny_memory_run.table("nope")
    with pytest.raises(UsageError, match="frame kind 'numpy'"):
        tiny_memory_run.frames("numpy")  # type: ignore[arg-type]


def test_trades_when_the_scenario_records_them(make_tiny: MakeTiny) -> None:
    run = perpstress.run(make_tiny(engine={"record_trades": True}, duration_s=20))
    trades = run.trades
    assert len(trades) > 0
    assert {"maker", "price", "lots"} <= set(trades.columns)


def test_written_run_loads_back_equal(make_tiny: MakeTiny, tmp_path: Path) -> None:
    made = perpstress.run(make_tiny(fund_usd=3e5), seed=9, out=tmp_path / "run")
    assert made.path == tmp_path / "run"
    loaded = perpstress.load(tmp_path / "run")
    assert loaded.summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert loaded.summary == made.summary  # JSON keeps floats exactly
    assert loaded.tables() == made.tables()
    for name in made.tables():  # pandas compares NaN (no trade yet, an empty book side) as equal; Arrow would not
        assert loaded.arrow(name).schema.equals(made.arrow(name).schema), name
        pd.testing.assert_frame_equal(loaded.table(name), made.table(name))
    assert loaded.scenario.stable_hash() == made.scenario.stable_hash() == loaded.summary["config_hash"]
    assert loaded.scenario.venues["binance"].insurance_fund.initial_usd == 3e5
    assert loaded.headline() == made.headline()
    assert repr(loaded).startswith("Run('tiny', seed=9, ")


def test_an_existing_run_directory_needs_overwrite(make_tiny: MakeTiny, tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with pytest.raises(UsageError, match="already exists"):
        perpstress.run(make_tiny(duration_s=5), out=target)
    perpstress.run(make_tiny(duration_s=5), out=target, overwrite=True)
    assert perpstress.load(target).summary["steps"] == 5


def test_scenarios_changed_in_python_run(make_tiny: MakeTiny) -> None:
    base = Scenario.from_dict(make_tiny(duration_s=10))
    changed = base.with_(seed=3, venues__binance__insurance_fund__initial_usd=5e6)
    run = perpstress.run(changed)
    assert run.summary["seed"] == 3
    assert run.summary["insurance_funds"]["binance"]["start_usd"] == 5e6
    # The README's example on the built-in scenario validates the same way (not run here: it takes seconds).
    qs = Scenario.load("quickstart").with_(seed=3, venues__binance__insurance_fund__initial_usd=5e6)
    assert qs.venues["binance"].insurance_fund.source_of("initial_usd").confidence.value == "scenario"
    assert perpstress.api.as_scenario(qs) is qs


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("venues.binance.insurance_fund.initial_usd", -5),
        ("seed", -1),
        ("duration_s", "x"),
        ("duration_s", 0.5),
        ("venues.binance.nope", 3),
        ("crowd.markets.binance:BTCUSDT.long_share", 1.5),
    ],
)
def test_bad_with_values_fail_with_the_text_a_file_gets(
    make_tiny: MakeTiny, tmp_path: Path, path: str, value: Any
) -> None:
    data = make_tiny()
    set_dotted(data, path, value)
    file = tmp_path / "bad.toml"
    file.write_text(tomli_w.dumps(data))
    with pytest.raises(ConfigError) as from_file:
        Scenario.load(file)
    with pytest.raises(ConfigError) as from_python:
        Scenario.from_dict(make_tiny()).with_(**{path.replace(".", "__"): value})
    assert [p.removeprefix(f"{file}: ") for p in from_file.value.problems] == [
        p.removeprefix("tiny (with_): ") for p in from_python.value.problems
    ]
    with pytest.raises(ConfigError):  # and through the API's own seed argument and dict input
        perpstress.run(data)


def test_bad_arguments_are_usage_errors(make_tiny: MakeTiny) -> None:
    with pytest.raises(UsageError, match="scale must be a positive number"):
        perpstress.run(make_tiny(), scale=0)
    with pytest.raises(UsageError, match="scale must be a positive number"):
        perpstress.run(make_tiny(), scale=float("nan"))
    with pytest.raises(UsageError, match="got int"):
        perpstress.run(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="neither a scenario file nor a built-in scenario"):
        perpstress.run("no-such-scenario")
    with pytest.raises(ConfigError, match=r"tiny \(with_\): seed: Input should be greater than or equal to 0"):
        perpstress.run(make_tiny(), seed=-1)


def test_load_names_what_is_wrong(tiny_runs: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"{tmp_path / 'nope'}: no such run directory"):
        perpstress.load(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match=r"file\.txt: not a directory"):
        perpstress.load(tmp_path / "file.txt")
    with pytest.raises(UsageError, match=r"not a run directory \(no summary.json\); it holds 3 run directories"):
        perpstress.load(tiny_runs)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=r"empty: not a run directory \(no summary.json\)$"):
        perpstress.load(empty)
    partial = tmp_path / ".run.partial-123"
    shutil.copytree(tiny_runs / "fund-1m" / "seed1", partial)
    with pytest.raises(UsageError, match="an unfinished run"):
        perpstress.load(partial)


def test_load_rejects_incomplete_or_damaged_runs(tiny_runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_runs / "fund-1m" / "seed1", run)
    (run / "scenario.toml").unlink()
    with pytest.raises(DataError, match=f"{run}: incomplete run directory: no scenario.toml"):
        perpstress.load(run)
    shutil.rmtree(run)
    shutil.copytree(tiny_runs / "fund-1m" / "seed1", run)
    (run / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match=r"summary.json: not valid JSON"):
        perpstress.load(run)
    (run / "summary.json").write_text('{"scenario": "x"}')
    with pytest.raises(DataError, match=r"summary\.json: not a run summary: no liquidations, adl"):
        perpstress.load(run)
    shutil.copy(tiny_runs / "fund-1m" / "seed1" / "summary.json", run / "summary.json")
    (run / "events" / "adl.parquet").write_bytes(b"not parquet")
    loaded = perpstress.load(run)  # tables are read when asked for
    assert len(loaded.liquidations) == loaded.summary["liquidations"]["count"]
    with pytest.raises(DataError, match=r"adl.parquet: cannot be read as Parquet"):
        _ = loaded.adl
    (run / "scenario.toml").write_text("name = 3\n")
    with pytest.raises(ConfigError, match=r"scenario.toml: name: "):
        _ = loaded.scenario


@pytest.mark.parametrize(("module", "extra"), [("pandas", "frames"), ("polars", "frames")])
def test_a_missing_frame_library_names_its_extra(
    tiny_memory_run: Run, monkeypatch: pytest.MonkeyPatch, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    kind: Any = module
    with pytest.raises(UsageError, match=rf"^{module} is not installed; .*pip install 'perpstress\[{extra}\]'$"):
        tiny_memory_run.table("adl", kind)
    assert tiny_memory_run.arrow("adl").num_rows > 0  # Arrow needs no extra


def test_headline_is_the_summary_flattened(tiny_memory_run: Run) -> None:
    h, s = tiny_memory_run.headline(), tiny_memory_run.summary
    assert h["liquidated_usd"] == s["liquidations"]["notional_usd"]
    assert h["adl_usd"] == s["adl"]["notional_usd"]
    assert h["adl_usd_binance"] == s["adl"]["by_venue"].get("binance", 0.0)
    assert h["fund_start_usd_binance"] == 1e6
    funds = s["insurance_funds"]
    assert h["fund_drawdown_usd"] == pytest.approx(sum(f["start_usd"] - f["min_usd"] for f in funds.values()))
    worst = min(s["prices"].items(), key=lambda kv: kv[1]["max_drawdown"])
    assert (h["worst_drawdown_market"], h["worst_price_drawdown"]) == (worst[0], worst[1]["max_drawdown"])


def test_a_progress_callback_hears_every_step(make_tiny: MakeTiny) -> None:
    heard: list[tuple[int, int]] = []
    run = perpstress.run(make_tiny(), progress=lambda done, total: heard.append((done, total)))
    steps = run.summary["steps"]
    assert heard == [(i, steps) for i in range(1, steps + 1)]
