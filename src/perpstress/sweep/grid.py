"""Sweep grids: which scenario parameters a sweep varies, and the scenario of each grid cell.

A grid file is TOML with one ``[grid]`` table mapping dotted scenario paths to lists of values::

    [grid]
    "venues.binance.insurance_fund.initial_usd" = [1e6, 5e6, 2.5e7]
    "venues.hyperliquid.adl.rule" = ["ranked_queue", "capped_pro_rata"]
    "venues.binance.adl" = [{ rule = "capped_pro_rata", max_haircut = 0.5 }, { rule = "risk_aware_pro_rata" }]

Bare dotted keys (``venues.binance.insurance_fund.initial_usd = [...]``) mean the same as quoted ones. The cells
are the Cartesian product of the lists, in file order (the last path varies fastest).

A value replaces what the path names in the resolved scenario. Mechanisms that differ by venue are discriminated
unions (``adl.rule``, ``liquidation.procedure``, ``shock.kind``): setting the discriminator alone to another
variant starts that table afresh with the variant's defaults (as a scenario file switching a preset's rule does);
a variant with required parameters (``ranked_queue`` needs ``ranking`` and ``price``) is given as a whole table.

Every value and every cell is validated against the base scenario before any run, so a bad grid fails at once;
errors name the grid file, the path, the value and the rule broken.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from perpstress.config.base import DocumentError
from perpstress.config.scenario import Scenario, format_validation_error, parse_toml, read_text_file
from perpstress.errors import ConfigError, PerpstressError, UsageError

DISCRIMINATORS = frozenset({"rule", "procedure"})
"""Last path keys that select a union variant (``venues.X.adl.rule``, ``venues.X.liquidation.procedure``)."""
DISCRIMINATOR_PATHS = frozenset({"shock.kind"})
RESERVED = {"seed": "seeds come from --seeds (numpy SeedSequence.spawn), not from the grid"}


@dataclass(frozen=True)
class Grid:
    """Dotted scenario paths, each with its values; ``source`` names the file in messages."""

    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    source: str = "<grid>"

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.axes)

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of values, in file order (the last path varies fastest); one empty cell when the grid
        has no paths (a Monte Carlo over seeds only)."""
        values = [vals for _, vals in self.axes]
        return [dict(zip(self.paths, combo, strict=True)) for combo in itertools.product(*values)]

    def label(self, cell: Mapping[str, Any]) -> str:
        """``path=value, ...`` for tables and plots (``base`` for the single cell of an empty grid)."""
        if not cell:
            return "base"
        return ", ".join(f"{path}={value_text(value)}" for path, value in cell.items())

    def to_json(self) -> dict[str, list[Any]]:
        return {path: [_jsonable(v) for v in vals] for path, vals in self.axes}


def value_text(value: Any) -> str:
    """A grid value as short text: strings bare, numbers as written, tables and lists as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:.12g}" if isinstance(value, float) else str(value)
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def load_grid(path: str | Path) -> Grid:
    """Read a grid file; problems raise :class:`ConfigError` naming the file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError([f"{file}: no such grid file"])
    return parse_grid(parse_toml(read_text_file(file, "grid file"), str(file)), str(file))


def parse_grid(data: Mapping[str, Any], source: str = "<grid>") -> Grid:
    """The grid in ``data`` (a parsed grid file: one ``grid`` table of dotted paths to value lists)."""
    problems = [f"{source}: {key}: unknown table; a grid file holds one [grid] table" for key in data if key != "grid"]
    table = data.get("grid")
    if table is None:
        problems.append(f'{source}: no [grid] table (e.g. [grid] "venues.binance.insurance_fund.initial_usd" = [1e6])')
    elif not isinstance(table, dict):
        problems.append(f"{source}: grid: must be a table of dotted paths to lists of values")
    axes: list[tuple[str, tuple[Any, ...]]] = []
    if isinstance(table, dict):
        for path, values in _flatten(table):
            problems.extend(_check_axis(source, path, values))
            if isinstance(values, list):
                axes.append((path, tuple(values)))
    if problems:
        raise ConfigError(problems)
    return Grid(tuple(axes), source)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested tables (bare dotted keys) become dotted paths; a list ends a path."""
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, path + "."))
        else:
            out.append((path, value))
    return out


def _check_axis(source: str, path: str, values: Any) -> list[str]:
    where = f"{source}: grid {path}"
    if path in RESERVED:
        return [f"{where}: cannot be swept; {RESERVED[path]}"]
    if any(not part for part in path.split(".")):
        return [f"{where}: empty key in the dotted path"]
    if not isinstance(values, list):
        return [f"{where}: must be a list of values (got {value_text(values)}); write [{value_text(values)}] for one"]
    if not values:
        return [f"{where}: empty list; give at least one value"]
    seen: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        text = json.dumps(_jsonable(value), sort_keys=True)
        if text in seen:
            problems.append(f"{where}[{i}]: value {value_text(value)} repeats item {seen[text]}; cells must differ")
        seen.setdefault(text, i)
    return problems


# --- applying cells -------------------------------------------------------------------------------------------


def apply_cell(base: Scenario, cell: Mapping[str, Any]) -> Scenario:
    """``base`` with each ``path: value`` of ``cell`` set, validated like a scenario file.

    Raises :class:`ConfigError` (lines ``path: message``, without a file name) or :class:`PathError` when a path
    does not lead through the scenario's tables."""
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)  # the form that round-trips exactly
    for path, value in cell.items():
        _set(data, path, value)
    try:
        return Scenario.validate_document(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "")) from None
    except DocumentError as exc:
        raise ConfigError([f"{exc.path}: {exc.message}"]) from None
    except PerpstressError as exc:
        raise ConfigError([str(exc)]) from None


class PathError(PerpstressError):
    """A grid path that does not lead through the scenario's tables."""


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node: dict[str, Any] = data
    for depth, key in enumerate(keys[:-1]):
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            where = ".".join(keys[: depth + 1])
            if key not in node:
                known = ", ".join(sorted(map(str, node))) or "nothing"
                raise PathError(f"{where}: no such table in the scenario (here it has: {known})")
            raise PathError(f"{where}: is a value, not a table, so {path} names nothing")
        node = nxt
    last = keys[-1]
    old = node.get(last)
    switches = (last in DISCRIMINATORS or path in DISCRIMINATOR_PATHS) and isinstance(value, str) and old != value
    if switches and isinstance(old, str):
        node.clear()  # another union variant: its table starts afresh with the variant's defaults
    node[last] = value


def validate_grid(base: Scenario, grid: Grid) -> list[Scenario]:
    """The scenario of every cell (seed still the base's), or :class:`ConfigError` listing every bad value and
    cell. Each value is first checked alone, so an error names the one path and value at fault."""
    problems: list[str] = []
    for path, values in grid.axes:
        switch = path.rsplit(".", 1)[-1] in DISCRIMINATORS or path in DISCRIMINATOR_PATHS
        for value in values:
            found = _problems(base, {path: value}, f"{grid.source}: grid {path} = {value_text(value)}")
            if found and switch and isinstance(value, str):
                parent, key = path.rsplit(".", 1)
                found[-1] += f' (give a variant with parameters whole: "{parent}" = [{{ {key} = "{value}", ... }}])'
            problems.extend(found)
    if problems:
        raise ConfigError(problems)
    scenarios: list[Scenario] = []
    for i, cell in enumerate(grid.cells()):
        try:
            scenarios.append(apply_cell(base, cell))
        except (ConfigError, PathError) as exc:
            problems.extend(_lines(exc, f"{grid.source}: grid cell {i} ({grid.label(cell)})"))
    if problems:
        raise ConfigError(problems)
    return scenarios


def _problems(base: Scenario, cell: Mapping[str, Any], where: str) -> list[str]:
    try:
        apply_cell(base, cell)
    except (ConfigError, PathError) as exc:
        return _lines(exc, where)
    return []


def _lines(exc: PerpstressError, where: str) -> list[str]:
    lines: Sequence[str] = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
    return [f"{where}: {line.removeprefix(': ')}" for line in lines]


# --- the baseline cell ------------------------------------------------------------------------------------------


def baseline_cell(grid: Grid, spec: str | None) -> int:
    """The cell the others are compared with, seed by seed: cell 0 without ``spec``; else a cell number (``2``)
    or ``PATH=VALUE`` pairs separated by commas (``venues.binance.adl.rule=capped_pro_rata``), each PATH a grid
    path or the unique grid path it ends (``initial_usd=8e6``), each VALUE a TOML value (a bare word is a string;
    a table is written inline: ``adl={rule="capped_pro_rata", max_haircut=0.5}``). The pairs must pick out
    exactly one cell; otherwise :class:`UsageError` names the rule broken."""
    cells = grid.cells()
    if spec is None:
        return 0
    text = spec.strip()
    if text.isdigit():
        c = int(text)
        if c >= len(cells):
            raise UsageError(f"--baseline {spec}: no such cell; the grid has cells 0 to {len(cells) - 1}")
        return c
    wanted: dict[str, Any] = {}
    for item in _split_top_level(text):
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise UsageError(f"--baseline {spec}: {item.strip()!r} is not PATH=VALUE (or give a cell number)")
        path = _grid_path(grid, key, spec)
        if path in wanted:
            raise UsageError(f"--baseline {spec}: {path} is given twice")
        wanted[path] = _toml_value(raw)
    matches = [c for c, cell in enumerate(cells) if all(_same(cell[p], v) for p, v in wanted.items())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        values = "; ".join(f"{p}: {', '.join(value_text(v) for v in vals)}" for p, vals in grid.axes if p in wanted)
        raise UsageError(f"--baseline {spec}: no grid cell has these values (the grid has {values})")
    raise UsageError(
        f"--baseline {spec}: {len(matches)} cells match ({', '.join(map(str, matches))}); name a value for every "
        "grid path, or give a cell number"
    )


def _split_top_level(text: str) -> list[str]:
    """``a=1, b={x=1, y=2}`` -> ``["a=1", " b={x=1, y=2}"]``: commas outside braces, brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _grid_path(grid: Grid, key: str, spec: str) -> str:
    if key in grid.paths:
        return key
    ends = [p for p in grid.paths if p.endswith("." + key)]
    if len(ends) == 1:
        return ends[0]
    if not grid.paths:
        raise UsageError(f"--baseline {spec}: the sweep has no grid, so it has one cell and nothing to compare")
    if ends:
        raise UsageError(f"--baseline {spec}: {key} ends several grid paths ({', '.join(ends)}); write it whole")
    raise UsageError(f"--baseline {spec}: {key} is not a grid path (the grid varies {', '.join(grid.paths)})")


def _toml_value(raw: str) -> Any:
    try:
        return parse_toml(f"v = {raw}", "--baseline")["v"]
    except ConfigError:
        return raw


def _same(a: Any, b: Any) -> bool:
    """Grid values equal as the grid file means them (``8e6`` is ``8000000``; tables compare key by key)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
