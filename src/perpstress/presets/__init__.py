"""Venue presets and built-in scenarios, shipped as TOML data files inside the package.

``venues/NAME.toml`` holds one venue's published rules, each number with its source and confidence tag
(``shared/reference/exchange-rules.md`` is the map of sources). ``scenarios/NAME.toml`` holds built-in scenarios.
"""

from __future__ import annotations

import copy
import functools
import tomllib
from importlib import resources
from typing import Any

from perpstress.errors import ConfigError, UnknownNameError

_ROOT = resources.files(__package__)


def available_presets() -> list[str]:
    """Names of the venue presets shipped with perpstress."""
    return sorted(p.name.removesuffix(".toml") for p in _ROOT.joinpath("venues").iterdir() if p.name.endswith(".toml"))


def available_scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    folder = _ROOT.joinpath("scenarios")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_path(name: str) -> str:
    """Display path of a preset file (for error messages)."""
    return f"perpstress/presets/venues/{name}.toml"


def load_preset_data(name: str) -> dict[str, Any]:
    """The raw table of preset ``name`` (a fresh copy the caller may change)."""
    return copy.deepcopy(_read_preset(name))


@functools.cache
def _read_preset(name: str) -> dict[str, Any]:
    if name not in available_presets():
        raise UnknownNameError("venue preset", name, available_presets())
    text = _ROOT.joinpath("venues", f"{name}.toml").read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{preset_path(name)}: not valid TOML: {exc}"]) from None


def scenario_text(name: str) -> str:
    """The TOML text of built-in scenario ``name``."""
    if name not in available_scenarios():
        raise UnknownNameError("built-in scenario", name, available_scenarios())
    return _ROOT.joinpath("scenarios", f"{name}.toml").read_text(encoding="utf-8")
