"""``sweep.html``: the distribution of each policy metric per grid cell, one self-contained HTML page.

One panel per metric; in each, one box per cell with every run drawn as a point beside it (a box shows the
quartiles and whiskers; with few seeds, look at the points). The cells' table of means, quantiles and confidence
intervals follows. Plotly (the ``report`` extra) is imported here only; the page embeds plotly.js, so it opens
offline.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pyarrow as pa

from perpstress.errors import PerpstressError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.sweep.cells import policy_metrics
from perpstress.sweep.metrics import column_values
from perpstress.sweep.plan import SweepPlan


class MissingExtraError(PerpstressError):
    """An optional dependency is not installed."""


def write_report_html(path: Path, plan: SweepPlan, results: pa.Table, cells: pa.Table) -> Path:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise MissingExtraError("the HTML report needs plotly: pip install 'perpstress[report]'") from None
    metrics = policy_metrics(results)
    labels = [plan.grid.label(v) for v in plan.cell_values]
    short = [f"cell {c}" for c in range(len(labels))]
    rows = max(1, len(metrics))
    fig = make_subplots(rows=rows, cols=1, subplot_titles=[label for _, label in metrics] or ["no runs"],
                        vertical_spacing=min(0.08, 0.5 / rows))  # fmt: skip
    for i, (name, _label) in enumerate(metrics, start=1):
        for c, text in enumerate(short):
            values = column_values(results, name, c)
            fig.add_trace(
                go.Box(
                    y=values.tolist(),
                    name=text,
                    boxpoints="all",
                    jitter=0.3,
                    pointpos=-1.6,
                    marker={"size": 5},
                    line={"width": 1},
                    showlegend=False,
                    hovertext=labels[c],
                ),
                row=i,
                col=1,
            )
    fig.update_layout(height=300 * rows + 120, margin={"l": 70, "r": 30, "t": 60, "b": 40},
                      title=f"{plan.base.name}: {len(plan.cells)} cells x {len(plan.seeds)} seeds")  # fmt: skip
    chart = fig.to_html(full_html=False, include_plotlyjs=True, div_id="sweep-distributions")
    page = _page(plan, cells, metrics, labels, chart)
    write_text_atomic(path, page)
    return path


def _page(plan: SweepPlan, cells: pa.Table, metrics: list[tuple[str, str]], labels: list[str], chart: str) -> str:
    esc = html.escape
    legend = "".join(f"<li><b>cell {c}</b>: {esc(text)}</li>" for c, text in enumerate(labels))
    head = "".join(f"<th>{esc(h)}</th>" for h in ("cell", "metric", "runs", "mean", "95% CI", "p5", "p50", "p95"))
    body = []
    data = cells.to_pydict()
    for c in range(len(labels)):
        for name, label in metrics:
            stat = {s: data[f"{name}_{s}"][c] for s in ("mean", "p5", "p50", "p95", "ci95_low", "ci95_high")}
            ci = f"{_num(stat['ci95_low'])} .. {_num(stat['ci95_high'])}" if stat["ci95_low"] is not None else "-"
            cells_html = [f"cell {c}", esc(label), str(data["runs"][c]), _num(stat["mean"]), ci,
                          _num(stat["p5"]), _num(stat["p50"]), _num(stat["p95"])]  # fmt: skip
            body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells_html) + "</tr>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>perpstress sweep: {esc(plan.base.name)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
        f"<h1>Sweep of {esc(plan.base.name)}</h1>"
        f"<p>{len(plan.cells)} cells x {len(plan.seeds)} seeds (SeedSequence({plan.seed_base}).spawn), "
        f"crowd scale {plan.scale:g}; grid file {esc(plan.grid.source)}.</p>"
        f"<ul>{legend}</ul>{chart}"
        f"<h2>Per cell</h2><table><tr>{head}</tr>{''.join(body)}</table>"
        "<p>95% CI: Student's t on the mean over seeds; p5/p50/p95: linear-interpolated percentiles.</p>"
        "</body></html>\n"
    )


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"
