"""``perpstress margin``: the venue margin and liquidation-price calculator."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from perpstress.calculator import MarginReport, Side, load_venue, margin_report
from perpstress.cli.app import app, console
from perpstress.config.venue import MarginMode
from perpstress.errors import PerpstressError
from perpstress.presets import available_presets


@app.command("margin")
def margin(
    venue: Annotated[
        str, typer.Option(help="venue preset (binance, bybit, okx, hyperliquid, dydx, drift, bitget) or 'all'")
    ],
    symbol: Annotated[str, typer.Option(help="market, e.g. BTCUSDT; other venues' names for the asset also work")],
    side: Annotated[Side, typer.Option(help="position side")],
    size: Annotated[float, typer.Option(help="position size in base units (e.g. BTC)")],
    entry: Annotated[float, typer.Option(help="entry price")],
    collateral: Annotated[
        float, typer.Option(help="isolated margin, or the cross wallet balance with --mode cross (USD)")
    ],
    mode: Annotated[MarginMode, typer.Option(help="margin mode")] = MarginMode.ISOLATED,
    leverage: Annotated[
        float | None, typer.Option(help="leverage for the initial margin \\[default: the tier's maximum]")
    ] = None,
    mark: Annotated[float | None, typer.Option(help="current mark price \\[default: the entry price]")] = None,
    other_maintenance: Annotated[
        float, typer.Option(help="cross mode: maintenance margin of the account's other positions (USD)")
    ] = 0.0,
    other_upnl: Annotated[float, typer.Option(help="cross mode: unrealised PnL of the other positions (USD)")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON object instead of a table")] = False,
) -> None:
    """Maintenance and initial margin, tier, liquidation and bankruptcy price of one position.

    Example: [bold]perpstress margin --venue binance --symbol BTCUSDT --side long --size 1.5 --entry 100000
    --collateral 12000[/bold]
    """
    names = available_presets() if venue == "all" else [venue]
    reports: list[MarginReport] = []
    skipped: list[str] = []
    for name in names:
        try:
            reports.append(
                margin_report(
                    load_venue(name),
                    symbol,
                    side,
                    size,
                    entry,
                    collateral,
                    mode=mode,
                    leverage=leverage,
                    mark_price=mark,
                    other_maintenance=other_maintenance,
                    other_upnl=other_upnl,
                )
            )
        except PerpstressError as exc:
            if venue != "all":
                raise
            skipped.append(f"{name}: {exc}")
    if as_json:
        payload = reports[0].as_dict() if venue != "all" else [r.as_dict() for r in reports]
        console.print_json(json.dumps(payload))
        return
    if venue == "all":
        _print_comparison(reports, skipped)
    else:
        _print_report(reports[0])


def _fmt_price(value: float | None) -> str:
    return "none" if value is None else f"{value:,.2f}"


def _print_report(r: MarginReport) -> None:
    ref = r.price_reference
    title = f"{r.venue} {r.symbol}: {r.side} {r.size:g} @ {r.entry_price:,.2f} ({r.mode})"
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("notional", f"{r.notional:,.2f}"),
        ("tier", f"{r.tier} (MMR {r.maintenance_margin_rate:.4%}, max {r.max_leverage:g}x)"),
        ("maintenance margin", f"{r.maintenance_margin:,.2f}"),
        (f"initial margin at {r.leverage:g}x", f"{r.initial_margin:,.2f}"),
        ("collateral", f"{r.collateral:,.2f}"),
        (f"margin balance at {ref} {r.mark_price:,.2f}", f"{r.margin_balance:,.2f}"),
        ("margin ratio (MM / balance)", f"{r.margin_ratio:.2%}" if r.margin_ratio != float("inf") else "inf"),
        (f"liquidation price ({ref})", _fmt_price(r.liquidation_price)),
        ("bankruptcy price", _fmt_price(r.bankruptcy_price)),
    ]
    if r.liquidation_tier is not None and r.liquidation_tier != r.tier:
        rows.append(("tier at liquidation price", str(r.liquidation_tier)))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if r.liquidatable:
        console.print("[bold red]liquidatable now:[/] margin balance is below maintenance margin")
    for note in r.notes:
        console.print(f"note: {note}", markup=False)


def _print_comparison(reports: list[MarginReport], skipped: list[str]) -> None:
    if not reports:
        raise PerpstressError("no venue lists this market: " + "; ".join(skipped))
    first = reports[0]
    title = f"{first.side} {first.size:g} @ {first.entry_price:,.2f} with {first.collateral:,.2f} ({first.mode})"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("venue", "market", "tier", "MMR", "MM (USD)", "liq. price", "bankruptcy"):
        table.add_column(col, justify="left" if col in {"venue", "market"} else "right", no_wrap=True)
    for r in reports:
        table.add_row(
            r.venue,
            r.symbol,
            str(r.tier),
            f"{r.maintenance_margin_rate:.3%}",
            f"{r.maintenance_margin:,.0f}",
            _fmt_price(r.liquidation_price) + ("*" if r.price_reference == "oracle" else ""),
            _fmt_price(r.bankruptcy_price),
        )
    console.print(table)
    if any(r.price_reference == "oracle" for r in reports):
        console.print("* on the oracle price; the other venues liquidate on their mark price")
    for line in skipped:
        console.print(f"skipped {line}", markup=False)
