"""Optional dependencies: imported inside the function that needs them, with a one-line error naming the extra.

The core of perpstress needs NumPy, numba, pydantic, pyarrow, typer and rich only. pandas and Polars frames come
with the ``frames`` extra, DuckDB queries with ``query``, HTML reports with ``report``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from perpstress.errors import UsageError

EXTRA_OF = {"pandas": "frames", "polars": "frames", "duckdb": "query", "plotly": "report", "ray": "ray"}
"""Which extra of ``pyproject.toml`` installs each optional module."""


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`UsageError` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRA_OF.get(module.split(".")[0], "dev")
        raise UsageError(
            f"{module} is not installed; it comes with the {extra!r} extra: pip install 'perpstress[{extra}]'"
        ) from None
