"""The reported view of real runs: what the venues' public feeds would have shown of each run's liquidations.

The runs are the three one-minute ``tiny`` runs (``tests/unit/conftest.py``): Binance (feed throttled to the latest
order per symbol and second) and Hyperliquid (every liquidation public). The view is recomputed here from the
run's own ``events/liquidations.parquet`` with pandas, independently of :mod:`perpstress.rules.feed`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import perpstress
from perpstress.config.venue import LiquidationFeedRule, VenueConfig
from perpstress.presets import available_presets

THROTTLED = {"binance", "okx"}


def runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("summary.json"))


def test_binance_and_okx_throttle_their_feed_the_others_show_every_order() -> None:
    for name in available_presets():
        feed = VenueConfig.model_validate({"preset": name}).liquidation_feed
        expected = LiquidationFeedRule.LATEST_PER_INTERVAL if name in THROTTLED else LiquidationFeedRule.EVERY_ORDER
        assert feed.rule is expected, name
        if name in THROTTLED:
            assert feed.interval_s == 1.0


def test_reported_never_exceeds_true_and_equals_it_where_every_order_is_public(tiny_runs: Path) -> None:
    fewer = 0
    for run in runs(tiny_runs):
        summary = json.loads((run / "summary.json").read_text())
        view = summary["liquidations"]["reported_by_venue"]
        assert set(view) == {"binance", "hyperliquid"}
        for venue, v in view.items():
            assert isinstance(v["true_count"], int)
            assert isinstance(v["reported_count"], int)
            assert v["true_notional_usd"] == pytest.approx(summary["liquidations"]["by_venue"].get(venue, 0.0))
            assert v["reported_count"] <= v["true_count"]
            assert v["reported_notional_usd"] <= v["true_notional_usd"] * (1 + 1e-12)
            if v["rule"] == "every_order":
                assert (v["reported_count"], v["reported_notional_usd"]) == (v["true_count"], v["true_notional_usd"])
                assert v["interval_s"] is None
            fewer += v["reported_count"] < v["true_count"]
        assert sum(v["true_count"] for v in view.values()) == summary["liquidations"]["count"]
    assert fewer > 0, "no run had two liquidations in one second and market on Binance: the test shows nothing"


def test_the_view_is_the_latest_order_per_market_and_second(tiny_runs: Path) -> None:
    for run in runs(tiny_runs):
        summary = json.loads((run / "summary.json").read_text())
        events = pq.read_table(run / "events" / "liquidations.parquet").to_pandas()
        events["second"] = events["ts_ms"] // 1000
        throttled = events[events["venue"] == "binance"]
        latest = throttled.groupby(["market", "second"], sort=False).tail(1)  # last row in processing order
        view = summary["liquidations"]["reported_by_venue"]["binance"]
        assert view["reported_count"] == len(latest) == throttled.groupby(["market", "second"]).ngroups
        assert view["reported_notional_usd"] == pytest.approx(latest["notional_usd"].sum(), rel=1e-12)


def test_the_minute_table_sums_to_the_summary(tiny_runs: Path) -> None:
    for run in runs(tiny_runs):
        summary = json.loads((run / "summary.json").read_text())
        table = pq.read_table(run / "liquidations_reported.parquet").to_pandas()
        assert list(table.columns) == [
            "ts_ms",
            "venue",
            "rule",
            "true_count",
            "true_notional_usd",
            "reported_count",
            "reported_notional_usd",
        ]
        assert (table["ts_ms"] % 60_000 == 0).all()
        minutes = table.groupby("venue")["ts_ms"].apply(lambda s: list(s.diff().dropna().unique()))
        assert all(d in ([], [60_000]) for d in minutes), "every minute of the run, in order"
        totals = table.groupby("venue").sum(numeric_only=True)
        for venue, v in summary["liquidations"]["reported_by_venue"].items():
            assert totals.loc[venue, "true_count"] == v["true_count"]
            assert totals.loc[venue, "reported_count"] == v["reported_count"]
            assert totals.loc[venue, "true_notional_usd"] == pytest.approx(v["true_notional_usd"], rel=1e-12)
            assert totals.loc[venue, "reported_notional_usd"] == pytest.approx(v["reported_notional_usd"], rel=1e-12)
        assert (table["reported_count"] <= table["true_count"]).all()


def test_reported_is_one_query_over_many_runs(tiny_runs: Path) -> None:
    frame = perpstress.query(
        tiny_runs,
        "SELECT run_id, venue, sum(true_count) AS true_n, sum(reported_count) AS reported_n, "
        "sum(reported_notional_usd) AS reported_usd FROM liquidations_reported GROUP BY ALL ORDER BY ALL",
    )
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 2 * len(runs(tiny_runs))
    for row in frame.itertuples():
        v = json.loads((tiny_runs / row.run_id / "summary.json").read_text())["liquidations"]["reported_by_venue"]
        assert (row.true_n, row.reported_n) == (v[row.venue]["true_count"], v[row.venue]["reported_count"])
        assert row.reported_usd == pytest.approx(v[row.venue]["reported_notional_usd"], rel=1e-12)
