"""What goes on the report page and the comparison page, in which order, with which words (needs Plotly)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import plotly.offline

import perpstress
from perpstress.errors import PerpstressError
from perpstress.outputs.headline import compare_headlines, headline_numbers, percent, usd
from perpstress.outputs.paired import RunSet, paired_headlines, seeds_note
from perpstress.outputs.report import charts
from perpstress.outputs.report.data import RunData, column, markets, validation_counts
from perpstress.outputs.report.html import (
    Section,
    cards,
    collateral_lows_table,
    comparison_table,
    esc,
    page,
    paired_table,
    reported_table,
    timeline_table,
    validation_table,
    verdict,
)


def _utc(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _subtitle(run: RunData) -> str:
    s = run.summary
    t = column(run.timeseries, "ts_ms")
    parts = []
    steps = s.get("steps")
    if steps:
        step_s = float(s.get("simulated_seconds", 0.0)) / steps
        parts.append(f"{steps:,} steps of {step_s:g} s")
    if len(t):
        parts.append(f"{_utc(float(t.min()))} to {_utc(float(t.max()))}")
    if "accounts" in s:
        scaled = s.get("scale") not in (None, 1.0) and not s.get("positions_file")
        parts.append(f"{s['accounts']:,} accounts" + (f" (crowd scale {s['scale']:g})" if scaled else ""))
    if s.get("positions_file"):
        parts.append(f"positions from <code>{esc(Path(str(s['positions_file'])).name)}</code>")
    if "config_hash" in s:
        parts.append(f"config <code>{esc(str(s['config_hash'])[:12])}</code>")
    if run.path is not None:
        parts.append(f"run <code>{esc(run.path.name)}</code>")
    return " &middot; ".join(parts)


def footer() -> str:
    return (
        f"perpstress {esc(perpstress.__version__)} &middot; Plotly {esc(plotly.__version__)} embedded: this page "
        "works offline &middot; all times UTC"
    )


def _market_table(summary: Mapping[str, Any]) -> str:
    """Per market: mark start, low and end, worst drawdown, liquidated and ADL notional, open interest."""
    prices = summary.get("prices") or {}
    liq = (summary.get("liquidations") or {}).get("by_market", {})
    adl = (summary.get("adl") or {}).get("by_market", {})
    oi = summary.get("open_interest") or {}
    keys = list(dict.fromkeys([*prices, *liq, *adl, *oi]))
    if not keys:
        return ""
    head = ("market", "mark start", "low", "end", "worst drawdown", "liquidated", "ADL", "open interest")
    rows = []
    for k in keys:
        p = prices.get(k, {})
        o = oi.get(k, {})
        venue = k.split(":", 1)[0]
        dot = f'<span style="color:{charts.venue_colour(venue)}">&#9679;</span> '
        dd = p.get("max_drawdown")
        cells = [
            f"<td>{dot}{esc(k)}</td>",
            *(f'<td class="num">{p[f]:,.6g}</td>' if f in p else "<td></td>" for f in ("start", "min", "end")),
            f'<td class="num {"bad" if dd is not None and dd < -0.2 else ""}">{percent(dd)}</td>',
            f'<td class="num">{usd(liq.get(k, 0.0))}</td>',
            f'<td class="num">{usd(adl.get(k, 0.0))}</td>',
            f'<td class="num">{usd(o.get("start_usd"))} &rarr; {usd(o.get("end_usd"))}</td>' if o else "<td></td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    th = "".join(f"<th>{h}</th>" for h in head)
    return f'<table class="data markets"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _and(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _reported_intro(view: Mapping[str, Mapping[str, Any]]) -> str:
    """The reported section's sentence, naming the venues whose feed throttles and those that show every order."""
    throttled = [v for v, d in view.items() if d.get("rule") != "every_order"]
    every = [v for v in view if v not in throttled]
    parts = ["Public tallies of a crash add up what the venues' public feeds showed."]
    if throttled:
        parts.append(
            f"On {esc(_and(throttled))} the feed shows at most one liquidation order per symbol and interval "
            "(the latest), so public counts there are floors."
        )
    if every:
        parts.append(f"On {esc(_and(every))} it shows every liquidation.")
    parts.append("Each venue's rule and its source: <code>perpstress presets NAME</code>.")
    return " ".join(parts)


def report_page(run: RunData) -> str:
    """The report of one run: headline cards, a market table, then one section per chart the run has data for."""
    ts = run.timeseries
    liq = run.event("liquidations")
    adl = run.event("adl")
    t = column(ts, "ts_ms")
    span = (float(t.min()), float(t.max())) if len(t) else None
    sections = [
        Section(
            "markets",
            "Markets at a glance",
            "Mark price path, liquidations, ADL and open interest "
            "(start &rarr; end) per market; drawdowns worse than 20% in red.",
            body=_market_table(run.summary),
        )
    ]
    sections.append(
        Section(
            "prices",
            "Price paths",
            "Index (grey, dotted), mark (dark) and last trade (blue) per market. Margin is checked against the "
            "mark. Red markers are bursts of liquidated longs, green of shorts; a marker's area is the notional "
            "liquidated in its window. Drag to zoom (all plots follow), double-click to reset.",
            charts.price_paths(ts, liq),
        )
    )
    if liq is not None:
        sections.append(
            Section(
                "liquidations",
                "Liquidations over time",
                "Notional liquidated per window by venue: longs above the line, shorts "
                "(hatched) below. Hover for the count.",
                charts.liquidations_over_time(liq, time_range=span),
            )
        )
    elif "liquidations" in run.events:
        sections.append(Section("liquidations", "Liquidations over time", note="No liquidations in this run."))
    reported = (run.summary.get("liquidations") or {}).get("reported_by_venue")
    if reported:
        sections.append(
            Section(
                "reported",
                "As the public saw it",
                _reported_intro(reported),
                charts.reported_liquidations(reported, run.reported, time_range=span),
                body=reported_table(reported),
            )
        )
    if adl is not None:
        sections.append(
            Section(
                "adl",
                "Auto-deleveraging",
                "Positions closed against bankrupt ones when the "
                "insurance fund could not (or by rule would not) absorb the loss.",
                charts.adl_events(adl, time_range=span),
            )
        )
    elif "adl" in run.events:
        sections.append(Section("adl", "Auto-deleveraging", note="No ADL in this run."))
    sections.append(
        Section(
            "funds",
            "Insurance funds",
            "Each venue's fund: fees and liquidation surplus in, "
            "bankruptcy gaps out. Below zero the venue absorbed more than the fund held.",
            charts.insurance_funds(ts),
        )
    )
    sections.append(
        Section(
            "open-interest",
            "Open interest",
            "One side's open interest per perpetual market, "
            "one plot per venue; it falls as positions are liquidated, ADL'd or closed.",
            charts.open_interest(ts),
        )
    )
    sections.append(
        Section(
            "depth",
            "Order-book depth",
            "Resting bids (green) and asks (red) within 1% of the "
            "mid price: the liquidity a liquidation order can hit before moving the price 1%.",
            charts.depth(ts),
        )
    )
    sections += _optional_sections(run)
    events = timeline(run)
    if events:
        sections.insert(0, Section("timeline", "What happened when", "The night in order: the news, the first "
                                   "liquidation and ADL on each venue, collateral depegs, each fund's low and the "
                                   "books' thinnest moment.", body=timeline_table(events)))  # fmt: skip
    top = cards(headline_numbers(run.summary, run.validation))
    if run.validation:
        top = verdict(validation_counts(run.validation)) + top
    title = f"perpstress report: {run.title}"
    return page(title, _subtitle(run), top, sections, plotly.offline.get_plotlyjs(), footer())


def timeline(run: RunData) -> list[tuple[float, str, str]]:
    """``(ts_ms, what, detail)`` of the night's turning points found in the run's tables: the news (the shock's
    time, from the run's ``scenario.toml``), the first liquidation and the first ADL fill per venue, each collateral
    depeg's start and low, each fund's minimum (when below its start) and the books' total depth at its trough."""
    out: list[tuple[float, str, str]] = []
    ts = column(run.timeseries, "ts_ms")
    if len(ts) == 0:
        return out
    t0 = float(ts.min())
    if run.path is not None and (run.path / "scenario.toml").is_file():
        import tomllib

        shock = tomllib.loads((run.path / "scenario.toml").read_text(encoding="utf-8")).get("shock") or {}
        if isinstance(shock.get("at_s"), int | float):
            out.append((t0 + 1000.0 * float(shock["at_s"]), "the news", f"the shock ({shock.get('kind', '')}) hits"))
    for name, what in (("liquidations", "first liquidation"), ("adl", "first ADL")):
        table = run.event(name)
        if table is None or table.num_rows == 0:
            continue
        rows = table.to_pydict()
        first: dict[str, tuple[float, str]] = {}
        for i, (t, venue) in enumerate(zip(rows["ts_ms"], rows["venue"], strict=True)):
            if name == "liquidations" and rows.get("kind", [""] * len(rows["ts_ms"]))[i] == "adl":
                continue
            if venue not in first or t < first[venue][0]:
                first[venue] = (float(t), str(rows["market"][i]))
        out += [(t, f"{what} on {venue}", market) for venue, (t, market) in first.items()]
    collateral = run.event("collateral")
    if collateral is not None and collateral.num_rows:
        rows = collateral.to_pydict()
        pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for t, venue, asset, price, ref in zip(rows["ts_ms"], rows["venue"], rows["asset"], rows["price"],
                                               rows["reference_price"], strict=True):  # fmt: skip
            if ref and ref > 0 and price == price:
                pairs.setdefault((venue, asset), []).append((float(t), float(price) / float(ref)))
        for (venue, asset), path in pairs.items():
            below = [p for p in path if p[1] < 1 - charts.DEPEG_THRESHOLD]
            if below:
                low = min(path, key=lambda p: p[1])
                out.append((below[0][0], f"{asset} depegs on {venue}", f"{below[0][1]:.3f} of its reference"))
                out.append((low[0], f"{asset} at its low on {venue}", f"{low[1]:.3f} of its reference"))
    venue_col = run.timeseries.column("venue").to_pylist()
    fund = column(run.timeseries, "insurance_fund_usd") if "insurance_fund_usd" in run.timeseries.column_names else None
    if fund is not None:
        for venue in dict.fromkeys(venue_col):
            sel = np.array([v == venue for v in venue_col])
            f, t = fund[sel], ts[sel]
            if len(f) and np.isfinite(f).any() and np.nanmin(f) < f[0]:
                k = int(np.nanargmin(f))
                out.append((float(t[k]), f"{venue}'s fund at its low", f"{usd(float(f[k]))} (from {usd(float(f[0]))})"))
    if "depth_bid_1pct_usd" in run.timeseries.column_names:
        depth = column(run.timeseries, "depth_bid_1pct_usd") + column(run.timeseries, "depth_ask_1pct_usd")
        steps, inverse = np.unique(ts, return_inverse=True)
        total = np.bincount(inverse, weights=np.nan_to_num(depth), minlength=len(steps))
        k = int(np.argmin(total))
        if total[0] > 0 and total[k] < total[0]:
            out.append((float(steps[k]), "books at their thinnest", f"depth within 1 % {usd(float(total[k]))}, "
                        f"{total[k] / total[0]:.0%} of the start"))  # fmt: skip
    return out


def _optional_sections(run: RunData) -> list[Section]:
    out = []
    collateral = run.event("collateral")
    if collateral is not None:
        fig = charts.collateral_prices(collateral)
        out.append(
            Section(
                "collateral",
                "Collateral prices",
                "Collateral as each venue values it, against its reference price, for assets that depegged on a venue.",
                fig,
                note=""
                if fig is not None
                else f"No collateral asset fell more than "
                f"{charts.DEPEG_THRESHOLD:.0%} below its reference in this run.",
            )
        )
    hedges = run.event("hedges")
    if hedges is not None:
        out.append(
            Section(
                "hedges",
                "Broken hedges",
                "Hedged books that lost a leg: one side liquidated or ADL'd while the other stayed open.",
                charts.broken_hedges(hedges),
            )
        )
    transfers = run.event("transfers")
    if transfers is not None:
        out.append(
            Section(
                "transfers",
                "Transfer delays",
                "Collateral moved between venues is unusable until it lands; congestion stretches the delay.",
                charts.transfer_delays(transfers),
            )
        )
    if run.validation:
        passed = validation_counts(run.validation)["pass"]
        out.append(
            Section(
                "validation",
                "Validation",
                f"Simulated figures against real ones from the cited "
                f"sources: {passed} of {len(run.validation)} within tolerance.",
                body=validation_table(run.validation)
                + (collateral_lows_table(run.collateral_lows) if run.collateral_lows else ""),
            )
        )
    return out


def compare_page(a: RunData, b: RunData) -> str:
    """Two runs compared: their headline numbers side by side, then charts overlaid (A solid, B dashed)."""
    diffs = compare_headlines(headline_numbers(a.summary, a.validation), headline_numbers(b.summary, b.validation))
    market_note, sections = overlay_sections(a, b)
    top = (
        '<section id="headline"><h2>Headline numbers</h2><p class="intro">B against A; green where B lost less, '
        f"red where it lost more.</p>{comparison_table(diffs, a.title, b.title)}"
        f'<p class="intro">{market_note}</p></section>'
    )
    title = f"perpstress comparison: {a.title} vs {b.title}"
    subtitle = f"A: {_subtitle(a)}<br>B: {_subtitle(b)}"
    return page(title, subtitle, top, sections, plotly.offline.get_plotlyjs(), footer())


def overlay_sections(a: RunData, b: RunData) -> tuple[str, list[Section]]:
    """The charts of two runs overlaid (A solid, B dashed), and a sentence (HTML) naming the markets they share."""
    labels = ("A", "B")
    ts = [a.timeseries, b.timeseries]
    ma, mb = markets(a.timeseries), markets(b.timeseries)
    common = [m for m in ma if m in mb]
    only_a = [m for m in ma if m not in mb]
    only_b = [m for m in mb if m not in ma]
    market_note = f"Markets in both runs: {esc(', '.join(common) or 'none')}."
    if only_a:
        market_note += f" Only in A: {esc(', '.join(only_a))}."
    if only_b:
        market_note += f" Only in B: {esc(', '.join(only_b))}."
    events = {n: [a.event(n), b.event(n)] for n in ("liquidations", "adl")}
    sections = [
        Section(
            "prices",
            "Price paths",
            "Mark price per market both runs have: run A solid, run B dashed.",
            charts.price_paths(ts, labels=labels) if common else None,
            note="" if common else "The runs have no market in common.",
        ),
        Section(
            "liquidations",
            "Liquidations",
            "Cumulative liquidated notional per venue: A solid, B dashed.",
            charts.cumulative_notional(
                events["liquidations"], labels, "Liquidated notional per venue, cumulative, USD: A solid, B dashed"
            ),
        ),
        Section(
            "liquidations-by-market",
            "Liquidations by market",
            "Total liquidated notional per market, A plain, B hatched.",
            charts.notional_by_market(events["liquidations"], labels, "Liquidated notional per market, USD"),
        ),
        Section(
            "adl",
            "Auto-deleveraging",
            "Cumulative ADL notional per venue: A solid, B dashed.",
            charts.cumulative_notional(
                events["adl"], labels, "Auto-deleveraged notional per venue, cumulative, USD: A solid, B dashed"
            ),
        ),
        Section(
            "adl-by-market",
            "ADL by market",
            "Total ADL notional per market, A plain, B hatched.",
            charts.notional_by_market(events["adl"], labels, "Auto-deleveraged notional per market, USD"),
        ),
        Section(
            "funds",
            "Insurance funds",
            "Fund balance per venue: A solid, B dashed.",
            charts.insurance_funds(ts, labels=labels),
        ),
        Section(
            "open-interest",
            "Open interest",
            "Markets both runs have: A solid, B dashed.",
            charts.open_interest(ts, labels=labels),
        ),
        Section(
            "depth",
            "Order-book depth",
            "Depth within 1% of mid, markets both runs have: A solid, B dashed.",
            charts.depth(ts, labels=labels),
        ),
    ]
    ca, cb = a.event("collateral"), b.event("collateral")
    if ca is not None and cb is not None:
        fig = charts.collateral_prices([ca, cb], labels=labels)
        if fig is not None:
            sections.append(Section("collateral", "Collateral prices", "Depegged collateral: A solid, B dashed.", fig))
    return market_note, sections


PAIRED_CHART_KEYS = ("liquidated_usd", "adl_usd", "adl_count", "bad_debt_usd", "worst_drawdown")
"""Headline numbers drawn seed by seed on the paired comparison page (with each venue's fund)."""


def paired_compare_page(a: RunSet, b: RunSet) -> str:
    """Two sets of runs paired by seed: per headline number the means, the mean difference and its paired and
    unpaired intervals; the per-seed differences drawn; then the charts of the first seed both sides ran."""
    from perpstress.outputs.report.data import load_run

    rows = paired_headlines(a, b)
    note = esc(seeds_note(a, b))
    top = (
        '<section id="headline"><h2>Paired by seed</h2><p class="intro">Each headline number over the seeds both '
        "sides ran: the means of A and B, the mean of B minus A on the same seed, its paired 95 % interval "
        "(bootstrap percentiles over the seeds, a seed's two runs kept together) and the unpaired interval of the "
        "difference of the two means (each side's seeds resampled on their own, as if unrelated). Green where B "
        f"lost less and the paired interval excludes zero, red where it lost more.</p>{paired_table(rows)}"
        f'<p class="intro">{note}.</p></section>'
    )
    chart_rows = [r for r in rows if r.key in PAIRED_CHART_KEYS or r.key.startswith("fund:")]
    sections = [
        Section(
            "differences",
            "Differences seed by seed",
            "B minus A per seed (grey dots), their mean (the dot) with its paired 95 % interval (the bar), and under "
            "it the unpaired interval of the difference of means (grey). The narrower the top bar against the bottom "
            "one, the more of the seeds' noise the two sides shared and the pairing removed.",
            charts.paired_differences(chart_rows),
        )
    ]
    common = sorted(a.runs.keys() & b.runs.keys())
    seed = common[0]
    try:
        run_a, run_b = load_run(a.runs[seed]), load_run(b.runs[seed])
    except PerpstressError as exc:
        sections[0] = Section(sections[0].id, sections[0].title, sections[0].intro, sections[0].figure,
                              note=f"No charts of seed {seed}: {esc(exc)}")  # fmt: skip
    else:
        market_note, overlays = overlay_sections(run_a, run_b)
        for s in overlays:
            sections.append(Section(s.id, s.title, f"Seed {seed}. {s.intro} {market_note}", s.figure, s.body, s.note))
    title = f"perpstress comparison: {a.name} vs {b.name}, paired by seed"
    subtitle = (
        f"A: <code>{esc(a.spec)}</code>, {len(a.runs)} runs<br>B: <code>{esc(b.spec)}</code>, {len(b.runs)} runs"
        f" &middot; {note}"
    )
    return page(title, subtitle, top, sections, plotly.offline.get_plotlyjs(), footer())
