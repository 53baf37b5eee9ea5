"""``sweep.html``: how each policy metric is distributed in each grid cell, one self-contained HTML page.

Same look as the run report (its stylesheet, header and chart template; plotly.js embedded, so it opens offline).
Three parts:

- the cells: each cell's colour, short name (the tick label of the charts) and full grid values;
- one panel per policy metric: per cell a box (quartiles, whiskers to the extreme runs) and one grey line per seed
  joining that seed's runs across the cells. The cells share their seeds (common random numbers), so the lines
  show the paired difference between policies, which is what a comparison rests on; a box alone hides it;
- a table per cell of each metric's mean, its 95 % interval and the 5th-95th percentile range;
- each cell against the baseline cell, seed by seed: per metric the mean of the per-seed differences with its
  paired 95 % interval, drawn beside the unpaired interval of the difference of means (a chart and a table), so
  the reader sees what running the cells on the same seeds buys.

Plotly (the ``report`` extra) is imported only inside :func:`write_report_html`.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from perpstress.outputs.atomic import write_text_atomic
from perpstress.outputs.headline import usd
from perpstress.outputs.report import require_plotly
from perpstress.outputs.report.html import esc
from perpstress.sweep.cells import policy_metrics
from perpstress.sweep.grid import Grid, value_text
from perpstress.sweep.plan import SweepPlan

SEED_LINE = "rgba(100, 116, 139, 0.45)"
"""Colour of the per-seed lines joining one seed's runs across cells."""
MAX_TICK_CHARS = 28


def write_report_html(path: Path, plan: SweepPlan, results: pa.Table, cells: pa.Table, baseline: int = 0) -> Path:
    require_plotly()
    import plotly

    from perpstress.outputs.report.html import Section, page
    from perpstress.outputs.report.pages import footer

    metrics = policy_metrics(results)
    names = [short_label(plan.grid, v) for v in plan.cell_values]
    sections = [
        Section("cells", "Cells", _cells_intro(plan), body=_cells_table(plan, names)),
        Section(
            "distributions",
            "Distributions per cell",
            "One panel per metric. Each box spans the middle half of the cell's runs, its whiskers the extreme runs; "
            "each grey line joins one seed's runs across the cells. The cells share their seeds (same shock paths "
            "and flow), so a line's slope is that seed's difference between policies.",
            figure=distributions_figure(plan, results, metrics, names),
        ),
        Section(
            "per-cell",
            "Per cell",
            "Mean over the seeds in bold; under it the 95 % interval on the mean (bootstrap percentiles, none with "
            "one seed) and the 5th to 95th percentile of the runs (linear interpolation; with few seeds only a range).",
            body=_stats_table(cells, metrics, names),
        ),
    ]
    if len(plan.cells) > 1:
        sections.append(
            Section(
                "paired",
                f"Against cell {baseline}, seed by seed",
                f"Each cell minus the baseline, cell {baseline} ({names[baseline].replace('<br>', ', ')}), on the "
                "same seed, averaged over the seeds: the dot is the mean difference, the coloured bar its paired 95 % "
                "interval (bootstrap percentiles over the seeds, a seed's two runs kept together), the grey bar "
                "under it the 95 % interval of the difference of the two means were the seeds unrelated "
                "(unpaired). The gap between the bars is what running every cell on the same seeds buys; a bar "
                "clear of zero is a difference the seeds do not explain.",
                figure=paired_figure(cells, metrics, names, baseline),
                body=_paired_table(cells, metrics, names, baseline),
            )
        )
    title = f"Sweep of {plan.base.name}"
    subtitle = (
        f"{len(plan.cells)} cell{'s' if len(plan.cells) != 1 else ''} x {len(plan.seeds)} seed"
        f"{'s' if len(plan.seeds) != 1 else ''} (<code>SeedSequence({plan.seed_base}).spawn</code>) &middot; "
        f"crowd scale {plan.scale:g} &middot; {_population_text(plan)} &middot; grid <code>{esc(plan.grid.source)}"
        "</code>"
    )
    write_text_atomic(path, page(title, subtitle, "", sections, plotly.offline.get_plotlyjs(), footer()))
    return path


def short_label(grid: Grid, cell: dict[str, Any]) -> str:
    """A cell's name for a chart axis, as HTML: each grid path's last part (last two when the grid has several
    paths) with its value (``initial_usd=8M``), cut to :data:`MAX_TICK_CHARS` per path, one line per path; the
    full values are in the cells table."""
    if not cell:
        return "base"
    parts = []
    for path, value in cell.items():
        name = ".".join(path.split(".")[-2:]) if len(grid.paths) > 1 else path.split(".")[-1]
        text = f"{name}={_value_short(value)}"
        # Plotly reads axis text as its own small HTML: <, > and & escaped, quotes left as they are
        parts.append(
            html.escape(text if len(text) <= MAX_TICK_CHARS else text[: MAX_TICK_CHARS - 1] + "…", quote=False)
        )
    return "<br>".join(parts)


def _value_short(value: Any) -> str:
    """``8M``, ``1.23B``, ``-0.03``, ``ranked_queue``, ``capped_pro_rata(max_haircut=0.5)``: large numbers with a
    suffix, a variant table as its rule and parameters, the rest as the grid writes them."""
    if isinstance(value, dict):
        tag = next((k for k in ("rule", "procedure", "kind", "method") if k in value), None)
        params = ", ".join(f"{k}={_value_short(v)}" for k, v in sorted(value.items()) if k != tag)
        head = str(value[tag]) if tag else ""
        return f"{head}({params})" if params else head
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1e4:
        for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}"
    return value_text(value)


def cell_colour(c: int) -> str:
    from perpstress.outputs.report.charts import EXTRA_COLOURS

    return EXTRA_COLOURS[c % len(EXTRA_COLOURS)]


def seed_matrix(plan: SweepPlan, results: pa.Table, name: str) -> np.ndarray:
    """Metric ``name`` as a (cells x seeds) array, NaN where a run is missing or has no value."""
    out = np.full((len(plan.cells), len(plan.seeds)), np.nan)
    cell = results.column("cell").to_numpy()
    seed = results.column("seed_index").to_numpy()
    values = np.asarray(results.column(name).to_numpy(zero_copy_only=False), dtype=float)
    out[cell, seed] = values
    return out


def distributions_figure(plan: SweepPlan, results: pa.Table, metrics: list[tuple[str, str]], names: list[str]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from perpstress.outputs.report.charts import TEMPLATE

    cols = 2 if len(metrics) > 1 else 1
    rows = max(1, math.ceil(len(metrics) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[label for _, label in metrics] or ["no runs"],
                        vertical_spacing=min(0.12, 0.6 / rows), horizontal_spacing=0.08)  # fmt: skip
    x = list(range(len(names)))
    for i, (name, label) in enumerate(metrics):
        row, col = i // cols + 1, i % cols + 1
        matrix = seed_matrix(plan, results, name)
        money = name.endswith("_usd")
        value_hover = "$%{y:,.0f}" if money else "%{y:,.4g}"
        for s in range(matrix.shape[1]):
            fig.add_trace(
                go.Scatter(
                    x=x, y=matrix[:, s].tolist(), mode="lines+markers", showlegend=False,
                    line={"color": SEED_LINE, "width": 1}, marker={"color": SEED_LINE, "size": 4},
                    hovertemplate=f"seed {s}<br>%{{text}}<br>{label}: {value_hover}<extra></extra>",
                    text=[n.replace("<br>", ", ") for n in names],
                ),
                row=row, col=col,
            )  # fmt: skip
        for c in x:
            values = matrix[c][~np.isnan(matrix[c])]
            fig.add_trace(
                go.Box(
                    x=[c] * len(values), y=values.tolist(), name=names[c].replace("<br>", ", "), boxpoints=False,
                    marker={"color": cell_colour(c)}, line={"width": 1.5}, fillcolor=_fill(cell_colour(c)),
                    showlegend=False, width=0.5,
                ),
                row=row, col=col,
            )  # fmt: skip
        fig.update_xaxes(tickmode="array", tickvals=x, ticktext=names, range=[-0.6, len(x) - 0.4], row=row, col=col)
        if np.all(np.isnan(matrix) | (matrix == 0.0)):  # nothing to spread: say so instead of milli-dollar ticks
            fig.update_yaxes(range=[-1.0, 1.0], tickvals=[0], ticktext=["$0" if money else "0"], row=row, col=col)
            fig.add_annotation(text="zero in every run", showarrow=False, font={"color": "#6b7280"},
                               x=(len(x) - 1) / 2, y=0.5, row=row, col=col)  # fmt: skip
        else:
            fig.update_yaxes(tickprefix="$" if money else "", tickformat="~s", row=row, col=col)
    fig.update_layout(template=TEMPLATE, height=320 * rows + 80, margin={"l": 70, "r": 20, "t": 40, "b": 60})
    return fig


UNPAIRED_BAR = "rgba(100, 116, 139, 0.55)"
"""Colour of the unpaired interval drawn under each paired one."""


def paired_figure(cells: pa.Table, metrics: list[tuple[str, str]], names: list[str], baseline: int) -> Any:
    """Per metric, per cell but the baseline: the mean paired difference with its paired interval (the cell's
    colour) above the unpaired interval of the difference of means (grey)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from perpstress.outputs.report.charts import TEMPLATE

    data = cells.to_pydict()
    others = [c for c in range(len(names)) if c != baseline]
    cols = 2 if len(metrics) > 1 else 1
    rows = max(1, math.ceil(len(metrics) / cols))
    titles = [f"{label}: cell - cell {baseline}" for _, label in metrics] or ["no runs"]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=min(0.14, 0.6 / rows),
                        horizontal_spacing=0.12)  # fmt: skip
    for i, (name, label) in enumerate(metrics):
        row, col = i // cols + 1, i % cols + 1
        money = name.endswith("_usd")
        value_hover = "$%{x:,.0f}" if money else "%{x:,.4g}"
        for kind, offset, key in (("paired", -0.15, "diff_ci95"), ("unpaired", 0.15, "diff_unpaired_ci95")):
            for c in others:
                mean, low, high = (data[f"{name}_{k}"][c] for k in ("diff_mean", f"{key}_low", f"{key}_high"))
                if mean is None:
                    continue
                colour = cell_colour(c) if kind == "paired" else UNPAIRED_BAR
                bar: dict[str, Any] = {"visible": False}
                if low is not None and high is not None:
                    bar = {"type": "data", "symmetric": False, "array": [high - mean], "arrayminus": [mean - low],
                           "color": colour, "thickness": 2.5 if kind == "paired" else 1.5, "width": 4}  # fmt: skip
                fig.add_trace(
                    go.Scatter(
                        x=[mean], y=[others.index(c) + offset], mode="markers", showlegend=False, error_x=bar,
                        marker={"color": colour, "size": 8 if kind == "paired" else 5},
                        hovertemplate=f"cell {c} - cell {baseline}, {kind}<br>{label}: {value_hover}<extra></extra>",
                    ),
                    row=row, col=col,
                )  # fmt: skip
        fig.add_vline(x=0, line={"color": "#9ca3af", "width": 1, "dash": "dot"}, row=row, col=col)
        fig.update_yaxes(tickmode="array", tickvals=list(range(len(others))), ticktext=[names[c] for c in others],
                         range=[len(others) - 0.4, -0.6], zeroline=False, row=row, col=col)  # fmt: skip
        bounds = [data[f"{name}_{k}"][c] for c in others for k in ("diff_mean", "diff_ci95_low", "diff_ci95_high",
                  "diff_unpaired_ci95_low", "diff_unpaired_ci95_high")]  # fmt: skip
        if all(v is None or v == 0.0 for v in bounds):  # nothing to spread: say so instead of milli-dollar ticks
            fig.update_xaxes(range=[-1.0, 1.0], tickvals=[0], ticktext=["$0" if money else "0"], row=row, col=col)
            fig.add_annotation(text="the same in every pair of runs", showarrow=False, font={"color": "#6b7280"},
                               x=0.5, y=(len(others) - 1) / 2, row=row, col=col)  # fmt: skip
        else:
            fig.update_xaxes(tickprefix="$" if money else "", tickformat="~s", zeroline=False, row=row, col=col)
    height = max(220, 70 * len(others) + 120)
    fig.update_layout(template=TEMPLATE, height=height * rows + 60, margin={"l": 150, "r": 20, "t": 40, "b": 40})
    return fig


def _paired_table(cells: pa.Table, metrics: list[tuple[str, str]], names: list[str], baseline: int) -> str:
    data = cells.to_pydict()
    head = "<th>cell</th>" + "".join(f'<th class="num">{esc(label)}</th>' for _, label in metrics)
    rows = []
    for c, name in enumerate(names):
        if c == baseline:
            continue
        tds = [f"<td>cell {c} - cell {baseline}<br><small>{name}</small></td>"]
        for metric, _label in metrics:
            fmt = usd if metric.endswith("_usd") else _count

            def interval(key: str, c: int = c, metric: str = metric, fmt: Any = fmt) -> str:
                low, high = data[f"{metric}_{key}_low"][c], data[f"{metric}_{key}_high"][c]
                return "-" if low is None or high is None else f"{fmt(low)} .. {fmt(high)}"

            pairs = data[f"{metric}_diff_pairs"][c]
            tds.append(
                f'<td class="num"><b>{_signed(fmt, data[f"{metric}_diff_mean"][c])}</b><br>'
                f"<small>paired {interval('diff_ci95')}</small><br>"
                f"<small>unpaired {interval('diff_unpaired_ci95')}</small><br>"
                f"<small>{pairs} seed{'s' if pairs != 1 else ''} paired</small></td>"
            )
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table class="data paired"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _signed(fmt: Any, value: float | None) -> str:
    text: str = fmt(value)
    return f"+{text}" if value is not None and math.isfinite(value) and value > 0 else text


def _fill(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, 0.25)"


def _population_text(plan: SweepPlan) -> str:
    if plan.base.population_seed is None:
        return "a new starting population per seed"
    return f"one starting population per crowd setting (population seed {plan.base.population_seed})"


def _cells_intro(plan: SweepPlan) -> str:
    if not plan.grid.paths:
        return "No grid: one cell, the scenario itself, run over the seeds (a Monte Carlo)."
    paths = ", ".join(f"<code>{esc(p)}</code>" for p in plan.grid.paths)
    return f"The grid varies {paths}; every cell runs the same {len(plan.seeds)} seeds."


def _cells_table(plan: SweepPlan, names: list[str]) -> str:
    rows = []
    for c, values in enumerate(plan.cell_values):
        swatch = f'<span class="swatch" style="background:{cell_colour(c)}"></span>'
        full = "<br>".join(f"<code>{esc(p)}</code> = {esc(value_text(v))}" for p, v in values.items()) or "base"
        rows.append(f"<tr><td>{swatch} cell {c}</td><td>{names[c]}</td><td>{full}</td></tr>")
    return (
        '<table class="data cells"><thead><tr><th>cell</th><th>short name</th><th>grid values</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _stats_table(cells: pa.Table, metrics: list[tuple[str, str]], names: list[str]) -> str:
    data = cells.to_pydict()
    head = "<th>cell</th><th>runs</th>" + "".join(f'<th class="num">{esc(label)}</th>' for _, label in metrics)
    rows = []
    for c, name in enumerate(names):
        tds = [f"<td>cell {c}<br><small>{name}</small></td>", f'<td class="num">{data["runs"][c]}</td>']
        for metric, _label in metrics:
            fmt = usd if metric.endswith("_usd") else _count

            def stat(s: str, c: int = c, metric: str = metric) -> float | None:
                value: float | None = data[f"{metric}_{s}"][c]
                return value

            ci = stat("ci95_low"), stat("ci95_high")
            ci_text = f"{fmt(ci[0])} .. {fmt(ci[1])}" if ci[0] is not None and not math.isnan(ci[0]) else "-"
            tds.append(
                f'<td class="num"><b>{fmt(stat("mean"))}</b><br><small>95 % CI {ci_text}</small><br>'
                f"<small>p5-p95 {fmt(stat('p5'))} .. {fmt(stat('p95'))}</small></td>"
            )
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table class="data stats"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _count(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
