"""The report's chart functions on synthetic tables: what each draws adds up to the tables it was given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from perpstress.outputs.report import charts
from perpstress.outputs.report.data import bucket_sums, downsample, load_run

T0 = 1_760_130_000_000


def all_numbers(values: Any) -> np.ndarray:
    return np.asarray(values if values is not None else [], dtype=float)


def test_downsample_keeps_every_bucket_extreme_and_the_cap() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=10_000).cumsum()
    y[7_321] = y.min() - 50  # a one-second wick
    x = np.arange(len(y), dtype=float)
    xs, ys = downsample(x, y, 1000)
    assert len(xs) <= 1000
    assert ys.min() == y.min()
    assert ys.max() == y.max()
    assert np.all(np.diff(xs) > 0)
    assert set(xs) <= set(x)
    same_x, same_y = downsample(x[:500], y[:500], 1000)
    assert np.array_equal(same_x, x[:500])
    assert np.array_equal(same_y, y[:500])


def test_bucket_sums_add_up_per_key() -> None:
    ts = np.array([0, 500, 1_200, 9_999, 10_000, 30_500])
    keys = ["a", "b", "a", "a", "b", "a"]
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    b = bucket_sums(ts, keys, vals, 10_000)
    assert list(b.start_ms) == [0, 10_000, 20_000, 30_000]
    assert list(b.notional["a"]) == [8.0, 0.0, 0.0, 6.0]
    assert list(b.count["b"]) == [1.0, 1.0, 0.0, 0.0]


def test_price_paths_mark_every_liquidated_dollar(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run(n_markets=4))
    liq = run.events["liquidations"]
    fig = charts.price_paths(run.timeseries, liq)
    assert len(fig.layout.annotations) == 4  # one subplot title per market
    markers = [t for t in fig.data if t.mode == "markers"]
    drawn = sum(float(all_numbers(t.customdata)[:, 0].sum()) for t in markers)
    assert drawn == pytest.approx(float(pc.sum(liq["notional_usd"]).as_py()), rel=1e-9)
    longs = [t for t in markers if t.name == "longs liquidated"]
    assert all(t.marker.color == charts.SIDE_COLOURS["long"] for t in longs)
    lines = {t.name for t in fig.data if t.mode == "lines"}
    assert lines == {"index", "mark", "last"}


def test_price_paths_of_many_markets_use_a_dropdown(make_run: Callable[..., Path]) -> None:
    n = charts.SMALL_MULTIPLES_MAX + 3
    run = load_run(make_run(n_markets=n, optional=False, steps=120))
    fig = charts.price_paths(run.timeseries)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [str(m) for m in dict.fromkeys(run.timeseries["market"].to_pylist())]
    for b in buttons:
        visible = b.args[0]["visible"]
        assert len(visible) == len(fig.data)
        assert sum(visible) == 3  # index, mark, last of one market
    assert sum(1 for t in fig.data if t.visible) == 3


def test_long_series_are_thinned_but_keep_the_low(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run(n_markets=1, steps=9_000, optional=False))
    fig = charts.price_paths(run.timeseries, max_points=800)
    mark = next(t for t in fig.data if t.name == "mark")
    assert len(mark.y) <= 800
    assert float(np.min(mark.y)) == pytest.approx(float(pc.min(run.timeseries["mark"]).as_py()))


def test_liquidation_bars_stack_longs_up_and_shorts_down(make_run: Callable[..., Path]) -> None:
    liq = load_run(make_run()).events["liquidations"]
    fig = charts.liquidations_over_time(liq)
    up = sum(float(all_numbers(t.y).sum()) for t in fig.data if t.name.endswith("longs"))
    down = sum(float(all_numbers(t.y).sum()) for t in fig.data if t.name.endswith("shorts"))
    side = liq["side"].to_numpy()
    notional = liq["notional_usd"].to_numpy()
    assert up == pytest.approx(notional[side > 0].sum(), rel=1e-9)
    assert down == pytest.approx(-notional[side < 0].sum(), rel=1e-9)
    assert fig.layout.barmode == "relative"
    binance = [t for t in fig.data if t.name.startswith("binance")]
    assert {t.marker.color for t in binance} == {charts.VENUE_COLOURS["binance"]}
    assert "per 10 s" in fig.layout.title.text  # a ten-minute run gets 10-second windows


def test_adl_chart_totals_per_market(make_run: Callable[..., Path]) -> None:
    adl = load_run(make_run()).events["adl"]
    fig = charts.adl_events(adl)
    per_market = next(t for t in fig.data if t.orientation == "h")
    totals = dict(zip(per_market.y, per_market.x, strict=True))
    for m in set(adl["market"].to_pylist()):
        rows = adl.filter(pc.equal(adl["market"], m))
        assert totals[m] == pytest.approx(float(pc.sum(rows["notional_usd"]).as_py()))
    over_time = sum(float(all_numbers(t.y).sum()) for t in fig.data if t.orientation != "h")
    assert over_time == pytest.approx(float(pc.sum(adl["notional_usd"]).as_py()))


def test_fund_chart_draws_each_venue_once(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run(n_markets=6))
    fig = charts.insurance_funds(run.timeseries)
    names = [t.name for t in fig.data]
    assert names == ["binance", "hyperliquid", "okx", "bybit"]
    binance = fig.data[0]
    assert float(binance.y[-1]) == pytest.approx(run.summary["insurance_funds"]["binance"]["end_usd"])


def test_open_interest_is_a_share_of_its_start_with_usd_on_hover(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run(n_markets=4))
    fig = charts.open_interest(run.timeseries)
    assert len(fig.data) == 4
    for t in fig.data:
        assert float(t.y[0]) == pytest.approx(100.0)
        assert float(t.customdata[-1]) == pytest.approx(run.summary["open_interest"][t.name]["end_usd"])


def test_depth_draws_bids_and_asks_per_market(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run(n_markets=3))
    fig = charts.depth(run.timeseries)
    assert [t.name for t in fig.data] == ["bids", "asks"] * 3
    assert fig.data[0].line.color == charts.DEPTH_COLOURS["bid"]


def test_collateral_chart_shows_only_the_depegged_venue(make_run: Callable[..., Path]) -> None:
    coll = load_run(make_run()).events["collateral"]
    assert charts.depegged_collateral(coll) == ["USDe@binance", "wBETH@binance"]
    fig = charts.collateral_prices(coll)
    assert fig is not None
    assert [a.text for a in fig.layout.annotations] == ["USDe@binance", "wBETH@binance"]
    usde, wbeth = ([t for t in fig.data if t.xaxis == axis] for axis in ("x", "x2"))
    price = next(t for t in usde if t.name == "collateral price")
    assert float(np.min(price.y)) == pytest.approx(0.65, abs=1e-3)
    assert "own spot book" not in [t.name for t in usde]  # priced off its own book: the book is the price line
    book = next(t for t in wbeth if t.name == "own spot book")  # a mixed price: the book it mixes in, drawn too
    mixed = next(t for t in wbeth if t.name == "collateral price")
    assert float(np.min(book.y)) == pytest.approx(1.07 * 0.12, rel=1e-2)
    assert float(np.min(mixed.y)) == pytest.approx(0.2 * 1.07 * 0.12 + 0.8 * 1.07, rel=1e-2)
    calm = coll.filter(pc.equal(coll["venue"], "bybit"))
    assert charts.collateral_prices(calm) is None


def test_collateral_without_a_reference_is_judged_against_its_start() -> None:
    t = pa.table({"ts_ms": [T0, T0 + 1000, T0 + 2000], "venue": ["x"] * 3, "asset": ["wBETH"] * 3,
                  "price": [1.0, 0.9, 0.95]})  # fmt: skip
    assert charts.depegged_collateral(t) == ["wBETH@x"]


def test_broken_hedges_by_cause_and_with_few_columns(make_run: Callable[..., Path]) -> None:
    hedges = load_run(make_run()).events["hedges"]
    fig = charts.broken_hedges(hedges)
    assert {t.name for t in fig.data} == set(hedges["cause"].to_pylist())
    assert sum(len(t.x) for t in fig.data) == hedges.num_rows
    bare = pa.table({"ts_ms": [T0, T0 + 5000], "notional_usd": [1e6, 2e6]})
    fig = charts.broken_hedges(bare)
    assert list(fig.data[0].y) == [1e6, 2e6]
    unusable = charts.broken_hedges(pa.table({"owner": [1]}))
    assert "lacks a time or notional column" in unusable.layout.annotations[0].text


def test_transfer_delays_scatter_then_aggregate(make_run: Callable[..., Path]) -> None:
    transfers = load_run(make_run()).events["transfers"]
    fig = charts.transfer_delays(transfers)
    assert sum(len(t.x) for t in fig.data) == transfers.num_rows - 1  # one never landed
    assert "1 never landed" in fig.layout.title.text
    n = 5_000
    rng = np.random.default_rng(0)
    many = pa.table({"requested_ms": T0 + np.sort(rng.integers(0, 3_600_000, n)), "delay_s": rng.gamma(2, 10, n),
                     "route": ["a->b"] * n})  # fmt: skip
    fig = charts.transfer_delays(many)
    assert [t.name for t in fig.data] == ["a->b max", "a->b median"]
    assert float(np.max(fig.data[0].y)) == pytest.approx(float(np.max(many["delay_s"].to_numpy())))
    assert len(fig.data[0].x) <= 61


def test_overlays_draw_run_a_solid_and_run_b_dashed(make_run: Callable[..., Path]) -> None:
    a = load_run(make_run("a", n_markets=4))
    b = load_run(make_run("b", n_markets=6, seed=2, fund_start=5e6))
    fig = charts.insurance_funds([a.timeseries, b.timeseries], labels=["A", "B"])
    dashes = {t.name: t.line.dash for t in fig.data}
    assert dashes["binance (A)"] == "solid"
    assert dashes["binance (B)"] == "dash"
    assert "bybit (B)" in dashes  # only B has bybit: drawn, not dropped
    prices = charts.price_paths([a.timeseries, b.timeseries], labels=["A", "B"])
    assert [a.text for a in prices.layout.annotations] == [
        str(m) for m in dict.fromkeys(a.timeseries["market"].to_pylist())
    ]
    cum = charts.cumulative_notional([a.events["liquidations"], b.events["liquidations"]], ["A", "B"], "t")
    ends = {t.name: float(t.y[-1]) for t in cum.data}
    assert ends["binance (B)"] == pytest.approx(b.summary["liquidations"]["by_venue"]["binance"])


def test_empty_event_tables_give_a_labelled_empty_chart(make_run: Callable[..., Path]) -> None:
    liq = load_run(make_run()).events["liquidations"].slice(0, 0)
    fig = charts.liquidations_over_time(liq)
    assert not fig.data
    assert fig.layout.annotations[0].text == "no liquidations in this run"


def test_spot_markets_draw_what_they_have_and_have_no_open_interest() -> None:
    n = 30
    t = T0 + np.arange(n) * 1000
    nan = np.full(n, np.nan)
    ts = pa.table(
        {
            "ts_ms": np.concatenate([t, t]),
            "venue": ["binance"] * (2 * n),
            "market": ["binance:BTCUSDT"] * n + ["binance:BTC/USDT"] * n,
            "index": np.concatenate([np.full(n, 100.0), np.full(n, 100.0)]),
            "mark": np.concatenate([np.full(n, 100.0), nan]),
            "last": np.concatenate([np.full(n, 100.1), np.full(n, 99.9)]),
            "depth_bid_1pct_usd": np.full(2 * n, 1e6),
            "depth_ask_1pct_usd": np.full(2 * n, 1e6),
            "open_interest_usd": np.concatenate([np.full(n, 5e7), nan]),
            "insurance_fund_usd": np.full(2 * n, 1e6),
        }
    )
    prices = charts.price_paths(ts)
    spot_axis = prices.layout.annotations[1].text
    assert spot_axis == "binance:BTC/USDT"
    spot_lines = [tr.name for tr in prices.data if tr.xaxis == "x2"]
    assert spot_lines == ["index", "last"]  # no mark on a spot market
    oi = charts.open_interest(ts)
    assert [tr.name for tr in oi.data] == ["binance:BTCUSDT"]
    assert len(charts.depth(ts).data) == 4  # bids and asks of both markets
