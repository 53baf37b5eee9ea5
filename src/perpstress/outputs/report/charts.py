"""The report's charts: one function per chart, each taking pyarrow tables and returning a Plotly figure.

Conventions every chart follows, so a reader learns them once:

- Time runs along x in UTC (Plotly date axes over milliseconds since the epoch, which Plotly shows as UTC).
- A venue has one colour everywhere (:data:`VENUE_COLOURS`); liquidated longs are red and shorts green
  (:data:`SIDE_COLOURS`); in price charts the mark is dark, the index a grey dotted line, the last trade blue.
- Functions that can overlay runs take one table or a sequence of tables with ``labels``: run A is drawn solid,
  run B dashed (:data:`RUN_DASHES`), and legend entries carry the run's label.
- One-second series are thinned to at most ``max_points`` points per trace keeping each bucket's low and high,
  so wicks survive and the page stays small.
- Columns the engine may add later are optional: a chart uses what the table has and says what it left out.

This module needs Plotly (the ``report`` extra); :func:`perpstress.outputs.report.write_report` checks for it first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.compute as pc
from plotly.subplots import make_subplots

from perpstress.outputs.headline import percent, usd
from perpstress.outputs.paired import PairedHeadline
from perpstress.outputs.report.data import (
    bucket_sums,
    bucket_width_ms,
    column,
    downsample,
    downsample_index,
    fund_series,
    has_column,
    is_spot,
    markets,
    series,
    unique_in_order,
    venue_of,
    venues,
)

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
VENUE_COLOURS = {
    "binance": "#d4a100",
    "bybit": "#8b5cf6",
    "okx": "#374151",
    "bitget": "#2563eb",
    "hyperliquid": "#0d9488",
    "dydx": "#9d5b2f",
    "drift": "#db2777",
}
"""Colour of each venue preset's name, the same in every chart and every report."""
EXTRA_COLOURS = ("#0891b2", "#ea580c", "#4f46e5", "#65a30d", "#be185d", "#78716c", "#0f766e", "#a16207")
"""Colours for venues without a preset colour and for markets within a venue, in order."""
SIDE_COLOURS = {"long": "#dc2626", "short": "#16a34a"}
PRICE_COLOURS = {"index": "#9ca3af", "mark": "#111827", "last": "#3b82f6"}
DEPTH_COLOURS = {"bid": "#16a34a", "ask": "#dc2626"}
RUN_DASHES = ("solid", "dash", "dot", "dashdot")
SMALL_MULTIPLES_MAX = 12
"""Up to this many markets a per-market chart is a grid of small plots; beyond, one plot with a market dropdown."""
MAX_POINTS = 1500
"""Default cap on points per line trace."""
DEPEG_THRESHOLD = 0.02
"""A collateral asset depegged when its price fell this fraction below its reference (or its starting price)."""

TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 12, "color": "#1f2937"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": list(EXTRA_COLOURS),
        "hoverlabel": {"font": {"family": FONT}, "namelength": -1},
        "xaxis": {
            "gridcolor": "#eef0f3",
            "linecolor": "#cbd5e1",
            "zerolinecolor": "#cbd5e1",
            "ticks": "outside",
            "tickcolor": "#cbd5e1",
            "automargin": True,
        },
        "yaxis": {"gridcolor": "#eef0f3", "linecolor": "#cbd5e1", "zerolinecolor": "#94a3b8", "automargin": True},
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "xanchor": "left",
            "bgcolor": "rgba(255,255,255,0)",
            "itemsizing": "constant",
        },
        "title": {"x": 0, "xanchor": "left", "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 84, "b": 50},
    }
)

SUBPLOTS_TOP, SUBPLOTS_BOTTOM, ROW_GAP_PX = 104, 50, 78
"""Figure margins and the gap between rows of small multiples, pixels (room for dates and subplot titles)."""

Runs: TypeAlias = "pa.Table | Sequence[pa.Table]"
"""One run's table, or several runs' tables to overlay."""


def venue_colour(venue: str, order: Sequence[str] = ()) -> str:
    """The venue's colour: its preset colour, else a stable pick from :data:`EXTRA_COLOURS`."""
    if venue in VENUE_COLOURS:
        return VENUE_COLOURS[venue]
    others = [v for v in order if v not in VENUE_COLOURS]
    i = others.index(venue) if venue in others else sum(map(ord, venue))
    return EXTRA_COLOURS[i % len(EXTRA_COLOURS)]


def _runs(tables: Runs, labels: Sequence[str] | None) -> list[tuple[str, pa.Table]]:
    """Normalise one table or several into (label, table) pairs; one run has the empty label."""
    if isinstance(tables, pa.Table):
        return [("", tables)]
    seq: list[pa.Table] = list(tables)
    names = list(labels) if labels is not None else [chr(ord("A") + i) for i in range(len(seq))]
    if len(names) != len(seq):
        raise ValueError(f"{len(seq)} tables but {len(names)} labels")
    return [("" if len(seq) == 1 else n, t) for n, t in zip(names, seq, strict=True)]


def _named(name: str, label: str) -> str:
    return f"{name} ({label})" if label else name


def _finish(
    fig: go.Figure, title: str, height: int, *, time_axis: bool = True, subplot_titles: bool = False
) -> go.Figure:
    """Apply the template, the title (top left), the legend on its own line under it, and the UTC time axis."""
    top = SUBPLOTS_TOP if subplot_titles else 84
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 10}},
        legend={"yref": "container", "y": 1.0 - 38 / height, "yanchor": "top"},
        margin={"t": top, "b": SUBPLOTS_BOTTOM},
        height=height,
    )
    if time_axis:
        fig.update_xaxes(type="date", hoverformat="%Y-%m-%d %H:%M:%S UTC")
    return fig


def _time_hover(value_fmt: str, name: str = "%{fullData.name}") -> str:
    return f"{name}<br>%{{x|%H:%M:%S}} UTC<br>{value_fmt}<extra></extra>"


USD_HOVER = "$%{y:,.0f}"
PRICE_HOVER = "%{y:,.7~g}"


def _grid(n: int) -> tuple[int, int]:
    cols = 1 if n == 1 else 2
    return math.ceil(n / cols), cols


def _per_market(
    keys: Sequence[str],
    traces_for: Callable[[str, bool], list[Any]],
    *,
    title: str,
    y_title: str,
    row_height: int = 250,
    colours: dict[str, str] | None = None,
) -> go.Figure:
    """Small multiples (one subplot per key) or, past :data:`SMALL_MULTIPLES_MAX`, one plot with a dropdown.

    ``traces_for(key, first)`` returns the key's traces; ``first`` is True for the first key only, so the legend
    lists each kind of line once.
    """
    if not keys:
        return _empty(title, "no markets in this run")
    if len(keys) <= SMALL_MULTIPLES_MAX:
        rows, cols = _grid(len(keys))
        height = SUBPLOTS_TOP + SUBPLOTS_BOTTOM + row_height * rows
        fig = make_subplots(
            rows=rows,
            cols=cols,
            subplot_titles=list(keys),
            shared_xaxes="all",
            vertical_spacing=ROW_GAP_PX / (height - SUBPLOTS_TOP - SUBPLOTS_BOTTOM) if rows > 1 else 0.0,
            horizontal_spacing=0.08,
        )
        for i, key in enumerate(keys):
            for trace in traces_for(key, i == 0):
                fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
        for i, ann in enumerate(fig.layout.annotations):
            if colours and keys[i] in colours:
                ann.font = {"color": colours[keys[i]], "size": 13}
            ann.x = 0.0 if i % cols == 0 else 0.54
            ann.xanchor = "left"
        fig.update_yaxes(title_text=None)
        for r in range(1, rows + 1):
            fig.update_yaxes(title_text=y_title, row=r, col=1, title_font={"size": 11})
        fig.update_xaxes(showticklabels=True)
        fig.update_xaxes(title_text="UTC", row=rows, col=1)
        return _finish(fig, title, height, subplot_titles=True)
    fig = go.Figure()
    owners: list[int] = []
    for i, key in enumerate(keys):
        for trace in traces_for(key, True):
            trace.visible = i == 0
            trace.legendgroup = None
            fig.add_trace(trace)
            owners.append(i)
    buttons = [
        {
            "label": key,
            "method": "update",
            "args": [{"visible": [o == i for o in owners]}, {"yaxis.autorange": True}],
        }
        for i, key in enumerate(keys)
    ]
    height, top, bottom = 500, 84, SUBPLOTS_BOTTOM
    y_menu = 1.0 + (top - 6) / (height - top - bottom)
    fig.update_layout(
        updatemenus=[
            {
                "buttons": buttons,
                "x": 1.0,
                "xanchor": "right",
                "y": y_menu,
                "yanchor": "top",
                "showactive": True,
                "bgcolor": "white",
                "bordercolor": "#cbd5e1",
            }
        ],
        annotations=[
            {
                "text": f"{len(keys)} markets, showing:",
                "x": 1.0,
                "xref": "paper",
                "xanchor": "right",
                "xshift": -215,
                "y": y_menu,
                "yref": "paper",
                "yanchor": "top",
                "yshift": -4,
                "showarrow": False,
                "font": {"size": 12, "color": "#6b7280"},
            }
        ],
    )
    fig.update_yaxes(title_text=y_title)
    fig.update_xaxes(title_text="UTC")
    return _finish(fig, title, height)


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14, "color": "#6b7280"}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _finish(fig, title, 220, time_axis=False)


def _line(
    x: np.ndarray,
    y: np.ndarray,
    name: str,
    colour: str,
    *,
    dash: str = "solid",
    width: float = 1.6,
    hover: str = PRICE_HOVER,
    max_points: int = MAX_POINTS,
    show: bool = True,
    group: str | None = None,
    opacity: float = 1.0,
    fill: str | None = None,
) -> Any:
    xs, ys = downsample(x, y, max_points)
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        name=name,
        line={"color": colour, "width": width, "dash": dash},
        opacity=opacity,
        showlegend=show,
        legendgroup=group or name,
        hovertemplate=_time_hover(hover),
        fill=fill,
    )


# ---------------------------------------------------------------------------------------------------------- prices


def price_paths(
    timeseries: Runs,
    liquidations: pa.Table | None = None,
    *,
    labels: Sequence[str] | None = None,
    market_keys: Sequence[str] | None = None,
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """Index, mark and last-trade price per market (USD), with liquidation bursts as markers on the mark.

    A marker is one time window (10 s ... 15 min, about 120 windows per run) in which a side of a market was
    liquidated; its area grows with the liquidated notional (USD). With several runs, only marks are drawn
    (run A solid, B dashed) for ``market_keys`` (default: the markets every run has).
    """
    runs = _runs(timeseries, labels)
    keys = list(market_keys) if market_keys is not None else _common_markets([t for _, t in runs])
    colours = {k: venue_colour(k.split(":", 1)[0]) for k in keys}
    bursts = _liquidation_bursts(liquidations, runs[0][1]) if liquidations is not None and len(runs) == 1 else {}

    def traces(key: str, first: bool) -> list[Any]:
        out = []
        for r, (label, ts) in enumerate(runs):
            if key not in set(ts["market"].to_pylist()):
                continue
            rows = ts.filter(pc.equal(ts["market"], key))
            t = column(rows, "ts_ms")
            dash = RUN_DASHES[r % len(RUN_DASHES)]
            if len(runs) == 1:
                for role, width, style, opacity in (
                    ("index", 1.2, "dot", 1.0),
                    ("last", 1.0, "solid", 0.75),
                    ("mark", 1.8, "solid", 1.0),
                ):
                    if has_column(rows, role):
                        y = column(rows, role)
                        if np.isfinite(y).any():
                            out.append(
                                _line(
                                    t,
                                    y,
                                    role,
                                    PRICE_COLOURS[role],
                                    dash=style,
                                    width=width,
                                    max_points=max_points,
                                    show=first,
                                    opacity=opacity,
                                )
                            )
            else:
                role = "mark" if np.isfinite(column(rows, "mark")).any() else "last"
                out.append(
                    _line(
                        t,
                        column(rows, role),
                        _named(role, label),
                        PRICE_COLOURS["mark"] if r == 0 else PRICE_COLOURS["last"],
                        dash=dash,
                        max_points=max_points,
                        show=first,
                    )
                )
        for side in ("long", "short"):
            b = bursts.get((key, side))
            if b is None:
                continue
            x, y, notional, count, width_s = b
            out.append(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="markers",
                    name=f"{side}s liquidated",
                    legendgroup=f"liq-{side}",
                    showlegend=first,
                    marker={
                        "color": SIDE_COLOURS[side],
                        "opacity": 0.55,
                        "size": _marker_sizes(notional),
                        "line": {"width": 0.5, "color": "white"},
                    },
                    customdata=np.column_stack([notional, count]),
                    hovertemplate=(
                        f"{side}s liquidated<br>%{{x|%H:%M:%S}} UTC + {width_s:g} s<br>"
                        "$%{customdata[0]:,.0f} in %{customdata[1]:,.0f} liquidations<br>mark %{y:,.7~g}<extra></extra>"
                    ),
                )
            )
        return out

    suffix = "; markers: liquidations, area by USD notional" if bursts else ""
    what = "Index, mark and last price" if len(runs) == 1 else "Mark price, run A solid, run B dashed"
    return _per_market(
        keys, traces, title=f"{what} per market (quote currency){suffix}", y_title="price", colours=colours
    )


def _common_markets(tables: Sequence[pa.Table]) -> list[str]:
    first = markets(tables[0])
    others = [set(markets(t)) for t in tables[1:]]
    return [m for m in first if all(m in o for o in others)]


def _marker_sizes(notional: np.ndarray, smallest: float = 5.0, largest: float = 34.0) -> np.ndarray:
    """Marker diameters (px) whose area is proportional to notional; the largest burst gets ``largest``."""
    top = float(notional.max()) if len(notional) else 1.0
    return np.asarray(smallest + (largest - smallest) * np.sqrt(notional / top if top > 0 else notional), float)


def _liquidation_bursts(
    liquidations: pa.Table, timeseries: pa.Table
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]]:
    """Per (market, side): window start (ms), notional-weighted mark, notional (USD), count and window (s)."""
    if liquidations.num_rows == 0:
        return {}
    t_all = column(timeseries, "ts_ms")
    width = bucket_width_ms(float(t_all.max() - t_all.min()) or 1.0, target_buckets=120)
    out = {}
    ts = column(liquidations, "ts_ms")
    notional = column(liquidations, "notional_usd")
    mark = column(liquidations, "mark") if has_column(liquidations, "mark") else column(liquidations, "price")
    side = column(liquidations, "side")
    market = np.asarray(liquidations["market"].to_pylist(), dtype=object)
    origin = int(t_all.min() // width * width)
    for key in unique_in_order(list(market)):
        for name, sign in (("long", 1.0), ("short", -1.0)):
            m = (market == key) & (np.sign(side) == sign)
            if not m.any():
                continue
            b = bucket_sums(ts[m].astype(np.int64), ["x"] * int(m.sum()), notional[m], width, origin)
            wm = bucket_sums(ts[m].astype(np.int64), ["x"] * int(m.sum()), notional[m] * mark[m], width, origin)
            keep = b.count["x"] > 0
            out[(str(key), name)] = (
                b.start_ms[keep],
                wm.notional["x"][keep] / b.notional["x"][keep],
                b.notional["x"][keep],
                b.count["x"][keep],
                width / 1000.0,
            )
    return out


# ---------------------------------------------------------------------------------------------------- liquidations


def liquidations_over_time(
    liquidations: pa.Table, *, bucket_ms: int | None = None, time_range: tuple[float, float] | None = None
) -> go.Figure:
    """Liquidated notional (USD) per time window by venue and side: longs up, shorts down, venues stacked.

    The window is one minute for runs of half an hour or more, else 10 s (``bucket_ms`` overrides it);
    ``time_range`` (ms since the epoch) is the run's span, so the axis matches the other charts.
    """
    title = "Liquidated notional per {w} by venue, USD: longs above zero, shorts below"
    if liquidations.num_rows == 0:
        return _empty(title.format(w="minute"), "no liquidations in this run")
    ts = column(liquidations, "ts_ms")
    width = bucket_ms or _event_bucket(ts)
    notional = column(liquidations, "notional_usd")
    side = np.where(column(liquidations, "side") > 0, "long", "short")
    venue = liquidations["venue"].to_pylist()
    keys = [(v, s) for v, s in zip(venue, side, strict=True)]
    b = bucket_sums(ts.astype(np.int64), keys, notional, width)
    order = unique_in_order(venue)
    fig = go.Figure()
    for s in ("long", "short"):
        for v in order:
            if (v, s) not in b.notional:
                continue
            y = b.notional[(v, s)] * (1 if s == "long" else -1)
            fig.add_trace(
                go.Bar(
                    x=b.start_ms + width / 2,
                    y=y,
                    width=width * 0.9,
                    name=f"{v} {s}s",
                    legendgroup=v,
                    marker={
                        "color": venue_colour(v, order),
                        "line": {"width": 0},
                        "pattern": {
                            "shape": "" if s == "long" else "/",
                            "fillmode": "overlay",
                            "fgcolor": "white",
                            "fgopacity": 0.6,
                            "size": 6,
                        },
                    },
                    customdata=np.column_stack([b.notional[(v, s)], b.count[(v, s)]]),
                    hovertemplate=f"{v} {s}s<br>%{{x|%H:%M:%S}} UTC<br>$%{{customdata[0]:,.0f}} in "
                    "%{customdata[1]:,.0f} liquidations<extra></extra>",
                )
            )
    fig.update_layout(barmode="relative", bargap=0.05)
    fig.update_yaxes(title_text="USD per window", tickformat="$~s")
    fig.update_xaxes(title_text="UTC")
    _side_labels(fig)
    if time_range is not None:
        fig.update_xaxes(range=list(time_range))
    return _finish(fig, title.format(w=_window_name(width)), 420)


def _side_labels(fig: go.Figure) -> None:
    for text, y, colour, anchor in (
        ("longs \u25b2", 1.0, SIDE_COLOURS["long"], "top"),
        ("shorts \u25bc", 0.0, SIDE_COLOURS["short"], "bottom"),
    ):
        fig.add_annotation(
            text=text,
            x=0.005,
            y=y,
            xref="paper",
            yref="paper",
            xanchor="left",
            yanchor=anchor,
            showarrow=False,
            font={"color": colour, "size": 12},
        )


def _event_bucket(ts: np.ndarray) -> int:
    span = float(ts.max() - ts.min()) if len(ts) else 0.0
    return bucket_width_ms(span, target_buckets=150, choices=(10_000, 60_000, 300_000, 900_000, 3_600_000))


def _window_name(width_ms: int) -> str:
    s = width_ms / 1000
    if s < 60:
        return f"{s:g} s"
    if s == 60:
        return "minute"
    if s < 3600:
        return f"{s / 60:g} minutes"
    return f"{s / 3600:g} h"


def reported_liquidations(
    view: dict[str, dict[str, Any]], minutes: pa.Table | None = None, *, time_range: tuple[float, float] | None = None
) -> go.Figure:
    """True against publicly reported liquidated notional per venue (left: the pale bar is what happened, the solid
    bar inside it what the venue's public feed showed) and, given the per-minute table, both over time,
    cumulative (right: reported solid, true dotted). ``view`` is the summary's ``liquidations.reported_by_venue``."""
    title = "Liquidated notional, USD: what happened (pale) and what the public feeds showed (solid)"
    venues_ = [v for v in view if view[v]["true_count"] > 0]
    if not venues_:
        return _empty(title, "no liquidations in this run")
    ranked = sorted(venues_, key=lambda v: view[v]["true_notional_usd"])
    order = list(view)
    over_time = minutes is not None and minutes.num_rows > 0
    fig = make_subplots(
        rows=1,
        cols=2 if over_time else 1,
        column_widths=[0.45, 0.55] if over_time else None,
        horizontal_spacing=0.14,
    )
    colours = [venue_colour(v, order) for v in ranked]
    true_usd = [view[v]["true_notional_usd"] for v in ranked]
    shown_usd = [view[v]["reported_notional_usd"] for v in ranked]
    labels = [
        f"{usd(view[v]['reported_notional_usd'])} of {usd(view[v]['true_notional_usd'])}"
        f" ({percent(view[v]['reported_notional_usd'] / view[v]['true_notional_usd'])})"
        if view[v]["rule"] != "every_order"
        else f"{usd(view[v]['true_notional_usd'])}, all public"
        for v in ranked
    ]
    counts = [[view[v]["true_count"], view[v]["reported_count"]] for v in ranked]
    fig.add_trace(
        go.Bar(
            x=true_usd,
            y=ranked,
            orientation="h",
            name="true",
            marker={"color": colours, "opacity": 0.3, "line": {"width": 0}},
            customdata=counts,
            text=labels,
            textposition="outside",
            cliponaxis=False,
            showlegend=False,
            hovertemplate="%{y}: $%{x:,.0f} liquidated in %{customdata[0]:,} orders<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=shown_usd,
            y=ranked,
            orientation="h",
            name="reported",
            marker={"color": colours, "line": {"width": 0}},
            customdata=counts,
            width=0.5,
            showlegend=False,
            hovertemplate="%{y}: $%{x:,.0f} reported in %{customdata[1]:,} orders<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.update_layout(barmode="overlay", bargap=0.3)
    fig.update_xaxes(tickformat="$~s", range=[0, max(true_usd) * 1.75], row=1, col=1)
    if over_time and minutes is not None:
        ts = column(minutes, "ts_ms")
        venue = np.asarray(minutes["venue"].to_pylist(), dtype=object)
        for v in reversed(ranked):
            mine = venue == v
            x = ts[mine] + 60_000  # a minute's total is known at its end
            for kind, dash in (("true", "dot"), ("reported", "solid")):
                if kind == "true" and view[v]["rule"] == "every_order":
                    continue
                y = np.cumsum(column(minutes, f"{kind}_notional_usd")[mine])
                fig.add_trace(
                    _line(x, y, f"{v} {kind}", venue_colour(v, order), dash=dash, hover=USD_HOVER, group=v, width=2.0),
                    row=1,
                    col=2,
                )
        fig.update_xaxes(
            type="date",
            hoverformat="%H:%M UTC",
            title_text="UTC",
            row=1,
            col=2,
            range=list(time_range) if time_range is not None else None,
        )
        fig.update_yaxes(tickformat="$~s", title_text="USD, cumulative", row=1, col=2)
    return _finish(fig, title, 120 + max(260, 56 * len(ranked)), time_axis=False)


# ------------------------------------------------------------------------------------------------------------- ADL


def adl_events(
    adl: pa.Table, *, bucket_ms: int | None = None, time_range: tuple[float, float] | None = None
) -> go.Figure:
    """ADL: notional closed against bankrupt positions per time window by venue (left), total per market (right).

    ``time_range`` (ms since the epoch) is the run's span, so the time axis matches the other charts.
    """
    title = "Auto-deleveraged notional, USD: per {w} by venue (left) and per market (right)"
    if adl.num_rows == 0:
        return _empty(title.format(w="minute"), "no ADL in this run")
    ts = column(adl, "ts_ms")
    width = bucket_ms or _event_bucket(ts)
    notional = column(adl, "notional_usd")
    venue = adl["venue"].to_pylist()
    order = unique_in_order(venue)
    b = bucket_sums(ts.astype(np.int64), venue, notional, width)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.12)
    for v in order:
        fig.add_trace(
            go.Bar(
                x=b.start_ms + width / 2,
                y=b.notional[v],
                width=width * 0.9,
                name=v,
                legendgroup=v,
                marker={"color": venue_colour(v, order), "line": {"width": 0}},
                customdata=np.column_stack([b.count[v]]),
                hovertemplate=f"{v}<br>%{{x|%H:%M:%S}} UTC<br>$%{{y:,.0f}} in %{{customdata[0]:,.0f}} fills"
                "<extra></extra>",
            ),
            row=1,
            col=1,
        )
    market = adl["market"].to_pylist()
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for m, n in zip(market, notional, strict=True):
        totals[m] = totals.get(m, 0.0) + float(n)
        counts[m] = counts.get(m, 0) + 1
    ranked = sorted(totals, key=lambda k: totals[k])
    fig.add_trace(
        go.Bar(
            x=[totals[m] for m in ranked],
            y=ranked,
            orientation="h",
            marker={"color": [venue_colour(m.split(":", 1)[0], order) for m in ranked]},
            customdata=[counts[m] for m in ranked],
            text=[usd(totals[m]) for m in ranked],
            textposition="outside",
            textangle=0,
            cliponaxis=False,
            showlegend=False,
            hovertemplate="%{y}<br>$%{x:,.0f} in %{customdata:,} fills<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_xaxes(
        type="date",
        hoverformat="%H:%M:%S UTC",
        title_text="UTC",
        row=1,
        col=1,
        range=list(time_range) if time_range is not None else None,
    )
    fig.update_xaxes(tickformat="$~s", range=[0, max(totals.values()) * 1.3], row=1, col=2)
    fig.update_yaxes(tickformat="$~s", title_text="USD per window", row=1, col=1)
    return _finish(fig, title.format(w=_window_name(width)), 400, time_axis=False)


def notional_by_market(tables: Sequence[pa.Table], labels: Sequence[str], title: str) -> go.Figure:
    """Total notional (USD) per market in each run, as grouped horizontal bars (run A solid, B hatched)."""
    fig = go.Figure()
    all_keys: list[str] = []
    totals = []
    for t in tables:
        d: dict[str, float] = {}
        if t is not None and t.num_rows:
            for m, n in zip(t["market"].to_pylist(), column(t, "notional_usd"), strict=True):
                d[m] = d.get(m, 0.0) + float(n)
        totals.append(d)
        all_keys += [k for k in d if k not in all_keys]
    if not all_keys:
        return _empty(title, "none in either run")
    all_keys.sort(key=lambda k: max(d.get(k, 0.0) for d in totals))
    top = max(max(d.values(), default=0.0) for d in totals)
    # Plotly stacks a horizontal group's first trace at the bottom: add B first so A reads first, on top.
    for r, (label, d) in reversed(list(enumerate(zip(labels, totals, strict=True)))):
        fig.add_trace(
            go.Bar(
                x=[d.get(k, 0.0) for k in all_keys],
                y=all_keys,
                orientation="h",
                name=f"run {label}",
                marker={
                    "color": [venue_colour(k.split(":", 1)[0]) for k in all_keys],
                    "pattern": {"shape": "" if r == 0 else "/", "fgcolor": "white"},
                },
                text=[f"{label}: {usd(d.get(k, 0.0))}" for k in all_keys],
                textposition="outside",
                cliponaxis=False,
                hovertemplate=f"run {label}<br>%{{y}}<br>$%{{x:,.0f}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", showlegend=False, bargap=0.25)
    fig.update_xaxes(tickformat="$~s", range=[0, top * 1.18 if top > 0 else 1.0])
    return _finish(fig, title, 130 + 24 * len(all_keys) * max(1, len(tables)), time_axis=False)


def cumulative_notional(events: Sequence[pa.Table | None], labels: Sequence[str], title: str) -> go.Figure:
    """Cumulative notional (USD) over time per venue, one line per venue and run (run A solid, B dashed)."""
    fig = go.Figure()
    order: list[str] = []
    for t in events:
        if t is not None:
            order += [v for v in unique_in_order(t["venue"]) if v not in order]
    for r, (label, t) in enumerate(zip(labels, events, strict=True)):
        if t is None or t.num_rows == 0:
            continue
        ts = column(t, "ts_ms")
        notional = column(t, "notional_usd")
        venue = np.asarray(t["venue"].to_pylist(), dtype=object)
        for v in order:
            m = venue == v
            if not m.any():
                continue
            idx = np.argsort(ts[m], kind="stable")
            x, y = ts[m][idx], np.cumsum(notional[m][idx])
            fig.add_trace(
                _line(
                    x,
                    y,
                    _named(v, label),
                    venue_colour(v, order),
                    dash=RUN_DASHES[r % 4],
                    hover=USD_HOVER,
                    group=v,
                    width=2.0,
                )
            )
    if not fig.data:
        return _empty(title, "none in either run")
    fig.update_yaxes(tickformat="$~s", title_text="USD, cumulative")
    fig.update_xaxes(title_text="UTC")
    return _finish(fig, title, 380)


# --------------------------------------------------------------------------------------------- funds, OI and depth


def insurance_funds(timeseries: Runs, *, labels: Sequence[str] | None = None) -> go.Figure:
    """Insurance fund balance per venue over time (USD); below zero the venue has absorbed more than it held."""
    runs = _runs(timeseries, labels)
    fig = go.Figure()
    order: list[str] = []
    for _, ts in runs:
        order += [v for v in venues(ts) if v not in order]
    for r, (label, ts) in enumerate(runs):
        for v, (t, y) in fund_series(ts).items():
            fig.add_trace(
                _line(
                    t,
                    y,
                    _named(v, label),
                    venue_colour(v, order),
                    dash=RUN_DASHES[r % 4],
                    hover=USD_HOVER,
                    group=v,
                    width=2.2,
                )
            )
    fig.add_hline(y=0, line={"color": "#94a3b8", "width": 1})
    fig.update_yaxes(tickformat="$~s", title_text="USD")
    fig.update_xaxes(title_text="UTC")
    what = "" if len(runs) == 1 else ", run A solid, run B dashed"
    return _finish(fig, f"Insurance fund balance per venue, USD{what}", 380)


def open_interest(timeseries: Runs, *, labels: Sequence[str] | None = None, max_points: int = MAX_POINTS) -> go.Figure:
    """Open interest per perpetual market as a percentage of its starting value, one plot per venue.

    Percentages put a $2M market and a $200M one on the same scale; the hover gives the USD value (one side's
    open interest) and the market table gives start and end in USD. Spot markets have none and are skipped.
    """
    runs = _runs(timeseries, labels)
    by_venue: dict[str, list[str]] = {}
    for _, ts in runs:
        vo = venue_of(ts)
        for m in markets(ts):
            if is_spot(m) or m in by_venue.get(vo[m], []) or not has_column(ts, "open_interest_usd"):
                continue
            _, oi = series(ts, m, "open_interest_usd")
            if np.nanmax(oi, initial=0.0) > 0:
                by_venue.setdefault(vo[m], []).append(m)
    if len(runs) > 1:
        common = set(_common_markets([t for _, t in runs]))
        by_venue = {v: [m for m in ms if m in common] for v, ms in by_venue.items()}
    keys = [v for v, ms in by_venue.items() if ms]

    def traces(venue: str, first: bool) -> list[Any]:
        out = []
        for i, m in enumerate(by_venue[venue]):
            for r, (label, ts) in enumerate(runs):
                t, oi = series(ts, m, "open_interest_usd")
                start = next((float(v) for v in oi if np.isfinite(v) and v > 0), None)
                if start is None:
                    continue
                idx = downsample_index(oi, max_points)
                out.append(
                    go.Scatter(
                        x=t[idx],
                        y=oi[idx] / start * 100.0,
                        customdata=oi[idx],
                        mode="lines",
                        name=_named(m, label),
                        legendgroup=m,
                        line={
                            "color": EXTRA_COLOURS[i % len(EXTRA_COLOURS)],
                            "width": 2.0,
                            "dash": RUN_DASHES[r % len(RUN_DASHES)],
                        },
                        hovertemplate=_time_hover("%{y:.1f}% of start, $%{customdata:,.0f}"),
                    )
                )
        return out

    what = "" if len(runs) == 1 else ", run A solid, run B dashed"
    fig = _per_market(
        keys,
        traces,
        title=f"Open interest per market, % of its starting value, one plot per venue{what}",
        y_title="% of start",
        colours={v: venue_colour(v) for v in keys},
        row_height=260,
    )
    fig.update_yaxes(ticksuffix="%", rangemode="tozero")
    return fig


def depth(timeseries: Runs, *, labels: Sequence[str] | None = None, max_points: int = MAX_POINTS) -> go.Figure:
    """Resting size (USD) within 1 % of mid on each side of each market's book, over time."""
    runs = _runs(timeseries, labels)
    keys = _common_markets([t for _, t in runs])
    keys = [k for k in keys if all(has_column(t, "depth_bid_1pct_usd") for _, t in runs)]

    def traces(key: str, first: bool) -> list[Any]:
        out = []
        for r, (label, ts) in enumerate(runs):
            rows = ts.filter(pc.equal(ts["market"], key))
            t = column(rows, "ts_ms")
            for side in ("bid", "ask"):
                y = column(rows, f"depth_{side}_1pct_usd")
                out.append(
                    _line(
                        t,
                        y,
                        _named(side + "s", label),
                        DEPTH_COLOURS[side],
                        dash=RUN_DASHES[r % 4],
                        hover=USD_HOVER,
                        max_points=max_points,
                        show=first,
                        group=f"{side}{label}",
                        width=1.4,
                    )
                )
        return out

    what = "" if len(runs) == 1 else ", run A solid, run B dashed"
    fig = _per_market(
        keys,
        traces,
        title=f"Order-book depth within 1% of mid per market, USD{what}",
        y_title="USD",
        colours={k: venue_colour(k.split(":", 1)[0]) for k in keys},
        row_height=220,
    )
    fig.update_yaxes(tickformat="$~s", rangemode="tozero")
    return fig


# ------------------------------------------------------------------------------- collateral, hedges and transfers


def depegged_collateral(collateral: pa.Table, threshold: float = DEPEG_THRESHOLD) -> list[str]:
    """``ASSET@venue`` keys whose price fell more than ``threshold`` below the reference (or the first price)."""
    out = []
    for key, t, price, ref in _collateral_series(collateral):
        base = ref if ref is not None else np.full_like(price, price[np.isfinite(price)][0] if len(price) else 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = price / base
        if np.nanmin(ratio, initial=np.inf) < 1.0 - threshold:
            out.append(key)
        del t
    return out


def _collateral_series(collateral: pa.Table) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    return [(key, t, price, ref) for key, t, price, ref, _ in _collateral_series_with_book(collateral)]


def _collateral_series_with_book(
    collateral: pa.Table,
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Per ``ASSET@venue``: times, margin price, reference price and own-book price (None when the table has no
    such column, or the pair no book)."""
    keys = [f"{a}@{v}" for a, v in zip(collateral["asset"].to_pylist(), collateral["venue"].to_pylist(), strict=True)]
    karr = np.asarray(keys, dtype=object)
    t_all = column(collateral, "ts_ms")
    p_all = column(collateral, "price")
    r_all = column(collateral, "reference_price") if has_column(collateral, "reference_price") else None
    b_all = column(collateral, "book_price") if has_column(collateral, "book_price") else None
    out = []
    for key in unique_in_order(keys):
        m = karr == key
        idx = np.argsort(t_all[m], kind="stable")
        book = b_all[m][idx] if b_all is not None else None
        if book is not None and not np.isfinite(book).any():
            book = None
        out.append((str(key), t_all[m][idx], p_all[m][idx], r_all[m][idx] if r_all is not None else None, book))
    return out


def collateral_prices(
    collateral: Runs, *, labels: Sequence[str] | None = None, threshold: float = DEPEG_THRESHOLD
) -> go.Figure | None:
    """Price of each collateral asset on each venue that depegged (venue's valuation vs its reference, and the
    venue's own spot book of the asset when it has one: a mixed index falls less than its book), or None.

    Only ``ASSET@venue`` pairs that fell more than ``threshold`` below their reference are drawn; a run where none
    did returns None, and the report says so in one line.
    """
    runs = _runs(collateral, labels)
    keys: list[str] = []
    for _, t in runs:
        keys += [k for k in depegged_collateral(t, threshold) if k not in keys]
    if not keys:
        return None

    book_named: set[str] = set()

    def traces(key: str, first: bool) -> list[Any]:
        out = []
        for r, (label, t) in enumerate(runs):
            for k, x, price, ref, book in _collateral_series_with_book(t):
                if k != key:
                    continue
                venue = k.split("@", 1)[1]
                if book is not None and not np.array_equal(book, price, equal_nan=True):  # own_book: the same line
                    out.append(
                        _line(
                            x,
                            book,
                            _named("own spot book", label),
                            PRICE_COLOURS["last"],
                            dash=RUN_DASHES[(r + 1) % 4],
                            show=label not in book_named,  # in the legend once, in whichever panel has one first
                            group=f"book{label}",
                        )
                    )
                    book_named.add(label)
                if ref is not None:
                    out.append(
                        _line(
                            x,
                            ref,
                            _named("reference", label),
                            PRICE_COLOURS["index"],
                            dash="dot",
                            show=first and r == 0,
                            group="reference",
                        )
                    )
                out.append(
                    _line(
                        x,
                        price,
                        _named("collateral price", label),
                        venue_colour(venue),
                        dash=RUN_DASHES[r % 4],
                        show=first,
                        group=f"price{label}",
                        width=2.0,
                    )
                )
        return out

    return _per_market(
        keys,
        traces,
        title=f"Collateral that depegged (> {threshold:.0%} below its reference): "
        "the venue's valuation vs the reference price",
        y_title="price",
        colours={k: venue_colour(k.split("@", 1)[1]) for k in keys},
    )


def _first_column(table: pa.Table, names: Sequence[str]) -> str | None:
    return next((n for n in names if has_column(table, n)), None)


def broken_hedges(hedges: pa.Table) -> go.Figure:
    """Each broken hedge (one leg liquidated or ADL'd while the other stayed open) at the time it broke.

    y is the exposure left unhedged (USD; ``unhedged_notional_usd``, else ``notional_usd``); colour is the cause
    (``cause``/``kind``/``reason`` column) or the venue of the broken leg; hover adds the P&L when recorded.
    """
    title = "Broken hedges: exposure left unhedged when one leg was closed, USD"
    if hedges.num_rows == 0:
        return _empty(title, "no hedge broke in this run")
    t_col = _first_column(hedges, ("ts_ms", "broken_ms", "ts"))
    y_col = _first_column(hedges, ("unhedged_notional_usd", "notional_usd", "exposure_usd"))
    if t_col is None or y_col is None:
        return _empty(title, f"hedges table lacks a time or notional column (has {', '.join(hedges.column_names)})")
    by = _first_column(hedges, ("cause", "kind", "reason", "venue"))
    groups = hedges[by].to_pylist() if by else ["broken"] * hedges.num_rows
    garr = np.asarray([str(g) for g in groups], dtype=object)
    x = column(hedges, t_col)
    y = column(hedges, y_col)
    pnl = column(hedges, "pnl_usd") if has_column(hedges, "pnl_usd") else np.full(len(y), np.nan)
    who_col = _first_column(hedges, ("owner", "account", "hedge_id"))
    who = np.asarray([str(w) for w in hedges[who_col].to_pylist()] if who_col else [""] * len(y), dtype=object)
    fig = go.Figure()
    palette = {"liquidation": SIDE_COLOURS["long"], "adl": "#7c3aed"}
    for i, g in enumerate(unique_in_order(list(garr))):
        m = garr == g
        colour = palette.get(str(g).lower(), venue_colour(str(g)) if by == "venue" else EXTRA_COLOURS[i % 8])
        fig.add_trace(
            go.Scatter(
                x=x[m],
                y=y[m],
                mode="markers",
                name=str(g),
                marker={"color": colour, "size": 9, "opacity": 0.75, "line": {"width": 0.5, "color": "white"}},
                customdata=np.column_stack([pnl[m], who[m]]),
                hovertemplate=f"{g}<br>%{{x|%H:%M:%S}} UTC<br>unhedged $%{{y:,.0f}}<br>P&L $%{{customdata[0]:,.0f}}"
                + (f"<br>{who_col} %{{customdata[1]}}" if who_col else "")
                + "<extra></extra>",
            )
        )
    fig.update_yaxes(tickformat="$~s", title_text="USD unhedged", rangemode="tozero")
    fig.update_xaxes(title_text="UTC")
    return _finish(fig, f"{title} ({hedges.num_rows:,} hedges)", 380)


def transfer_delays(transfers: pa.Table, *, max_points: int = 2000) -> go.Figure:
    """Delay (s) of every transfer between venues against the time it was requested, per route.

    The delay is ``delay_s`` when recorded, else ``landed_ms - requested_ms``; a transfer that never landed is
    counted in the title. Past ``max_points`` transfers, each route shows its per-minute median and maximum delay.
    """
    title = "Transfer delays between venues, seconds from request to landing"
    if transfers.num_rows == 0:
        return _empty(title, "no transfers in this run")
    req = column(transfers, "requested_ms")
    if has_column(transfers, "delay_s"):
        delay = column(transfers, "delay_s")
    elif has_column(transfers, "landed_ms"):
        delay = (column(transfers, "landed_ms") - req) / 1000.0
    else:
        return _empty(title, "transfers table lacks delay_s and landed_ms")
    route = np.asarray(
        [str(r) for r in transfers["route"].to_pylist()] if has_column(transfers, "route") else ["all"] * len(req),
        dtype=object,
    )
    amount = column(transfers, "amount_usd") if has_column(transfers, "amount_usd") else np.full(len(req), np.nan)
    landed = np.isfinite(delay)
    fig = go.Figure()
    for i, rt in enumerate(unique_in_order(list(route))):
        m = (route == rt) & landed
        colour = EXTRA_COLOURS[i % len(EXTRA_COLOURS)]
        if len(req) <= max_points:
            fig.add_trace(
                go.Scatter(
                    x=req[m],
                    y=delay[m],
                    mode="markers",
                    name=str(rt),
                    marker={"color": colour, "size": 7, "opacity": 0.7},
                    customdata=amount[m],
                    hovertemplate=f"{rt}<br>requested %{{x|%H:%M:%S}} UTC<br>delay %{{y:,.1f}} s"
                    "<br>$%{customdata:,.0f}<extra></extra>",
                )
            )
            continue
        t = req[m]
        if not len(t):
            continue
        idx = ((t - t.min()) // 60_000).astype(np.int64)
        starts = np.unique(idx)
        med = np.array([np.median(delay[m][idx == k]) for k in starts])
        top = np.array([np.max(delay[m][idx == k]) for k in starts])
        x = t.min() + starts * 60_000.0
        fig.add_trace(_line(x, top, f"{rt} max", colour, hover="%{y:,.1f} s", group=str(rt), width=1.2))
        fig.add_trace(_line(x, med, f"{rt} median", colour, dash="dash", hover="%{y:,.1f} s", group=str(rt)))
    stuck = int((~landed).sum())
    fig.update_yaxes(title_text="seconds", rangemode="tozero")
    fig.update_xaxes(title_text="UTC, time requested")
    note = f"; {stuck:,} never landed" if stuck else ""
    return _finish(fig, f"{title} ({len(req):,} transfers{note})", 380)


def paired_differences(rows: Sequence[PairedHeadline]) -> go.Figure:
    """Per headline number, B minus A seed by seed (grey dots) with their mean and its paired 95 % interval, above
    the unpaired interval of the difference of means (grey bar)."""
    if not rows:
        return _empty("Differences seed by seed", "no headline number both sides have")
    cols = 2 if len(rows) > 1 else 1
    n_rows = math.ceil(len(rows) / cols)
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=[f"{r.label}: B - A" for r in rows],
                        vertical_spacing=min(0.14, 0.5 / n_rows), horizontal_spacing=0.12)  # fmt: skip
    for i, r in enumerate(rows):
        row, col = i // cols + 1, i % cols + 1
        d = r.diff
        scale = 100.0 if r.unit == "fraction" else 1.0  # fractions drawn in percentage points
        fmt = "$%{x:,.0f}" if r.unit == "usd" else ("%{x:.2f} pp" if r.unit == "fraction" else "%{x:,.4g}")
        fig.add_trace(
            go.Scatter(
                x=[v * scale for v in d.differences], y=[0.0] * len(d.differences), mode="markers",
                marker={"color": "rgba(100, 116, 139, 0.55)", "size": 7, "symbol": "circle-open"}, showlegend=False,
                text=[f"seed {s}" for s in d.seeds], hovertemplate=f"%{{text}}: {fmt}<extra></extra>",
            ),
            row=row, col=col,
        )  # fmt: skip
        for y, low, high, colour, kind in ((0.0, d.paired_low, d.paired_high, EXTRA_COLOURS[0], "paired"),
                                           (1.0, d.unpaired_low, d.unpaired_high, "#94a3b8", "unpaired")):  # fmt: skip
            bar: dict[str, Any] = {"visible": False}
            if math.isfinite(low) and math.isfinite(high):
                bar = {"type": "data", "symmetric": False, "array": [(high - d.mean) * scale],
                       "arrayminus": [(d.mean - low) * scale], "color": colour, "thickness": 2.5,
                       "width": 6}  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=[d.mean * scale], y=[y], mode="markers", error_x=bar, showlegend=False,
                    marker={"color": colour, "size": 9 if kind == "paired" else 6},
                    hovertemplate=f"mean, {kind} 95 % interval: {fmt}<extra></extra>",
                ),
                row=row, col=col,
            )  # fmt: skip
        fig.add_vline(x=0, line={"color": "#9ca3af", "width": 1, "dash": "dot"}, row=row, col=col)
        fig.update_yaxes(tickmode="array", tickvals=[0, 1], ticktext=["paired", "unpaired"], range=[1.6, -0.6],
                         zeroline=False, row=row, col=col)  # fmt: skip
        spread = [v for v in (*d.differences, d.unpaired_low, d.unpaired_high) if math.isfinite(v)]
        if all(v == 0.0 for v in spread):
            fig.update_xaxes(range=[-1.0, 1.0], tickvals=[0], ticktext=["$0" if r.unit == "usd" else "0"],
                             row=row, col=col)  # fmt: skip
        else:
            fig.update_xaxes(tickprefix="$" if r.unit == "usd" else "",
                             ticksuffix=" pp" if r.unit == "fraction" else "",
                             tickformat=".2~f" if r.unit == "fraction" else "~s", zeroline=False,
                             row=row, col=col)  # fmt: skip
    fig.update_layout(template=TEMPLATE, height=190 * n_rows + 80, margin={"l": 80, "r": 20, "t": 40, "b": 40})
    return fig
