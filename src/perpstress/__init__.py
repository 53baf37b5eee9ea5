"""perpstress: stress-test crypto derivatives venues with their published risk rules.

Layers (see docs/concepts.md): ``rules`` (pure formulas) -> ``config`` (typed scenario and venue presets) ->
``state``/``mechanisms``/``kernel`` (the cascade engine) -> ``outputs`` -> ``cli`` and this Python API:
:func:`run` a scenario, :func:`load` a run directory, :func:`query` many runs with SQL (see docs/api.md).
"""

from perpstress.api import Run, load, run
from perpstress.calculator import MarginReport, Side, margin_report
from perpstress.config.scenario import Scenario
from perpstress.config.venue import VenueConfig
from perpstress.errors import ConfigError, DataError, PerpstressError, UsageError
from perpstress.outputs.query import query

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "MarginReport",
    "PerpstressError",
    "Run",
    "Scenario",
    "Side",
    "UsageError",
    "VenueConfig",
    "__version__",
    "load",
    "margin_report",
    "query",
    "run",
]
