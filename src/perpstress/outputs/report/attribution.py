"""The attribution page (``perpstress attribute``): how much of each market's fall the cascade and the makers'
withdrawal made, beside the base run's paths.

Top: per market group (majors, long tail), the base drawdown, each twin's drawdown and its share of the base's fall
with the seed-to-seed interval, liquidations and ADL in each. Then per market, the base mark path beside the
no-cascade twin's (first seed, normalised to the start), the gap between them shaded: what the forced flow added.
Then the shares per market as bars with their intervals, and the venue and market tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from perpstress.outputs.headline import usd
from perpstress.outputs.report import charts
from perpstress.outputs.report.data import downsample_index
from perpstress.outputs.report.html import Section, esc, page
from perpstress.outputs.report.pages import footer
from perpstress.validation.rundata import RunData

if TYPE_CHECKING:
    from perpstress.studies.attribution import AttributionResult

BASE_COLOUR, TWIN_COLOUR, GAP_COLOUR = "#111827", "#2563eb", "rgba(220, 38, 38, 0.22)"
SHARE_COLOURS = {"no-cascade": "#dc2626", "steady-makers": "#7c3aed", "override": "#0891b2"}
MAX_PATHS = 12


def pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def pct_interval(row: Mapping[str, Any], key: str) -> str:
    """``mean [lo, hi]`` in percent, the interval left out when there is none (one seed)."""
    text = pct(row.get(key))
    lo, hi = row.get(key + "_lo"), row.get(key + "_hi")
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        text += f' <span class="detail">[{100 * lo:.1f}, {100 * hi:.1f}]</span>'
    return text


def _rows(result: AttributionResult, level: str) -> dict[str, dict[str, dict[str, Any]]]:
    """name -> variant -> row, in table order."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in result.rows(level):
        out.setdefault(r["name"], {})[r["variant"]] = r
    return out


FALL_TITLES = {"drawdown": "mark", "trade_drawdown": "trade price"}


def attribution_table(result: AttributionResult, level: str) -> str:
    """One row per group, venue or market, in three tables: the fall of the mark, then of trade prices (the base's
    drawdown, each twin's and its share of the base's fall), then liquidations and ADL in each variant."""
    from perpstress.studies.attribution import FALLS

    twins = [v.name for v in result.plan.variants[1:]]
    variants = ["base", *twins]
    rows = _rows(result, level)
    out = []
    for measure, share_key in FALLS.items():
        what = FALL_TITLES[measure]
        falls = []
        for name, by in rows.items():
            base = by.get("base", {})
            cells = [f"<td>{esc(name)}</td>",
                     f"<td class='num' data-key='base-{measure}'>{pct_interval(base, measure)}</td>"]  # fmt: skip
            for t in twins:
                row = by.get(t, {})
                cells.append(f"<td class='num'>{pct_interval(row, measure)}</td>")
                cells.append(f"<td class='num' data-key='{esc(t)}-{share_key}'>{pct_interval(row, share_key)}</td>")
            falls.append(f"<tr data-row='{esc(name)}'>{''.join(cells)}</tr>")
        head = [f"{what} fall", "base"] + [h for t in twins for h in (t, f"{t}: share of the fall")]
        out.append(_table(level, measure, head, falls))
    flows = []
    for name, by in rows.items():
        cells = [f"<td>{esc(name)}</td>"]
        for measure in ("liquidated_usd", "adl_usd"):
            for v in variants:
                x = by.get(v, {}).get(measure)
                cells.append(f"<td class='num'>{usd(x) if x is not None and math.isfinite(x) else 'n/a'}</td>")
        flows.append(f"<tr data-row='{esc(name)}'>{''.join(cells)}</tr>")
    head = [""] + [f"liquidated: {v}" for v in variants] + [f"ADL: {v}" for v in variants]
    out.append(_table(level, "flows", head, flows))
    return "".join(out)


def _table(level: str, kind: str, head: list[str], rows: list[str]) -> str:
    thead = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        f'<div class="wide"><table class="data attribution" data-level="{esc(level)}" data-kind="{kind}"><thead>'
        f"<tr>{thead}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def paths_chart(result: AttributionResult, twin: str = "no-cascade", column: str = "last") -> go.Figure | None:
    """Per market (those the twin's absence changed most, at most :data:`MAX_PATHS`): the base's price path and the
    twin's (trade prices by default: where forced flow shows first), first seed, each over its first value; the gap
    between them shaded."""
    plan = result.plan
    seed = plan.seeds[0]
    variants = {v.name: v for v in plan.variants}
    if twin not in variants:
        return None
    base_run = RunData(result.out / "runs" / plan.run_name(variants["base"], seed))
    twin_run = RunData(result.out / "runs" / plan.run_name(variants[twin], seed))
    share_key = "trade_share" if column == "last" else "share"
    shares = {name: _finite(by.get(twin, {}).get(share_key)) for name, by in _rows(result, "market").items()}
    found = {k: v for k, v in shares.items() if v is not None}
    keys = sorted(found, key=lambda k: -abs(found[k]))[:MAX_PATHS]
    if not keys:
        return None
    rows, cols = math.ceil(len(keys) / 2), 1 if len(keys) == 1 else 2
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{k} (share {pct(shares[k])})" for k in keys],
                        vertical_spacing=min(0.12, 0.5 / rows), horizontal_spacing=0.08)  # fmt: skip
    for i, key in enumerate(keys):
        r, c = i // cols + 1, i % cols + 1
        found_b, found_t = base_run.series(key, column), twin_run.series(key, column)
        if found_b is None or found_t is None:
            continue
        (tb, yb), (_, yt) = found_b, found_t
        yb, yt = _filled(yb), _filled(yt)
        idx = downsample_index(yb, charts.MAX_POINTS)
        x = (tb[idx]).astype("datetime64[ms]")
        nb, nt = yb[idx] / _first(yb), yt[idx] / _first(yt)
        first = i == 0
        fig.add_trace(go.Scatter(x=x, y=nt, name=f"{twin} twin", line={"color": TWIN_COLOUR, "width": 1.5},
                                 legendgroup="twin", showlegend=first,
                                 hovertemplate="%{y:.3f}<extra>" + twin + "</extra>"), row=r, col=c)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=nb, name="base (gap shaded)", fill="tonexty", fillcolor=GAP_COLOUR,
                                 line={"color": BASE_COLOUR, "width": 1.5}, legendgroup="base", showlegend=first,
                                 hovertemplate="%{y:.3f}<extra>base</extra>"), row=r, col=c)  # fmt: skip
    what = "Trade price" if column == "last" else "Mark"
    title = f"{what} over its start, base and {twin} twin (seed {seed}); shaded: the gap between them"
    fig = charts._finish(fig, title, max(360, 250 * rows + 120), subplot_titles=True)
    fig.update_yaxes(tickformat=".0%")
    return fig


def _filled(y: np.ndarray) -> np.ndarray:
    """``y`` with each NaN replaced by the last value before it (a market's last trade holds until the next)."""
    y = np.asarray(y, dtype=float)
    idx = np.where(np.isfinite(y), np.arange(y.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = y[idx]
    return out


def _first(y: np.ndarray) -> float:
    finite = y[np.isfinite(y)]
    return float(finite[0]) if finite.size else math.nan


def shares_chart(result: AttributionResult) -> go.Figure | None:
    """Per market, each twin's share of the base's fall as a bar with its seed-to-seed interval."""
    by_market = _rows(result, "market")
    twins = [v.name for v in result.plan.variants[1:]]
    names = list(by_market)
    if not names:
        return None
    fig = go.Figure()
    for t in twins:
        rows = [by_market[n].get(t, {}) for n in names]
        y = [_finite(r.get("share")) for r in rows]
        err_hi = [_gap(r.get("share_hi"), r.get("share")) for r in rows]
        err_lo = [_gap(r.get("share"), r.get("share_lo")) for r in rows]
        fig.add_trace(go.Bar(x=names, y=y, name=t, marker_color=SHARE_COLOURS.get(t, "#6b7280"),
                             error_y={"type": "data", "array": err_hi, "arrayminus": err_lo, "visible": True},
                             hovertemplate="%{x}<br>%{y:.1%}<extra>" + t + "</extra>"))  # fmt: skip
    fig = charts._finish(fig, "Share of each market's fall made by the mechanism each twin lacks", 460,
                         time_axis=False)  # fmt: skip
    fig.update_layout(barmode="group")
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(tickangle=-40)
    return fig


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _gap(a: Any, b: Any) -> float | None:
    return float(a - b) if _finite(a) is not None and _finite(b) is not None else None


def attribution_page(result: AttributionResult) -> str:
    plan = result.plan
    seeds = ", ".join(str(s) for s in plan.seeds[:8]) + (" ..." if len(plan.seeds) > 8 else "")
    twins = "; ".join(f"<b>{esc(v.name)}</b>: {esc(v.about)}" for v in plan.variants[1:])
    subtitle = (
        f"{esc(plan.base.name)} at scale {plan.scale:g}, {len(plan.seeds)} seed(s) ({esc(seeds)}); every twin shares "
        f"the base's random streams. Twins: {twins}."
    )
    failures = ""
    if result.failures:
        failures = '<p class="note">Failed runs: ' + esc("; ".join(result.failures)) + "</p>"
    top = (
        '<section id="groups"><h2>Majors and long tail</h2><p class="intro">A fall: the mark\'s (or the trade '
        "prices') from the start to the low, the median over the group's markets. A twin's share: (base - twin) / "
        "base, per seed, "
        "then the mean over seeds with a 95 % interval in brackets (none for one seed); negative where the twin "
        f"fell further.</p>{attribution_table(result, 'group')}{failures}</section>"
    )
    paths = paths_chart(result)
    sections = [
        Section(
            "paths",
            "Base and no-cascade paths",
            "Each market's trade prices beside the same market's in the twin whose forced flow never reached the "
            "books: the wick the forced flow made. Marks, anchored to indices, move less: see the tables.",
            paths,
            note="" if paths is not None else "No market fell in the base run.",
        ),
        Section(
            "shares",
            "Shares by market",
            "The part of each market's fall each twin's missing mechanism made.",
            shares_chart(result),
        ),
        Section(
            "venues",
            "By venue",
            "Median drawdown of each venue's markets; liquidations and ADL summed.",
            body=attribution_table(result, "venue"),
        ),
        Section("markets", "By market", "Every perpetual market.", body=attribution_table(result, "market")),
    ]
    title = f"perpstress attribution: {plan.base.name}"
    return page(title, subtitle, top, sections, plotly.offline.get_plotlyjs(), footer())
