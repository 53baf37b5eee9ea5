"""A run whose crowd is a user's positions file: the rows are the crowd, exactly; a bad file stops the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpstress import Scenario
from perpstress.errors import DataError
from perpstress.outputs.run import run_scenario

ROWS = """venue,account,market,side,size,entry_price,margin_mode,collateral
binance,a1,BTCUSDT,long,2.0,118000,cross,20000
binance,a2,BTCUSDT,short,1.0,117000,isolated,12000
hyperliquid,h1,BTC,long,3.0,119000,cross,25000
hyperliquid,h2,DOGE,long,100000,0.27,isolated,3000
"""


def test_the_file_is_the_crowd(tmp_path: Path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text(ROWS)
    scenario = Scenario.load("quickstart").with_(duration_s=120)
    out = run_scenario(scenario, positions=path)
    s = out.summary
    makers_and_noise = 4 * 3 + 4  # three makers and one noise account per market
    assert s["accounts"] == 4 + makers_and_noise
    assert s["positions_file"] == str(path)  # the summary names where the crowd came from
    # open interest is the file's 2 BTC of longs at the first step's mark (near the 116,800 start price)
    ts = out.files["timeseries.parquet"].to_pydict()
    mark0 = next(m for k, m in zip(ts["market"], ts["mark"], strict=True) if k == "binance:BTCUSDT")
    assert mark0 == pytest.approx(116_800, rel=1e-3)
    assert s["open_interest"]["binance:BTCUSDT"]["start_usd"] == pytest.approx(2.0 * mark0, rel=1e-12)
    assert s["invariants"]["open_interest_max_imbalance"] == 0


def test_a_bad_row_refuses_the_file_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text(ROWS + "binance,a3,BTCUSDT,long,-1,118000,cross,1000\n")
    with pytest.raises(DataError) as err:
        run_scenario(Scenario.load("quickstart"), tmp_path / "run", positions=path)
    assert any("line 6: size" in p for p in err.value.problems)
    assert not (tmp_path / "run").exists()
