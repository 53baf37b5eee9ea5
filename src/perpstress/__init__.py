"""perpstress: stress-test crypto derivatives venues with their published risk rules.

Layers (see docs/concepts.md): ``rules`` (pure formulas) -> ``config`` (typed scenario and venue presets) ->
``state``/``mechanisms``/``kernel`` (the cascade engine) -> ``outputs`` -> ``cli`` and this Python API.
"""

from perpstress.calculator import MarginReport, Side, margin_report
from perpstress.config.scenario import Scenario
from perpstress.config.venue import VenueConfig
from perpstress.errors import ConfigError, PerpstressError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "MarginReport",
    "PerpstressError",
    "Scenario",
    "Side",
    "VenueConfig",
    "__version__",
    "margin_report",
]
