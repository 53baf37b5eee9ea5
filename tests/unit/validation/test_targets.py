"""Each validation target on synthetic run directories: one that passes, one that fails, and n/a where the run
cannot say; the targets file itself; the ``perpstress validate`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perpstress.validation.targets import MEASURES, TargetResult, evaluate, load_targets, validate_run

MIN = 60_000
Make = Callable[..., Path]


def outcome(run: Path, target: str) -> TargetResult:
    return next(r for r in evaluate(run) if r.spec.id == target)


def path(points: list[tuple[float, float]]) -> Callable[[np.ndarray], np.ndarray]:
    """A piecewise-linear function of the minute offset from the run's start (20:30 UTC)."""
    xs, ys = zip(*points, strict=True)
    return lambda m: np.interp(m, xs, ys)


CRASH = path([(0, 117_000), (20, 117_000), (50, 101_000), (80, 110_000), (180, 110_000)])  # low 21:20, -13.7 %
MILD = path([(0, 117_000), (20, 117_000), (120, 111_150), (180, 112_000)])  # low 22:30, -5 %


def test_the_targets_file_is_complete_and_reality_passes_it() -> None:
    spec = load_targets()
    assert {t.id for t in spec.targets} == set(MEASURES)
    for t in spec.targets:
        assert t.source, t.id
        assert t.source_label, t.id
        assert t.tolerance_note, t.id
        real = t.real.timestamp() if hasattr(t.real, "timestamp") else t.real
        low = t.low.timestamp() if hasattr(t.low, "timestamp") else t.low
        high = t.high.timestamp() if hasattr(t.high, "timestamp") else t.high
        assert low <= real <= high, t.id  # the real event passes its own targets


def test_liquidations(make_run: Make) -> None:
    good = make_run(
        markets={"binance:BTCUSDT": {"base": "BTC"}},
        liquidations=[
            (25 * MIN, "binance:BTCUSDT", 1, 17.0e9),
            (26 * MIN, "binance:BTCUSDT", -1, 2.5e9),
            (25 * 3600 * 1000, "binance:BTCUSDT", -1, 50e9),
        ],  # the last is after the first day: left out
        duration_s=26 * 3600,
    )
    total = outcome(good, "liquidations_24h_usd")
    assert (total.status, total.measurement.value) == ("pass", 19.5e9)
    share = outcome(good, "liquidations_long_share")
    assert share.status == "pass"
    assert share.measurement.value == pytest.approx(17 / 19.5)
    bad = make_run(
        markets={"binance:BTCUSDT": {"base": "BTC"}},
        liquidations=[(25 * MIN, "binance:BTCUSDT", 1, 0.6e9), (26 * MIN, "binance:BTCUSDT", -1, 0.4e9)],
    )
    assert outcome(bad, "liquidations_24h_usd").status == "fail"
    assert outcome(bad, "liquidations_long_share").status == "fail"
    none = make_run(markets={"binance:BTCUSDT": {"base": "BTC"}})
    assert outcome(none, "liquidations_long_share").status == "n/a"
    assert outcome(none, "liquidations_24h_usd").measurement.value == 0.0


def test_liquidations_fall_back_to_the_summary(make_run: Make) -> None:
    run = make_run(
        markets={"binance:BTCUSDT": {"base": "BTC"}},
        write_events=False,
        liquidations=[(25 * MIN, "binance:BTCUSDT", 1, 12e9)],
    )
    assert not (run / "events").exists()
    assert outcome(run, "liquidations_24h_usd").measurement.value == 12e9


@pytest.mark.parametrize(
    ("target", "base", "symbol"), [("btc_drawdown", "BTC", "BTCUSDT"), ("eth_drawdown", "ETH", "ETHUSDT")]
)
def test_drawdowns(make_run: Make, target: str, base: str, symbol: str) -> None:
    good = make_run(markets={f"bybit:{symbol}": {"base": base, "mark": CRASH}})
    r = outcome(good, target)
    assert r.status == "pass"
    assert r.measurement.value == pytest.approx(1 - 101_000 / 117_000)
    assert outcome(make_run(markets={f"bybit:{symbol}": {"base": base, "mark": MILD}}), target).status == "fail"
    other = make_run(markets={"bybit:SOLUSDT": {"base": "SOL", "mark": CRASH}})
    missing = outcome(other, target)
    assert missing.status == "n/a"
    assert f"no {base} perpetual" in missing.measurement.reason


def test_btc_low_time(make_run: Make) -> None:
    good = outcome(make_run(markets={"binance:BTCUSDT": {"base": "BTC", "mark": CRASH}}), "btc_low_time")
    assert good.status == "pass"
    assert good.simulated_text == "21:20:00 UTC"
    late = outcome(make_run(markets={"binance:BTCUSDT": {"base": "BTC", "mark": MILD}}), "btc_low_time")
    assert (late.status, late.simulated_text) == ("fail", "22:30:00 UTC")
    short = outcome(
        make_run(markets={"binance:BTCUSDT": {"base": "BTC", "mark": CRASH}}, duration_s=45 * 60), "btc_low_time"
    )
    assert short.status == "n/a"
    assert "not the whole band 21:05-21:35 UTC" in short.measurement.reason


def small_markets(falls: list[float]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {"binance:BTCUSDT": {"base": "BTC", "mark": CRASH}}
    for i, f in enumerate(falls):
        out[f"binance:ALT{i}USDT"] = {
            "base": f"ALT{i}",
            "last": path([(0, 10), (20, 10), (50, 10 * (1 - f)), (180, 9)]),
        }
    return out


def test_small_perpetual_drawdowns(make_run: Make) -> None:
    good = outcome(make_run(markets=small_markets([0.6, 0.7, 0.5])), "small_perp_drawdown")
    assert good.status == "pass"
    assert good.measurement.value == pytest.approx(0.6)
    assert "3 fell 50 % or more" in good.measurement.detail
    assert outcome(make_run(markets=small_markets([0.1, 0.2, 0.15])), "small_perp_drawdown").status == "fail"
    few = outcome(make_run(markets=small_markets([0.6, 0.7])), "small_perp_drawdown")
    assert few.status == "n/a"
    assert "2 small perpetual(s)" in few.measurement.reason


# BTC open interest: 1.0B rising to 1.1B before the shock (minute 20), then down to 0.77B: -30 % from the shock
BTC_OI = path([(0, 1.0e9), (15, 1.1e9), (20, 1.1e9), (60, 0.8e9), (170, 0.77e9), (180, 0.77e9)])


def test_open_interest_fall_is_btc_from_the_step_before_the_shock(make_run: Make) -> None:
    markets = {
        "binance:BTCUSDT": {"base": "BTC", "oi": BTC_OI},
        "hyperliquid:BTC": {"base": "BTC", "oi": lambda m: BTC_OI(m) / 2},
        "binance:SOLUSDT": {"base": "SOL", "oi": path([(0, 5e9), (20, 5e9), (170, 0.5e9), (180, 0.5e9)])},  # not BTC
    }
    r = outcome(make_run(markets=markets), "open_interest_fall")
    assert r.status == "pass"
    assert r.measurement.value == pytest.approx(1 - 0.77 / 1.1)
    assert "$1.65B at 20:49:59 UTC (the step before the shock) -> $1.16B" in r.measurement.detail
    assert "binance, hyperliquid" in r.measurement.detail
    assert "all 3 perpetuals" in r.measurement.detail
    no_shock = outcome(make_run(markets=markets, shock_at_s=None), "open_interest_fall")
    assert no_shock.measurement.value == pytest.approx(1 - 0.77)  # from the first step
    assert "(the first step)" in no_shock.measurement.detail


def test_open_interest_fall_fails_when_btc_holds_while_the_rest_falls(make_run: Make) -> None:
    markets = {
        "binance:BTCUSDT": {"base": "BTC", "oi": path([(0, 1e9), (20, 1e9), (170, 0.95e9), (180, 0.95e9)])},
        "binance:ETHUSDT": {"base": "ETH", "oi": path([(0, 3e9), (20, 3e9), (170, 1.5e9), (180, 1.5e9)])},
    }
    r = outcome(make_run(markets=markets), "open_interest_fall")  # all perpetuals fell 39 %, BTC 5 %
    assert (r.status, r.measurement.value) == ("fail", pytest.approx(0.05))
    missing = outcome(make_run(markets={"binance:ETHUSDT": {"base": "ETH"}}), "open_interest_fall")
    assert (missing.status, missing.measurement.reason) == ("n/a", "no BTC perpetual in the run")


def test_open_interest_fall_without_a_time_series_reads_the_summary(make_run: Make) -> None:
    run = make_run(markets={"binance:BTCUSDT": {"base": "BTC", "oi": BTC_OI}})
    (run / "timeseries.parquet").unlink()
    r = outcome(run, "open_interest_fall")
    assert r.measurement.value == pytest.approx(1 - 0.77)
    assert "summary.json" in r.measurement.detail


# pre-crash 300M for 20 min; 100M after the shock; 40M from minute 30; 200M from minute 60
DEPTH = path(
    [(0, 300e6), (19.99, 300e6), (20, 100e6), (29.99, 100e6), (30, 40e6), (59.99, 40e6), (60, 200e6), (180, 200e6)]
)


def test_ask_depth_collapse_and_recovery(make_run: Make) -> None:
    run = make_run(markets={"binance:BTCUSDT": {"base": "BTC", "mark": CRASH, "depth": DEPTH}})
    collapse = outcome(run, "btc_ask_depth_collapse")
    assert collapse.status == "pass"
    assert collapse.measurement.value == pytest.approx(1 - 40 / 300)
    recovery = outcome(run, "btc_ask_depth_recovery_minutes")
    # 30 s snapshots; the 5-minute median (10 snapshots) reaches 150M once six are at 200M: 60 + 2.5 - 30 minutes
    assert recovery.status == "pass"
    assert recovery.measurement.value == pytest.approx(32.5)


def test_ask_depth_failures_and_n_a(make_run: Make) -> None:
    shallow = path([(0, 300e6), (19.99, 300e6), (20, 200e6), (180, 200e6)])
    run = make_run(markets={"binance:BTCUSDT": {"base": "BTC", "depth": shallow}})
    assert outcome(run, "btc_ask_depth_collapse").status == "fail"
    fast = path(
        [(0, 300e6), (19.99, 300e6), (20, 100e6), (29.99, 100e6), (30, 40e6), (30.99, 40e6), (31, 300e6), (180, 300e6)]
    )
    quick = outcome(
        make_run(markets={"binance:BTCUSDT": {"base": "BTC", "depth": fast}}), "btc_ask_depth_recovery_minutes"
    )
    assert quick.status == "fail"
    assert quick.measurement.value is not None
    assert quick.measurement.value < 10
    cut = outcome(
        make_run(markets={"binance:BTCUSDT": {"base": "BTC", "depth": DEPTH}}, duration_s=50 * 60),
        "btc_ask_depth_recovery_minutes",
    )
    assert cut.status == "n/a"
    assert "the run ends" in cut.measurement.reason
    never = outcome(
        make_run(
            markets={
                "binance:BTCUSDT": {"base": "BTC", "depth": path([(0, 300e6), (19.99, 300e6), (20, 40e6), (300, 40e6)])}
            },
            duration_s=5 * 3600,
        ),
        "btc_ask_depth_recovery_minutes",
    )
    assert never.status == "fail"
    elsewhere = outcome(make_run(markets={"bybit:BTCUSDT": {"base": "BTC", "depth": DEPTH}}), "btc_ask_depth_collapse")
    assert elsewhere.status == "n/a"
    assert "no binance:BTCUSDT" in elsewhere.measurement.reason


def test_ask_depth_without_a_scenario_shock_uses_the_peak(make_run: Make) -> None:
    run = make_run(markets={"binance:BTCUSDT": {"base": "BTC", "mark": CRASH, "depth": DEPTH}}, shock_at_s=None)
    r = outcome(run, "btc_ask_depth_collapse")
    assert r.status == "pass"
    assert "peak" in r.measurement.detail


ADL_MARKETS: dict[str, dict[str, object]] = {
    "binance:BTCUSDT": {"base": "BTC", "oi": 3e8},
    "binance:ALT0USDT": {"base": "ALT0", "oi": 1e8},
    "hyperliquid:BTC": {"base": "BTC", "oi": 3e8},
    "hyperliquid:HYPE": {"base": "HYPE", "oi": 3e8},
}
# (ts, market, notional, the winner's PnL on the closed size), USD: by notional $150M of $1,300M (11.5 %) in small
# perpetuals, by PnL taken $90M of $140M (64.3 %); the BTC winner closed at a loss of $30M gave up nothing
ADL = [
    (30 * MIN, "binance:ALT0USDT", 100e6, 60e6),
    (30 * MIN, "binance:BTCUSDT", 900e6, 40e6),
    (31 * MIN, "binance:BTCUSDT", 50e6, -30e6),
    (31 * MIN, "hyperliquid:HYPE", 50e6, 30e6),
    (32 * MIN, "hyperliquid:BTC", 200e6, 10e6),
]


def test_adl_share_is_of_the_pnl_taken_not_of_notional(make_run: Make) -> None:
    r = outcome(make_run(markets=ADL_MARKETS, adl=ADL), "adl_small_perp_share")
    assert r.status == "pass"
    assert r.measurement.value == pytest.approx(90 / 140)
    detail = r.measurement.detail
    assert "$140.0M of PnL taken in $1,300.0M of ADL on binance, hyperliquid" in detail
    assert "by notional 11.5% in small perpetuals" in detail
    assert "hyperliquid alone 75.0%" in detail  # 30 of 40
    assert "small perpetuals hold 40.0% of open interest" in detail  # 0.4B of 1B
    from_summary = outcome(make_run(markets=ADL_MARKETS, adl=ADL, write_events=False), "adl_small_perp_share")
    assert from_summary.measurement.value == pytest.approx(90 / 140)


def test_adl_share_fails_outside_the_band_and_without_adl(make_run: Make) -> None:
    most = [(30 * MIN, "binance:ALT0USDT", 100.0, 95.0), (31 * MIN, "binance:BTCUSDT", 900.0, 5.0)]
    r = outcome(make_run(markets=ADL_MARKETS, adl=most), "adl_small_perp_share")
    assert (r.status, r.measurement.value) == ("fail", pytest.approx(0.95))  # nearly all: the majors gave up none
    few = [(30 * MIN, "binance:ALT0USDT", 900.0, 10.0), (31 * MIN, "binance:BTCUSDT", 100.0, 90.0)]
    assert outcome(make_run(markets=ADL_MARKETS, adl=few), "adl_small_perp_share").status == "fail"  # 90 % notional
    none = outcome(make_run(markets=ADL_MARKETS), "adl_small_perp_share")
    assert none.status == "fail"
    assert "no ADL" in none.measurement.reason
    losses = [(30 * MIN, "binance:ALT0USDT", 100.0, -1.0)]
    nothing = outcome(make_run(markets=ADL_MARKETS, adl=losses), "adl_small_perp_share")
    assert (nothing.status, nothing.measurement.reason) == ("fail", "ADL took no PnL from the winners it closed")


def test_adl_share_n_a(make_run: Make) -> None:
    old = outcome(make_run(markets=ADL_MARKETS, adl=ADL, adl_pnl=False), "adl_small_perp_share")
    assert old.status == "n/a"
    assert "winner_pnl_usd" in old.measurement.reason
    old_summary = outcome(
        make_run(markets=ADL_MARKETS, adl=ADL, adl_pnl=False, write_events=False), "adl_small_perp_share"
    )
    assert old_summary.status == "n/a"
    assert "not the PnL ADL took" in old_summary.measurement.reason
    majors_only = outcome(
        make_run(markets={"binance:BTCUSDT": {"base": "BTC"}}, adl=[(30 * MIN, "binance:BTCUSDT", 10.0, 1.0)]),
        "adl_small_perp_share",
    )
    assert majors_only.status == "n/a"


def test_usde_depeg(make_run: Make) -> None:
    btc = {"binance:BTCUSDT": {"base": "BTC"}}
    run = make_run(markets=btc, collateral={"USDE@binance": 0.66, "USDE@bybit": 0.9995, "WBETH@binance": 0.1})
    low, others = outcome(run, "usde_depeg_low"), outcome(run, "usde_other_venues_low")
    assert (low.status, low.measurement.value, low.measurement.detail) == ("pass", 0.66, "on binance")
    assert (others.status, others.measurement.value) == ("pass", 0.9995)
    run = make_run(markets=btc, collateral={"USDE@binance": 0.95, "USDE@bybit": 0.90})
    assert outcome(run, "usde_depeg_low").status == "fail"  # bybit's 0.90 is the deepest: not deep enough
    assert outcome(run, "usde_other_venues_low").status == "fail"  # binance's 0.95 is off the peg
    one = make_run(markets=btc, collateral={"USDE@binance": 0.7})
    assert outcome(one, "usde_depeg_low").status == "pass"
    assert outcome(one, "usde_other_venues_low").status == "n/a"
    none = make_run(markets=btc)
    assert outcome(none, "usde_depeg_low").status == "n/a"
    assert outcome(none, "usde_other_venues_low").status == "n/a"


def test_collateral_lows_are_shown_beside_the_targets(make_run: Make) -> None:
    """Each listed asset's own-book and margin-price lows, the book's deepest discount to its reference and the
    liquidations it caused; from summary.json, else the book's last trades in the time series; never judged."""
    entry = {"method": "mix", "min_price": 3_700.0, "min_reference_price": 4_100.0, "min_book_price": 186.0,
             "liquidations_caused": 97, "holders": 800}  # fmt: skip
    markets = {"binance:BTCUSDT": {"base": "BTC"}, "binance:BNSOL/USDT": {"base": "BNSOL", "last": CRASH}}
    run = make_run(markets=markets, collateral={"WBETH@binance": entry})
    events = run / "events"
    table = {
        "ts_ms": [0, 1, 0, 1],
        "venue": ["binance"] * 4,
        "asset": ["wBETH", "wBETH", "USDE", "USDE"],  # assets match in any case
        "price": [4_300.0, 3_700.0, 1.0, 0.9],
        "reference_price": [4_300.0, 4_200.0, 1.0, 1.0],
        "book_price": [4_290.0, 210.0, 1.0, 0.9],
    }
    pq.write_table(pa.table(table), events / "collateral.parquet")
    out = validate_run(run, write=False)
    assert [t["id"] for t in out["targets"]] == [t.id for t in load_targets().targets]  # the targets are unchanged
    lows = {c["asset"]: c for c in out["collateral"]}
    assert list(lows) == ["USDE", "WBETH", "BNSOL"]
    wbeth, bnsol, usde = lows["WBETH"], lows["BNSOL"], lows["USDE"]
    assert (wbeth["book_low"], wbeth["margin_low"], wbeth["liquidations_caused"]) == (186.0, 3_700.0, 97)
    assert wbeth["book_discount"] == pytest.approx(1 - 210.0 / 4_200.0)
    assert (wbeth["real"], wbeth["venue"]) == (430.65, "binance")
    assert bnsol["book_low"] == pytest.approx(101_000.0)  # no summary entry nor event: the book's last trades
    assert bnsol["margin_low"] is None
    assert bnsol["liquidations_caused"] is None
    assert bnsol["book_discount"] is None
    assert usde["book_low"] == pytest.approx(0.9)  # no summary entry: the events' book prices
    assert usde["book_discount"] == pytest.approx(0.1)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perpstress", *args], capture_output=True, text=True, timeout=120)


def test_validate_command_table_json_and_file(make_run: Make) -> None:
    run = make_run(
        markets={"binance:BTCUSDT": {"base": "BTC", "mark": CRASH, "depth": DEPTH}},
        liquidations=[(25 * MIN, "binance:BTCUSDT", 1, 17.0e9), (26 * MIN, "binance:BTCUSDT", -1, 2.5e9)],
    )
    out = cli("validate", str(run), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    status = {t["id"]: t["status"] for t in data["targets"]}
    assert status["liquidations_24h_usd"] == "pass"
    assert status["eth_drawdown"] == "n/a"
    assert data["counts"] == {s: sum(v == s for v in status.values()) for s in ("pass", "fail", "n/a")}
    assert json.loads((run / "validation.json").read_text(encoding="utf-8")) == data
    table = cli("validate", str(run))
    assert table.returncode == 0, table.stderr
    for text in ("liquidations, first 24 h", "$9.50B to $38.00B", "$19.50B", "pass", "n/a", "CoinGlass"):
        assert text in table.stdout
    assert [c["asset"] for c in data["collateral"]] == ["USDE", "WBETH", "BNSOL"]
    assert "collateral lows, shown beside the targets (not judged)" in table.stdout


def test_validate_command_on_a_missing_run(tmp_path: Path) -> None:
    out = cli("validate", str(tmp_path / "nope"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such run directory"]


def test_the_validation_page_lists_every_target() -> None:
    page = (Path(__file__).resolve().parents[3] / "docs" / "validation.md").read_text(encoding="utf-8")
    for t in load_targets().targets:
        assert f"`{t.id}`" in page, t.id
