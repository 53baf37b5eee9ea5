"""Assembling one self-contained HTML page: plotly.js inline once, cards, sections, tables and a small stylesheet.

The page makes no network request: plotly.js is embedded in a ``<script>`` in the head, fonts are the system's
(no web fonts), there are no images other than what Plotly draws. Chart divs have fixed ids, so the same run
gives the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perpstress.outputs.headline import Headline, HeadlineDiff, percent, usd
from perpstress.outputs.paired import PairedHeadline

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}

CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --good:#15803d; --bad:#b91c1c;
        --accent:#1d4ed8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background:#111827; color:#f9fafb; padding:22px 32px 18px; }
header h1 { margin:0; font-size:22px; font-weight:600; letter-spacing:.01em; }
header .sub { color:#cbd5e1; margin-top:4px; font-size:13px; }
header .sub code { color:#e5e7eb; }
nav { background:#1f2937; padding:8px 32px; position:sticky; top:0; z-index:10; display:flex; flex-wrap:wrap;
      gap:4px 18px; font-size:13px; }
nav a { color:#d1d5db; text-decoration:none; }
nav a:hover { color:#fff; text-decoration:underline; }
main { max-width:1360px; margin:0 auto; padding:20px 32px 40px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(210px, 1fr)); gap:12px; margin-bottom:22px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px 11px;
        border-top:4px solid #94a3b8; }
.card.good { border-top-color:var(--good); }
.card.bad { border-top-color:var(--bad); }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:22px; font-weight:650; margin:2px 0 1px; line-height:1.25; overflow-wrap:anywhere;
               font-variant-numeric:tabular-nums; }
.card .value.long { font-size:17px; }
.card.bad .value { color:var(--bad); }
.card .detail { color:var(--muted); font-size:12px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 18px 8px;
          margin-bottom:18px; }
section h2 { font-size:17px; margin:0 0 2px; }
section p.intro { color:var(--muted); margin:0 0 6px; max-width:980px; }
section p.note { color:var(--muted); font-style:italic; margin:4px 0 10px; }
table.data { border-collapse:collapse; width:100%; margin:6px 0 12px; font-variant-numeric:tabular-nums; }
table.data th, table.data td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); }
table.data th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase;
                letter-spacing:.03em; }
table.data td.num { text-align:right; }
.pass { color:var(--good); font-weight:600; }
.fail { color:var(--bad); font-weight:600; }
.good { color:var(--good); }
.bad { color:var(--bad); }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px; vertical-align:-1px; margin-right:4px; }
.verdict { background:#fff; border:1px solid var(--line); border-left:6px solid #94a3b8; border-radius:8px;
           padding:12px 16px; margin-bottom:14px; font-size:15px; }
.verdict.good { border-left-color:var(--good); color:var(--ink); }
.verdict.bad { border-left-color:var(--bad); color:var(--ink); }
.verdict b { font-size:17px; }
.na { color:var(--muted); font-weight:600; }
table.data td .detail { color:var(--muted); font-size:12px; }
table.timeline td.when { white-space:nowrap; font-variant-numeric:tabular-nums; color:var(--muted); }
table.data td { overflow-wrap:anywhere; }
.wide { overflow-x:auto; }
table.attribution td.num, table.attribution td:first-child { white-space:nowrap; }
table.attribution { margin-bottom:12px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:10px 0 30px; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the page: a heading, a sentence saying how to read it, then a chart, an HTML block or a note."""

    id: str
    title: str
    intro: str = ""
    figure: Any = None
    body: str = ""
    note: str = ""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


LONG_VALUE = 14
"""A card value longer than this (characters) is set smaller, and wraps rather than being cut."""


def verdict(counts: Mapping[str, int]) -> str:
    """The validation verdict as a banner for the top of the page, linking to the table."""
    n = sum(counts.values())
    passed, failed, na = counts.get("pass", 0), counts.get("fail", 0), counts.get("n/a", 0)
    tone = "good" if failed == 0 and na == 0 else "bad"
    rest = ", ".join(t for t in (f"{failed} failed" if failed else "", f"{na} could not be measured" if na else "")
                     if t)  # fmt: skip
    return (
        f'<div class="verdict {tone}" id="verdict"><b>Validation: {passed} of {n} targets within tolerance</b>'
        f'{f" ({rest})" if rest else ""} &middot; <a href="#validation">see the targets</a></div>'
    )


def timeline_table(rows: Sequence[tuple[float, str, str]]) -> str:
    """``(ts_ms, what, detail)`` rows, in time order, as a table."""
    from datetime import UTC, datetime

    body = "".join(
        f'<tr><td class="when">{datetime.fromtimestamp(ts / 1000.0, tz=UTC).strftime("%H:%M:%S")}</td>'
        f"<td>{esc(what)}</td><td>{esc(detail)}</td></tr>"
        for ts, what, detail in sorted(rows, key=lambda r: r[0])
    )
    return (
        '<table class="data timeline"><thead><tr><th>UTC</th><th>what happened</th><th></th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def cards(headlines: Sequence[Headline]) -> str:
    """The headline numbers as a grid of cards (numbers marked ``card=False`` are left to the other cards)."""
    out = ['<div class="cards">']
    for h in headlines:
        if not h.card:
            continue
        out.append(
            f'<div class="card {h.tone}" data-key="{esc(h.key)}"><div class="label">{esc(h.label)}</div>'
            f'<div class="value{" long" if len(h.text) > LONG_VALUE else ""}">{esc(h.text)}</div>'
            f'<div class="detail">{esc(h.detail)}</div>'
            "</div>"
        )
    out.append("</div>")
    return "\n".join(out)


def validation_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Validation rows (see :func:`~perpstress.outputs.report.data.load_run`) as a table: the target, the verdict,
    what the run shows, the real figure, the tolerance and the source, failures first."""
    order = {"fail": 0, "n/a": 1, "pass": 2}
    head = "".join(f"<th>{c}</th>" for c in ("target", "verdict", "simulated", "real", "tolerance", "source"))
    body = []
    for row in sorted(rows, key=lambda r: order.get(str(r.get("status")), 3)):
        status = str(row.get("status", ""))
        verdict = {"pass": "pass", "fail": "FAIL", "n/a": "n/a"}.get(status, status)
        klass = {"pass": "pass", "fail": "fail"}.get(status, "na")
        simulated = esc(row.get("simulated_text", ""))
        if row.get("detail"):
            simulated += f'<div class="detail">{esc(row["detail"])}</div>'
        source, label = str(row.get("source", "")), str(row.get("source_label", ""))
        cite = f'<a href="{esc(source)}">{esc(label or source)}</a>' if source.startswith("http") else esc(label)
        body.append(
            f'<tr><td>{esc(row.get("title", ""))}</td><td class="{klass}">{verdict}</td>'
            f"<td>{simulated}</td><td>{esc(row.get('real_text', ''))}</td><td>{esc(row.get('tolerance_text', ''))}</td>"
            f'<td class="source">{cite}</td></tr>'
        )
    return f'<table class="data validation"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def collateral_lows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The collateral lows shown beside the targets (not judged): the asset, its own book's low, its margin price's
    low, the book's deepest fall below the reference, the liquidations it caused and the real book low."""
    head = "".join(
        f"<th>{c}</th>"
        for c in ("collateral (not judged)", "book low", "margin price low", "book below reference",
                  "liquidations caused", "real book low", "source")
    )  # fmt: skip

    def price(v: Any) -> str:
        return "n/a" if v is None else f"{float(v):,.4g}"

    body = []
    for r in rows:
        source, label = str(r.get("source", "")), str(r.get("source_label", ""))
        first = source.split(" ; ")[0]
        cite = f'<a href="{esc(first)}">{esc(label or first)}</a>' if first.startswith("http") else esc(label)
        caused = r.get("liquidations_caused")
        body.append(
            f'<tr data-asset="{esc(r.get("asset", ""))}"><td>{esc(r.get("title", ""))}</td>'
            f'<td class="num" data-field="book_low">{price(r.get("book_low"))}</td>'
            f'<td class="num">{price(r.get("margin_low"))}</td><td class="num">{percent(r.get("book_discount"))}</td>'
            f'<td class="num">{"n/a" if caused is None else f"{int(caused):,}"}</td>'
            f'<td>{esc(r.get("real_text", ""))}</td><td class="source">{cite}</td></tr>'
        )
    table = '<table class="data validation collateral-lows">'
    return f"{table}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


FEED_RULES = {"every_order": "every order", "latest_per_interval": "latest order per symbol and {s:g} s"}
"""How the reported-liquidations table names each public feed rule."""


def reported_table(view: Mapping[str, Mapping[str, Any]]) -> str:
    """Per venue (the summary's ``liquidations.reported_by_venue``): its feed rule, the true and the reported
    count and notional, and the reported share of the notional."""
    head = "".join(
        f"<th>{c}</th>"
        for c in ("venue", "public feed shows", "liquidations", "reported", "notional", "reported notional", "share")
    )
    body = []
    for venue, v in view.items():
        rule = FEED_RULES.get(str(v["rule"]), str(v["rule"])).format(s=v.get("interval_s") or 0)
        share = v["reported_notional_usd"] / v["true_notional_usd"] if v["true_notional_usd"] else None
        body.append(
            f'<tr data-venue="{esc(venue)}"><td>{esc(venue)}</td><td>{esc(rule)}</td>'
            f'<td class="num" data-field="true_count">{v["true_count"]:,}</td>'
            f'<td class="num" data-field="reported_count">{v["reported_count"]:,}</td>'
            f'<td class="num" data-field="true_notional_usd">{usd(v["true_notional_usd"])}</td>'
            f'<td class="num" data-field="reported_notional_usd">{usd(v["reported_notional_usd"])}</td>'
            f'<td class="num {"bad" if share is not None and share < 0.5 else ""}">{percent(share)}</td></tr>'
        )
    return f'<table class="data reported"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def comparison_table(diffs: Sequence[HeadlineDiff], label_a: str, label_b: str) -> str:
    """Headline numbers of two runs side by side with B's change against A, coloured good or bad."""
    head = f"<th></th><th>A: {esc(label_a)}</th><th>B: {esc(label_b)}</th><th>B - A</th>"
    body = "".join(
        f"<tr><td>{esc(d.label)}</td><td class='num'>{esc(d.text_a)}</td><td class='num'>{esc(d.text_b)}</td>"
        f"<td class='num {d.verdict if d.verdict != 'neutral' else ''}'>{esc(d.change)}</td></tr>"
        for d in diffs
    )
    return f'<table class="data compare"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def paired_table(rows: Sequence[PairedHeadline]) -> str:
    """Headline numbers over two sets of runs paired by seed: the means, B minus A with its paired interval
    (coloured when the interval excludes zero) and the unpaired interval."""
    names = ("A mean", "B mean", "B - A", "paired 95 % CI", "unpaired 95 % CI", "pairs")
    head = "<th></th>" + "".join(f"<th class='num'>{n}</th>" for n in names)
    body = "".join(
        f"<tr><td>{esc(r.label)}</td><td class='num'>{esc(r.text_a)}</td><td class='num'>{esc(r.text_b)}</td>"
        f"<td class='num {r.verdict if r.verdict != 'neutral' else ''}'>{esc(r.change)}</td>"
        f"<td class='num'>{esc(r.paired)}</td><td class='num'>{esc(r.unpaired)}</td>"
        f"<td class='num'>{r.diff.pairs}</td></tr>"
        for r in rows
    )
    return f'<table class="data compare paired"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page(title: str, subtitle: str, top: str, sections: Sequence[Section], plotly_js: str, footer: str) -> str:
    """The whole page. ``subtitle`` and ``top`` are HTML (already escaped); ``plotly_js`` is plotly.min.js."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        f'<script type="text/javascript">{plotly_js}</script>',
        "</head><body>",
        f'<header><h1>{esc(title)}</h1><div class="sub">{subtitle}</div></header>',
        f"<nav>{nav}</nav>",
        "<main>",
        top,
    ]
    for s in sections:
        parts.append(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>')
        if s.intro:
            parts.append(f'<p class="intro">{s.intro}</p>')
        if s.figure is not None:
            parts.append(
                s.figure.to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"chart-{s.id}",
                    config=PLOTLY_CONFIG,
                    default_width="100%",
                )
            )
        if s.body:
            parts.append(s.body)
        if s.note:
            parts.append(f'<p class="note">{esc(s.note)}</p>')
        parts.append("</section>")
    parts += ["</main>", f"<footer>{footer}</footer>", "</body></html>", ""]
    return "\n".join(parts)
