"""Event tables kept as columns (one list per field) while a run goes, written to Parquet at the end."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class EventColumns:
    """Subclasses declare one ``list`` field per column; :meth:`add` appends a row given in field order."""

    def add(self, *row: Any) -> None:
        for column, value in zip(fields(self), row, strict=True):
            getattr(self, column.name).append(value)
