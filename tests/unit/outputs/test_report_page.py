"""The report and comparison pages: self-contained, sections present exactly when their data is, reproducible."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from perpstress.errors import DataError, PerpstressError, UsageError
from perpstress.outputs.headline import headline_numbers
from perpstress.outputs.report import build_compare, build_report, load_run, write_compare, write_report
from perpstress.outputs.report.pages import timeline

OPTIONAL_SECTIONS = ("collateral", "hedges", "transfers", "validation")


def chart_ids(page: str) -> list[str]:
    return re.findall(r'<div id="(chart-[\w-]+)" class="plotly-graph-div"', page)


def test_report_is_one_self_contained_file(make_run: Callable[..., Path]) -> None:
    run_dir = make_run()
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.count("<script") == page.count("</script>")
    assert not re.search(r"<script[^>]+src=", page)
    assert "<link" not in page
    assert "<img" not in page
    assert "@import" not in page
    # plotly.js is embedded once, and each chart is drawn by it
    assert page.count("Plotly.newPlot(") == len(chart_ids(page)) > 0
    assert len(re.findall(r"plotly\.js v\d", page)) == 1
    assert not list(run_dir.glob(".report.html.*"))  # no temporary file left behind


def test_optional_sections_appear_when_their_data_does(make_run: Callable[..., Path]) -> None:
    full = build_report(load_run(make_run("full")))
    for section in OPTIONAL_SECTIONS:
        assert f'<section id="{section}">' in full
    assert {"chart-collateral", "chart-hedges", "chart-transfers"} <= set(chart_ids(full))
    assert '<td class="fail">FAIL</td>' in full
    assert '<td class="pass">pass</td>' in full
    assert '<td class="na">n/a</td>' in full
    assert "&quot;low&quot;" not in full  # tolerances as text, not raw JSON
    bare = build_report(load_run(make_run("bare", optional=False)))
    for section in OPTIONAL_SECTIONS:
        assert f'<section id="{section}">' not in bare
    assert set(chart_ids(bare)) == {f"chart-{s}" for s in ("prices", "liquidations", "adl", "funds",
                                                             "open-interest", "depth")}  # fmt: skip


def test_headline_cards_show_the_headline_numbers(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run())
    page = build_report(run)
    for h in headline_numbers(run.summary, run.validation):
        if h.card:
            assert f'data-key="{h.key}"' in page
            assert h.text.replace("\u2192", "&#x2192;") in page or h.text in page


def test_same_run_same_bytes(make_run: Callable[..., Path]) -> None:
    run = load_run(make_run())
    assert build_report(run) == build_report(run)


def test_missing_plotly_is_one_line_naming_the_extra(
    make_run: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a))
    with pytest.raises(PerpstressError, match=r"pip install 'perpstress\[report\]'"):
        write_report(make_run())


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"not a run directory \(no summary.json\)"):
        load_run(tmp_path / "empty")


def test_runs_of_different_scenarios_compare(make_run: Callable[..., Path], tmp_path: Path) -> None:
    a = make_run("a", n_markets=4, scenario="alpha")
    b = make_run("b", n_markets=6, scenario="beta", optional=False)
    out = write_compare(a, b, tmp_path / "cmp.html")
    page = out.read_text(encoding="utf-8")
    assert "Only in B: binance:ETH, hyperliquid:ETH." in page
    assert "alpha, seed 1 vs beta, seed 1" in page
    assert {"chart-prices", "chart-liquidations", "chart-adl", "chart-funds", "chart-open-interest",
            "chart-depth"} <= set(chart_ids(page))  # fmt: skip
    assert page.count("Plotly.newPlot(") == len(chart_ids(page))


def test_report_of_a_real_run(quickstart_run: Path, tmp_path: Path) -> None:
    page = write_report(quickstart_run, tmp_path / "r.html").read_text(encoding="utf-8")
    run = load_run(quickstart_run)
    for market in run.summary["prices"]:
        assert market in page
    assert "quickstart, seed 7" in page
    assert (run.summary["scale"], run.summary["population_seed"], run.summary["positions_file"]) == (0.1, None, None)
    assert f"{run.summary['accounts']:,} accounts (crowd scale 0.1)" in page
    # no optional data in today's engine output, so no optional section
    for section in OPTIONAL_SECTIONS:
        assert f'<section id="{section}">' not in page
    assert build_compare(run, run).count("Plotly.newPlot(") >= 8


def test_the_validation_card_and_table_equal_what_validate_wrote(validated_quickstart_run: Path) -> None:
    written = json.loads((validated_quickstart_run / "validation.json").read_text())
    run = load_run(validated_quickstart_run)
    page = build_report(run)
    counts = written["counts"]
    n = sum(counts.values())
    assert f"Validation: {counts['pass']} of {n} targets within tolerance" in page
    card = next(h for h in headline_numbers(run.summary, run.validation) if h.key == "validation_passed")
    assert card.text == f"{counts['pass']} of {n}"
    table = page[page.index('<table class="data validation">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == n + 1  # the header and one row per target
    for target in written["targets"]:
        assert html.escape(target["title"]) in table
        assert html.escape(target["tolerance"]["text"]) in table
        assert html.escape(target["simulated_text"]) in table


def test_a_validation_file_in_another_format_is_refused(make_run: Callable[..., Path]) -> None:
    run = make_run()
    (run / "validation.json").write_text(json.dumps([{"target": "x", "pass": True}]))
    with pytest.raises(DataError, match="written by perpstress validate"):
        load_run(run)


def test_the_timeline_names_the_turning_points(validated_quickstart_run: Path) -> None:
    run = load_run(validated_quickstart_run)
    events = timeline(run)
    whats = [w for _, w, _ in events]
    assert "the news" in whats
    assert any(w.startswith("first liquidation on ") for w in whats)
    news = next(t for t, w, _ in events if w == "the news")
    start = float(run.timeseries.column("ts_ms").to_numpy().min())
    assert news == start + 60_000  # quickstart's shock: at_s = 60
    end = float(run.timeseries.column("ts_ms").to_numpy().max())
    assert all(start <= t <= end for t, _, _ in events)
    assert '<section id="timeline">' in build_report(run)


def test_the_reported_section_appears_with_the_view_and_names_each_feed_rule(
    quickstart_run: Path, tmp_path: Path
) -> None:
    page = build_report(load_run(quickstart_run))
    assert '<section id="reported">' in page
    assert "chart-reported" in chart_ids(page)
    assert "On binance the feed shows at most one liquidation order per symbol and interval" in page
    assert "On hyperliquid it shows every liquidation." in page
    assert "latest order per symbol and 1 s" in page  # Binance's row of the table
    # a run written before the view existed: no section, the rest of the page as before
    old = tmp_path / "old"
    shutil.copytree(quickstart_run, old)
    (old / "liquidations_reported.parquet").unlink()
    summary = json.loads((old / "summary.json").read_text())
    del summary["liquidations"]["reported_by_venue"]
    (old / "summary.json").write_text(json.dumps(summary))
    older = build_report(load_run(old))
    assert '<section id="reported">' not in older
    assert set(chart_ids(older)) == set(chart_ids(page)) - {"chart-reported"}
    # the view without its minute table: the bars alone
    (tmp_path / "bars").mkdir()
    shutil.copytree(quickstart_run, tmp_path / "bars" / "run")
    (tmp_path / "bars" / "run" / "liquidations_reported.parquet").unlink()
    assert "chart-reported" in chart_ids(build_report(load_run(tmp_path / "bars" / "run")))
