"""``perpstress map``: the liquidation map of a scenario's initial population, before any step runs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perpstress.cli.app import app, console
from perpstress.config.scenario import Scenario
from perpstress.errors import UsageError
from perpstress.outputs.atomic import write_bytes_atomic, write_text_atomic
from perpstress.population.liqmap import LiquidationMap, initial_population, liquidation_map, map_figure_html
from perpstress.population.positions_file import load_positions


@app.command("map")
def map_(
    scenario: Annotated[str, typer.Argument(help="scenario file or built-in scenario name")],
    scale: Annotated[float, typer.Option(help="scale the number of crowd accounts (not their notional)")] = 1.0,
    positions: Annotated[
        Path | None, typer.Option(help="map this positions snapshot (.csv or .parquet) instead of the crowd")
    ] = None,
    bins: Annotated[int, typer.Option(help="price levels on each side of the start price")] = 10,
    range_: Annotated[
        float, typer.Option("--range", help="the map spans the start price -+ this fraction of it")
    ] = 0.3,
    market: Annotated[
        list[str] | None, typer.Option(help="only this market, venue:SYMBOL (repeat for several)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the map as one JSON object")] = False,
    out: Annotated[
        Path | None, typer.Option(help="write liqmap.parquet and liqmap.html (the picture) into this directory")
    ] = None,
    picture: Annotated[bool, typer.Option(help="with --out, also write the HTML picture (needs plotly)")] = True,
) -> None:
    """Notional liquidated at each price level, per market, before any step runs (a liquidation heatmap).

    Every position's exact liquidation price under its venue's tiers; longs liquidate below the start price,
    shorts above; the cumulative columns add up from the start outwards. Notional is valued at the start price.
    """
    sc = Scenario.load(scenario)
    if positions is not None and scale != 1.0:
        raise UsageError("--scale applies to the generated crowd; a --positions snapshot is used as given")
    if scale <= 0:
        raise UsageError(f"--scale must be positive (got {scale:g})")
    snapshot = load_positions(positions, sc) if positions is not None else None
    pop = initial_population(sc, scale=scale, positions=snapshot)
    lmap = liquidation_map(pop, sc.name, bins=bins, range_fraction=range_, markets=market or None)
    html = map_figure_html(lmap) if out is not None and picture else None  # before writing: a missing plotly stops
    if out is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from perpstress.outputs.rundir import PARQUET_OPTIONS

        buffer = io.BytesIO()
        pq.write_table(pa.table(lmap.columns()), buffer, **PARQUET_OPTIONS)
        write_bytes_atomic(out / "liqmap.parquet", buffer.getvalue())
        if html is not None:
            write_text_atomic(out / "liqmap.html", html)
    if as_json:
        console.print_json(json.dumps(lmap.to_dict()))
    else:
        _print_tables(lmap)
    if out is not None:
        written = ["liqmap.parquet"] + (["liqmap.html"] if html is not None else [])
        (console.print if not as_json else _stderr)(f"wrote {', '.join(str(out / w) for w in written)}")


def _stderr(text: str) -> None:
    from perpstress.cli.app import err_console

    err_console.print(text, markup=False, highlight=False)


def _usd(x: float) -> str:
    return f"{x:,.0f}" if x else ""


def _print_tables(lmap: LiquidationMap) -> None:
    if not lmap.markets:
        console.print(f"{lmap.scenario}: no positions to map")
        return
    for mm in lmap.markets:
        table = Table(
            title=(
                f"{mm.key}: start {mm.start_price:,.8g}; longs ${mm.long_total_usd:,.0f}, "
                f"shorts ${mm.short_total_usd:,.0f} (USD at the start price)"
            )
        )
        for name in ("price", "from start", "longs", "longs, cumulative", "shorts", "shorts, cumulative"):
            table.add_column(name, justify="right")
        for i in range(mm.level_price.shape[0]):
            short_side = mm.pct_from_start[i] > 0
            table.add_row(
                f"{mm.level_price[i]:,.8g}",
                f"{mm.pct_from_start[i]:+.1%}",
                "" if short_side else _usd(float(mm.long_usd[i])),
                "" if short_side else _usd(float(mm.long_cum_usd[i])),
                _usd(float(mm.short_usd[i])) if short_side else "",
                _usd(float(mm.short_cum_usd[i])) if short_side else "",
                end_section=bool(short_side and mm.pct_from_start[i + 1] < 0),
            )
        console.print(table)
        notes = []
        if mm.long_at_start_usd or mm.short_at_start_usd:
            notes.append(f"already liquidatable at the start: longs ${mm.long_at_start_usd:,.0f}, "
                         f"shorts ${mm.short_at_start_usd:,.0f} (in the first levels)")  # fmt: skip
        if mm.long_beyond_usd or mm.short_beyond_usd:
            notes.append(f"beyond the range: longs ${mm.long_beyond_usd:,.0f}, shorts ${mm.short_beyond_usd:,.0f}")
        if mm.long_never_usd:
            notes.append(f"longs no price liquidates (collateral >= notional): ${mm.long_never_usd:,.0f}")
        for note in notes:
            console.print(f"  {note}", markup=False)
