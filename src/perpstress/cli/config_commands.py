"""Commands about configuration: ``schema``, ``presets``, ``scenarios`` and ``check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from perpstress.cli.app import app, console
from perpstress.config.scenario import Scenario, scenario_json_schema
from perpstress.config.venue import VenueConfig
from perpstress.errors import ConfigError, UnknownNameError
from perpstress.outputs.atomic import write_text_atomic
from perpstress.presets import available_presets, available_scenarios


@app.command("schema")
def schema(
    out: Annotated[Path | None, typer.Option(help="write the schema to this file instead of stdout")] = None,
) -> None:
    """Print the JSON Schema of scenario files, for editors' completion and checking.

    In VS Code with the Even Better TOML extension, put [bold]#:schema ./perpstress.schema.json[/bold] at the top of
    a scenario after [bold]perpstress schema --out perpstress.schema.json[/bold].
    """
    text = json.dumps(scenario_json_schema(), indent=2)
    if out is None:
        console.print_json(text)
    else:
        write_text_atomic(out, text + "\n")
        console.print(f"wrote {out}")


@app.command("presets")
def presets(
    name: Annotated[str | None, typer.Argument(help="a preset to show in full; omit to list them")] = None,
) -> None:
    """List the venue presets, or show one preset's rules with the source and confidence of every value."""
    if name is None:
        table = Table(title="venue presets")
        for col in ("preset", "venue", "mark", "liquidation", "ADL", "perpetuals"):
            table.add_column(col)
        for preset in available_presets():
            v = VenueConfig.model_validate({"preset": preset})
            table.add_row(
                preset,
                v.display_name,
                v.mark.method.value,
                v.liquidation.procedure,
                v.adl.rule,
                ", ".join(v.perpetuals),
            )
        console.print(table)
        return
    if name not in available_presets():
        raise UnknownNameError("venue preset", name, available_presets())
    venue = VenueConfig.model_validate({"preset": name})
    table = Table(title=f"{venue.display_name} ({name})")
    for col in ("value", "setting", "confidence", "source"):
        table.add_column(col, overflow="fold")
    for label, section in venue.rule_sections():
        for field, value in section.model_dump(exclude={"source", "field_sources"}, exclude_none=True).items():
            src = section.source_of(field)
            table.add_row(f"{label}.{field}", str(value), src.confidence.value, _cite(src.ref, src.note))
    for symbol, market in venue.perpetuals.items():
        for i, tier in enumerate(market.margin_tiers):
            setting = (
                f"{tier.notional_floor:,.0f}-{tier.notional_cap:,.0f}: {tier.max_leverage:g}x, "
                f"MMR {tier.maintenance_margin_rate:.4%}"
            )
            src = tier.source
            table.add_row(f"{symbol} tier {i + 1}", setting, src.confidence.value, _cite(src.ref, src.note))
    console.print(table)
    if venue.notes:
        console.print(f"note: {venue.notes}", markup=False)


def _cite(ref: str, note: str) -> str:
    return f"{ref} ({note})" if note else ref


@app.command("scenarios")
def scenarios() -> None:
    """List the built-in scenarios."""
    table = Table(title="built-in scenarios")
    table.add_column("name")
    table.add_column("venues")
    table.add_column("simulated")
    table.add_column("description")
    for name in available_scenarios():
        sc = Scenario.load(name)
        table.add_row(name, ", ".join(sc.venues), f"{sc.duration_s / 60:g} min", sc.description)
    console.print(table)


@app.command("check")
def check(
    scenario: Annotated[str, typer.Argument(help="scenario file or built-in scenario name")],
    resolved: Annotated[
        Path | None, typer.Option(help="also write the resolved scenario (every preset value) to this TOML file")
    ] = None,
    scale: Annotated[float, typer.Option(help="check it can run at this --scale")] = 1.0,
) -> None:
    """Validate a scenario file and summarise it; errors name the file, the field and the rule broken. A scenario
    that passes can be run (``run`` asks the same questions)."""
    sc = Scenario.load(scenario)
    problems = sc.run_problems(scale)
    if problems:
        raise ConfigError([f"{scenario}: {p}" for p in problems])
    markets = sum(len(v.markets()) for v in sc.venues.values())
    console.print(
        f"[green]ok[/] {sc.name}: {len(sc.venues)} venues, {markets} perpetual markets, {sc.steps:,} steps of "
        f"{sc.step_ms:,} ms from {sc.start:%Y-%m-%d %H:%M:%S} UTC; config hash {sc.stable_hash()[:12]}"
    )
    if resolved is not None:
        write_text_atomic(resolved, sc.to_toml())
        console.print(f"wrote {resolved}")
