"""The report, comparison and sweep pages in a real browser: headless Chromium (Debian's) driven by Playwright.

For each page: every Plotly chart has rendered (a ``.main-svg`` of non-zero size with drawn traces in its plot
area), the console shows no error, the page requests nothing but its own file, and a full-page screenshot is a
real picture (decoded in the browser: many colours, much of it not background). Skips, saying why, when
``/usr/bin/chromium`` or the playwright package is missing; ``.ci/run`` installs Chromium so CI runs it.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package (dev extra)")

CHART_STATE_JS = """
() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => {
  const svg = div.querySelector('.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const drawn = Array.from(div.querySelectorAll(
      '.scatterlayer .trace path.js-line, .scatterlayer .trace .points path, .barlayer .trace .point path, ' +
    '.boxlayer .trace path.box, .boxlayer .trace .points path'))
    .filter(p => (p.getAttribute('d') || '').length > 4 && p.getBBox().width + p.getBBox().height > 0).length;
  return {id: div.id, width: box.width, height: box.height, drawn: drawn, traces: (div.data || []).length};
})
"""

DECODE_PNG_JS = """
async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  const colours = new Set();
  let painted = 0, sampled = 0;
  for (let i = 0; i < data.length; i += 4 * 7) {
    const r = data[i], g = data[i + 1], b = data[i + 2];
    colours.add((r << 16) | (g << 8) | b);
    sampled += 1;
    // background: page grey (#f6f7f9) and white
    if (!((r >= 244 && g >= 245 && b >= 247))) painted += 1;
  }
  return {width: img.width, height: img.height, colours: colours.size, painted: painted / sampled};
}
"""


OVERFLOW_JS = """
() => {
  const out = [];
  const boxes = '.card, section, header, nav, .verdict, main, td, th';
  const inside = (r, b) => r.left >= b.left - 1 && r.right <= b.right + 1 &&
                           r.top >= b.top - 1 && r.bottom <= b.bottom + 1;
  for (const el of document.querySelectorAll('.card .value, .card .label, .card .detail, h1, h2, .sub, nav a, ' +
                                             '.verdict, td, th, p.intro, p.note')) {
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
      out.push({what: 'cut', text: el.innerText.slice(0, 80)});
    const box = el.parentElement && el.parentElement.closest(boxes);
    if (box && !inside(el.getBoundingClientRect(), box.getBoundingClientRect()))
      out.push({what: 'outside its box', text: el.innerText.slice(0, 80)});
  }
  for (const div of document.querySelectorAll('.plotly-graph-div')) {
    const d = div.getBoundingClientRect();
    for (const t of div.querySelectorAll('.main-svg text')) {
      const r = t.getBoundingClientRect();
      const label = div.id + ': ' + t.textContent.slice(0, 60);
      if (r.width > 0 && !inside(r, d)) out.push({what: 'chart text outside its chart', text: label});
      if (/&(quot|amp|lt|gt|#x?[0-9a-f]+);/i.test(t.textContent))
        out.push({what: 'double-escaped chart text', text: label});
    }
  }
  if (document.body.innerText.includes('&quot;') || document.body.innerText.includes('&amp;'))
    out.push({what: 'double-escaped text', text: ''});
  return out;
}
"""

CARDS_JS = """
() => Object.fromEntries(Array.from(document.querySelectorAll('.card[data-key]'))
  .map(c => [c.dataset.key, c.querySelector('.value').innerText]))
"""


@dataclass
class Visit:
    """What a page did in the browser."""

    charts: list[dict[str, Any]]
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    overflow: list[dict[str, str]] = field(default_factory=list)
    """Text cut off, outside its card, cell or section, chart text outside its chart, double-escaped text."""
    cards: dict[str, str] = field(default_factory=dict)
    """Each headline card's value as the page shows it, by key."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


def visit(browser: Any, page_path: Path, png: Path) -> Visit:
    """Open ``page_path`` over file://, wait for every chart, record errors and requests, screenshot it."""
    url = page_path.resolve().as_uri()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    result = Visit(charts=[])
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.console_errors.append(str(e)))
    page.on("request", lambda r: result.requests.append(r.url))
    # Anything but the page itself is refused (and recorded above), so a stray fetch fails the test, not the network.
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page.goto(url, wait_until="load")
    with contextlib.suppress(sync_api.TimeoutError):  # assert_rendered names the charts that never drew
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.plotly-graph-div')).every(d => d.querySelector('.main-svg'))",
            timeout=20_000,
        )
    page.wait_for_timeout(300)
    result.charts = page.evaluate(CHART_STATE_JS)
    result.sections = page.evaluate("Array.from(document.querySelectorAll('section')).map(s => s.id)")
    result.overflow = page.evaluate(OVERFLOW_JS)
    result.cards = page.evaluate(CARDS_JS)
    page.screenshot(path=str(png), full_page=True)
    decoder = context.new_page()
    result.screenshot = decoder.evaluate(DECODE_PNG_JS, base64.b64encode(png.read_bytes()).decode())
    context.close()
    return result


def assert_rendered(v: Visit, expected_charts: set[str], min_height: int = 2000) -> None:
    ids = {c["id"] for c in v.charts}
    assert expected_charts <= ids, f"missing charts: {expected_charts - ids}"
    for c in v.charts:
        assert c["width"] > 300, f"{c['id']} has no size: {c}"
        assert c["height"] > 150, f"{c['id']} has no size: {c}"
        assert c["traces"] > 0, f"{c['id']} has no data"
        assert c["drawn"] > 0, f"{c['id']} drew nothing in its plot area: {c}"
    assert v.console_errors == []
    assert v.overflow == [], f"text that does not fit: {v.overflow[:10]}"
    assert v.requests[0].startswith("file://")
    assert set(v.requests) == {v.requests[0]}, f"requests beyond the page itself: {v.requests}"
    shot = v.screenshot
    assert shot["width"] == 1400
    assert shot["height"] > min_height
    assert shot["colours"] > 200  # charts, text and cards, not a blank or single-colour page
    assert shot["painted"] > 0.02


CORE = {"chart-prices", "chart-liquidations", "chart-adl", "chart-funds", "chart-open-interest", "chart-depth"}
ENGINE_RUN = CORE | {"chart-reported"}
"""The charts of a run the engine wrote (the synthetic runs have no reported view)."""


def test_quickstart_report_renders_offline(browser: Any, quickstart_run: Path, tmp_path: Path) -> None:
    from perpstress.outputs.report import write_report

    v = visit(browser, write_report(quickstart_run, tmp_path / "report.html"), tmp_path / "report.png")
    assert_rendered(v, ENGINE_RUN)
    assert len(v.charts) == len(ENGINE_RUN)


def test_the_cards_show_the_summary_and_validation(
    browser: Any, validated_quickstart_run: Path, tmp_path: Path
) -> None:
    import json

    from perpstress.outputs.headline import headline_numbers
    from perpstress.outputs.report import load_run, write_report

    run = load_run(validated_quickstart_run)
    v = visit(browser, write_report(validated_quickstart_run, tmp_path / "report.html"), tmp_path / "report.png")
    assert_rendered(v, ENGINE_RUN)
    expected = {h.key: h.text for h in headline_numbers(run.summary, run.validation) if h.card}
    assert v.cards == expected
    counts = json.loads((validated_quickstart_run / "validation.json").read_text())["counts"]
    assert v.cards["validation_passed"] == f"{counts['pass']} of {sum(counts.values())}"
    assert v.sections[0] == "timeline"


def test_a_short_oct_2025_report_fits(browser: Any, tmp_path: Path) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.report import write_report
    from perpstress.outputs.run import run_scenario

    scenario = Scenario.load("oct-2025").with_(duration_s=2400)
    out = run_scenario(scenario, tmp_path / "oct", scale=0.01).path
    assert out is not None
    v = visit(browser, write_report(out), tmp_path / "oct.png")
    assert_rendered(v, ENGINE_RUN)


REPORTED_JS = """
() => {
  const rows = {};
  for (const tr of document.querySelectorAll('table.reported tr[data-venue]'))
    rows[tr.dataset.venue] = Object.fromEntries(
      Array.from(tr.querySelectorAll('td[data-field]')).map(td => [td.dataset.field, td.innerText]));
  const bars = {};
  for (const t of document.getElementById('chart-reported').data.filter(t => t.type === 'bar'))
    bars[t.name] = Object.fromEntries(Array.from(t.y).map((venue, i) => [venue, Array.from(t.x)[i]]));
  const labels = Array.from(document.querySelectorAll('#chart-reported .barlayer text')).map(t => t.textContent);
  return {rows, bars, labels};
}
"""


def test_the_reported_section_shows_the_summary(browser: Any, quickstart_run: Path, tmp_path: Path) -> None:
    import json

    from perpstress.outputs.headline import usd
    from perpstress.outputs.report import write_report

    view = json.loads((quickstart_run / "summary.json").read_text())["liquidations"]["reported_by_venue"]
    page_path = write_report(quickstart_run, tmp_path / "report.html")
    v = visit(browser, page_path, tmp_path / "report.png")
    assert_rendered(v, ENGINE_RUN)
    context = browser.new_context()
    page = context.new_page()
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("document.querySelector('#chart-reported .main-svg')", timeout=20_000)
    shown = page.evaluate(REPORTED_JS)
    context.close()
    assert set(shown["rows"]) == set(view) == {"binance", "hyperliquid"}
    for venue, d in view.items():
        assert shown["rows"][venue] == {
            "true_count": f"{d['true_count']:,}",
            "reported_count": f"{d['reported_count']:,}",
            "true_notional_usd": usd(d["true_notional_usd"]),
            "reported_notional_usd": usd(d["reported_notional_usd"]),
        }
        assert shown["bars"]["true"][venue] == d["true_notional_usd"]
        assert shown["bars"]["reported"][venue] == d["reported_notional_usd"]
    binance = view["binance"]
    assert binance["reported_count"] < binance["true_count"]  # the throttled feed showed fewer
    assert any(label.startswith(f"{usd(binance['reported_notional_usd'])} of ") for label in shown["labels"])


def test_report_with_every_optional_section_renders(
    browser: Any, make_run: Callable[..., Path], tmp_path: Path
) -> None:
    from perpstress.outputs.report import write_report
    from perpstress.outputs.report.charts import SMALL_MULTIPLES_MAX

    run_dir = make_run(n_markets=SMALL_MULTIPLES_MAX + 2)  # per-market charts switch to a dropdown
    v = visit(browser, write_report(run_dir), tmp_path / "full.png")
    assert_rendered(v, CORE | {"chart-collateral", "chart-hedges", "chart-transfers"})
    assert "validation" in v.sections


def test_comparison_renders_offline(browser: Any, quickstart_run: Path, tmp_path: Path) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.report import write_compare
    from perpstress.outputs.run import run_scenario

    bigger = Scenario.load("quickstart").with_(venues__hyperliquid__insurance_fund__initial_usd=20e6)
    b = run_scenario(bigger, tmp_path / "bigger-fund", scale=0.1).path
    assert b is not None
    v = visit(browser, write_compare(quickstart_run, b, tmp_path / "compare.html"), tmp_path / "compare.png")
    assert_rendered(v, CORE | {"chart-liquidations-by-market", "chart-adl-by-market"})


def test_sweep_page_renders_offline(browser: Any, tmp_path: Path) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.sweep import parse_grid, plan_sweep, run_sweep

    tiny = Scenario.load("quickstart").with_(duration_s=40, shock__at_s=5, shock__drift_s=20)
    grid = parse_grid({"grid": {"venues.binance.adl": [{"rule": "ranked_queue"},
                                                       {"rule": "capped_pro_rata", "max_haircut": 0.5}]}},
                      "grid.toml")  # fmt: skip
    result = run_sweep(plan_sweep(tiny, grid, 3, scale=0.1), tmp_path / "sweep", executor="serial")
    if result.report is None:
        pytest.skip(f"plotly missing: {result.report_problem}")
    v = visit(browser, result.report, tmp_path / "sweep.png")
    assert_rendered(v, {"chart-distributions", "chart-paired"}, min_height=1500)
    chart, paired = v.charts
    assert chart["traces"] == (2 + 3) * 6  # per policy metric: a box per cell and a line per seed
    assert chart["drawn"] >= (2 + 3) * 6
    assert paired["traces"] == 2 * 6  # per policy metric: cell 1 against cell 0, paired and unpaired
    assert paired["drawn"] >= 2 * 6
    assert v.sections == ["cells", "distributions", "per-cell", "paired"]


ATTRIBUTION_JS = """
() => Array.from(document.querySelectorAll('table.attribution[data-level="group"][data-kind="drawdown"] tr[data-row]'))
  .map(r => [r.dataset.row, r.querySelector('td[data-key="base-drawdown"]').innerText,
             r.querySelector('td[data-key="no-cascade-share"]').innerText])
"""


def test_attribution_page_renders_and_shows_the_tables_numbers(browser: Any, tmp_path: Path) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.report.attribution import pct
    from perpstress.studies.attribution import plan_attribution, run_attribution

    tiny = Scenario.load("quickstart").with_(duration_s=120)
    result = run_attribution(plan_attribution(tiny, 2, scale=0.1), tmp_path / "attr", executor="serial")
    page = tmp_path / "attr" / "attribution.html"
    v = visit(browser, page, tmp_path / "attr.png")
    assert_rendered(v, {"chart-paths", "chart-shares"}, min_height=1500)
    assert v.sections == ["groups", "paths", "shares", "venues", "markets"]
    context = browser.new_context()
    shown = context.new_page()
    shown.goto(page.resolve().as_uri())
    rows = shown.evaluate(ATTRIBUTION_JS)
    context.close()
    by = {(r["name"], r["variant"]): r for r in result.rows("group")}
    assert [name for name, _, _ in rows] == ["majors", "long tail"]
    for name, base_text, share_text in rows:
        assert base_text.split(" [")[0] == pct(by[name, "base"]["drawdown"])
        assert share_text.split(" [")[0] == pct(by[name, "no-cascade"]["share"])


def test_paired_comparison_renders_offline(browser: Any, tmp_path: Path) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.paired import resolve_runs
    from perpstress.outputs.report import write_paired_compare
    from perpstress.sweep import parse_grid, plan_sweep, run_sweep

    tiny = Scenario.load("quickstart").with_(duration_s=40, shock__at_s=5, shock__drift_s=20)
    grid = parse_grid({"grid": {"venues.binance.adl.rule": ["ranked_queue", "capped_pro_rata"]}}, "grid.toml")
    root = run_sweep(plan_sweep(tiny, grid, 4, scale=0.1), tmp_path / "sweep", executor="serial", report=False).root
    a, b = resolve_runs(f"{root}@0"), resolve_runs(f"{root}@1")
    v = visit(browser, write_paired_compare(a, b, tmp_path / "paired.html"), tmp_path / "paired.png")
    assert_rendered(v, CORE | {"chart-differences"})
    differences = next(c for c in v.charts if c["id"] == "chart-differences")
    assert differences["drawn"] >= 7 * 3  # per headline number drawn: the seeds' dots, the paired and unpaired marks
    assert v.sections[:2] == ["headline", "differences"]


COLLATERAL_TRACES_JS = """
() => {
  const div = document.getElementById('chart-collateral');
  const drawn = Array.from(div.querySelectorAll('.scatterlayer .trace')).map(
    g => (g.querySelector('path.js-line') || {getAttribute: () => ''}).getAttribute('d').length > 4);
  return {names: div.data.map(t => t.name), drawn: drawn, legend: Array.from(
    div.querySelectorAll('.legend .traces .legendtext')).map(t => t.textContent)};
}
"""


def test_the_collateral_chart_draws_a_mixed_prices_own_book(
    browser: Any, make_run: Callable[..., Path], tmp_path: Path
) -> None:
    """wBETH's margin price mixes its own book in: the book's fall is drawn beside it, and named in the legend; the
    validation section lists the collateral lows below the targets."""
    from perpstress.outputs.report import write_report

    page_path = write_report(make_run())
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("document.querySelector('#chart-collateral .main-svg') !== null", timeout=20_000)
    state = page.evaluate(COLLATERAL_TRACES_JS)
    lows = page.evaluate(
        "Array.from(document.querySelectorAll('#validation table.collateral-lows tbody tr')).map(r => "
        "[r.dataset.asset, r.querySelector('[data-field=book_low]').textContent, r.offsetHeight > 0])"
    )
    context.close()
    assert lows[:2] == [["USDE", "0.65", True], ["WBETH", "0.1284", True]]  # beside the targets, with their lows
    assert state["names"].count("own spot book") == 1  # wBETH's; USDe's book is its price line
    assert all(state["drawn"])
    assert len(state["drawn"]) == len(state["names"])
    assert "own spot book" in state["legend"]
