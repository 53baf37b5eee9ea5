"""The real figures: derived from files shaped like shared/data's (quirks included), and, when the real data is
present, equal to what oct2025_targets.toml records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from perpstress.validation import derive
from perpstress.validation.targets import load_targets

T0 = int(datetime(2025, 10, 10, 20, 30, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)


def kline(i: int, high: float, low: float, volume: float) -> str:
    t = T0 + i * MIN
    return f"{t},{high},{high},{low},{low},1,{t + MIN - 1},{volume},1,0,0,0"


def test_btc_last_trade(tmp_path: Path) -> None:
    rows = [kline(i, 120.0 + i / 10, 119.5 + i / 10, 1000.0) for i in range(25)]  # a drift up, then a 124 high
    rows += [kline(25, 124.0, 110.0, 50_000.0), kline(26, 112.0, 105.4, 9_000.0), kline(27, 120.0, 111.0, 900.0)]
    path = tmp_path / "k.csv"
    path.write_text("\n".join([KLINE_HEADER, *rows]) + "\n", encoding="utf-8")
    got = derive.btc_last_trade(path)
    assert (got["peak"], got["low"]) == (124.0, 105.4)
    assert got["drawdown"] == pytest.approx(1 - 105.4 / 124.0)
    assert got["low_bar_utc"] == "2025-10-10T20:56:00Z"
    assert got["shock_onset_utc"] == "2025-10-10T20:55:00Z"


def test_ask_depth_ignores_the_bid_side_and_stray_spaces(tmp_path: Path) -> None:
    lines = ["timestamp,percentage,depth,notional,weighted_avg_price"]
    for half_minutes in range(0, 240):
        t = datetime.fromtimestamp((T0 + half_minutes * 30_000) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        minute = half_minutes / 2
        ask = 400.0 if minute < 20 else 40.0 if minute < 50 else 300.0
        stamp = f" {t}" if half_minutes == 100 else t  # the archive's stray leading space
        lines.append(f"{stamp},-1,1,5.0,121363.2")  # stale bid: never moves
        lines.append(f"{stamp},1,1,{ask},110000")
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = derive.ask_depth(path, T0 + 20 * MIN)
    assert (got["pre_level_usd"], got["trough_usd"]) == (400.0, 40.0)
    assert got["collapse"] == pytest.approx(0.9)
    assert got["trough_utc"] == "2025-10-10T20:50:00Z"
    assert got["recovery_minutes"] == pytest.approx(32.5)  # back at minute 50; six of ten snapshots by 52.5


def test_usde_and_adl(tmp_path: Path) -> None:
    usde = tmp_path / "u.csv"
    rows = ["open_time_utc,open_time_ms,open,high,low,close,volume"]
    for i, low in enumerate([1.0, 0.99, 0.96, 0.7, 0.95, 1.0]):
        rows.append(f"x,{T0 + i * MIN},1,1,{low},1,1")
    usde.write_text("\n".join(rows) + "\n", encoding="utf-8")
    got = derive.usde(usde)
    assert (got["low"], got["low_bar_utc"]) == (0.7, "2025-10-10T20:33:00Z")
    assert (got["first_bar_below_0.97_utc"], got["last_bar_below_0.97_utc"]) == (
        "2025-10-10T20:32:00Z",
        "2025-10-10T20:34:00Z",
    )
    adl = tmp_path / "a.csv"
    adl.write_text("coin,budget_queue_usd,deficit_usd\nBTC,30,1\nFART,50,9\nXPL,20,0\n", encoding="utf-8")
    shares = derive.adl_by_coin(adl)
    assert (shares["small_budget_share"], shares["small_deficit_share"]) == (0.7, 0.9)
    assert shares["small_shock_share"] == pytest.approx(2 / 3)


DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


@pytest.mark.skipif(not (DATA / derive.BTC_DEPTH).is_file(), reason="shared/data is not next to the repository")
def test_the_targets_file_records_the_derived_real_figures() -> None:
    figures = derive.derive_all(DATA)
    real = {t.id: t.real for t in load_targets().targets}
    event = load_targets().event
    assert figures["btc_last_trade"]["shock_onset_utc"] == event.shock_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert real["btc_drawdown"] == pytest.approx(figures["btc_mark"]["drawdown"], abs=5e-5)
    assert figures["btc_last_trade"]["low_bar_utc"] == real["btc_low_time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert figures["btc_mark"]["low_bar_utc"] == "2025-10-10T21:20:00Z"
    depth = figures["btc_ask_depth"]
    assert real["btc_ask_depth_collapse"] == pytest.approx(depth["collapse"], abs=5e-5)
    assert real["btc_ask_depth_recovery_minutes"] == pytest.approx(depth["recovery_minutes"], abs=0.01)
    assert real["usde_depeg_low"] == figures["usde_binance_spot"]["low"]
    assert real["adl_small_perp_share"] == pytest.approx(figures["hyperliquid_adl"]["small_budget_share"], abs=5e-5)
    assert figures["hyperliquid_adl"]["majors"] == list(event.majors)
