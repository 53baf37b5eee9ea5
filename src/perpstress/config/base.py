"""Shared pieces of every configuration model: frozen models, sources with confidence tags, rule errors.

Every number in a venue preset carries a :class:`Source`: where it comes from (a URL or ``owner/repo path``) and
how sure we are of it (:class:`Confidence`, the tags of ``shared/reference/exchange-rules.md``). A config section
(``MarkConfig``, ``MarginTier`` ...) has one ``source`` for all its numbers and may name a different source for
single fields in ``field_sources``.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MAX_MAGNITUDE = 1e15
"""No real number in a configuration may exceed this in magnitude (a quadrillion: USD, prices, sizes, seconds)."""
MAX_INTEGER = 2**63 - 1
"""Integers (seeds, counts) fit in 64 bits."""


class FrozenModel(BaseModel):
    """Immutable, strict about unknown keys, serialisable to TOML/JSON with a stable hash.

    NaN and infinity are refused in every float field. Documents (scenario and grid files, ``with_`` changes) are
    validated by :meth:`validate_document`: a boolean or a numeric string is not a number, and every number is at
    most :data:`MAX_MAGNITUDE` in magnitude."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, use_enum_values=False, allow_inf_nan=False
    )

    @classmethod
    def validate_document(cls, data: Any) -> Self:
        """Validate parsed TOML (or the dumped form of a model with changes) as a file is validated: a real number
        beyond :data:`MAX_MAGNITUDE` or an integer beyond 64 bits is refused, and so is a value coerced across kinds
        (``true`` or ``"1.5"`` read as a number, ``1`` as a boolean). Raises ``ValidationError`` or
        :class:`DocumentError`."""
        _check_magnitudes(data, ())
        model = cls.model_validate(data)
        _check_not_coerced(data, model.model_dump(mode="python", by_alias=True), ())
        return model

    def with_(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and validated again (dotted paths allowed: ``a__b=1`` is ``a.b``).

        The copy starts from the serialised form (JSON types, unset optionals left out), the form a scenario file
        round-trips through, so validating it again reproduces the model exactly (same ``stable_hash``)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in changes.items():
            set_dotted(data, key.replace("__", "."), value)
        return type(self).validate_document(data)

    def stable_hash(self) -> str:
        """SHA-256 of the canonical JSON form; equal configs hash equal on any machine."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


class DocumentError(ValueError):
    """A value no field can hold (a number beyond :data:`MAX_MAGNITUDE`), found before validation; ``path`` is
    its dotted place in the document."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(top level)"


def _check_magnitudes(value: Any, path: tuple[str | int, ...]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_magnitudes(v, (*path, str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_magnitudes(v, (*path, i))
    elif isinstance(value, float) and math.isfinite(value) and abs(value) > MAX_MAGNITUDE:
        raise DocumentError(_where(path), f"must be at most {MAX_MAGNITUDE:g} in magnitude (got {value:g})")
    elif _is_number(value) and isinstance(value, int) and abs(value) > MAX_INTEGER:
        raise DocumentError(_where(path), f"must fit in a 64-bit integer (got {value:.3g})")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_not_coerced(raw: Any, validated: Any, path: tuple[str | int, ...]) -> None:
    """``raw`` (the document) beside ``validated`` (the model dumped): a number must have been written as a
    number and a boolean as a boolean."""
    if isinstance(raw, dict) and isinstance(validated, dict):
        for k, v in raw.items():
            if k in validated:
                _check_not_coerced(v, validated[k], (*path, str(k)))
    elif isinstance(raw, list | tuple) and isinstance(validated, list | tuple) and len(raw) == len(validated):
        for i, (r, v) in enumerate(zip(raw, validated, strict=True)):
            _check_not_coerced(r, v, (*path, i))
    elif isinstance(validated, datetime) and not isinstance(raw, datetime | str):
        raise DocumentError(_where(path), f"must be a date and time like 2025-10-10T21:00:00Z (got {raw!r})")
    elif isinstance(validated, bool):
        if not isinstance(raw, bool):
            raise DocumentError(_where(path), f"must be true or false (got {raw!r})")
    elif isinstance(validated, float) and abs(validated) > MAX_MAGNITUDE:
        raise DocumentError(_where(path), f"must be at most {MAX_MAGNITUDE:g} in magnitude (got {validated:g})")
    elif isinstance(validated, int | float) and isinstance(raw, bool | str):
        if isinstance(raw, bool):
            raise DocumentError(_where(path), f"must be a number, not a boolean (got {str(raw).lower()})")
        raise DocumentError(_where(path), f"must be a number, written without quotes (got {raw!r})")


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``path == "a.b"``, creating tables on the way."""
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[keys[-1]] = value


class Confidence(StrEnum):
    """How sure a number is; the tags of ``shared/reference/exchange-rules.md``."""

    CODE = "code"
    """Read in the venue's open-source code at a cited commit."""
    OFFICIAL = "official"
    """The venue's own documentation or announcement."""
    SECONDARY = "2nd"
    """A secondary source: news, a mirror, a third-party fixture. Plausible, unverified."""
    DERIVED = "derived"
    """Computed from a confirmed formula (e.g. a maintenance amount from the continuity rule)."""
    UNCONFIRMED = "UNCONFIRMED"
    """Not confirmed; a value chosen openly, with the reason in ``note``."""
    SCENARIO = "scenario"
    """Set by a scenario author for a what-if, not a venue's published value."""


class Source(FrozenModel):
    """Where a number comes from."""

    ref: str = Field(min_length=1, description="URL or repository path (owner/repo path@commit)")
    confidence: Confidence
    note: str = Field("", description="what is assumed or chosen, and why")


def scenario_source() -> Source:
    """The source of a value a scenario author set (the default for tables written in a scenario)."""
    return Source(ref="scenario override", confidence=Confidence.SCENARIO)


class Sourced(FrozenModel):
    """A config section whose numbers carry a source; ``field_sources`` overrides it per field.

    ``source`` defaults to :func:`scenario_source`, so scenario authors need not cite; presets always cite (a test
    checks that no preset value falls back to the default).
    """

    source: Source = Field(default_factory=scenario_source)
    field_sources: dict[str, Source] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _field_sources_name_fields(self) -> Self:
        unknown = sorted(set(self.field_sources) - set(type(self).model_fields))
        if unknown:
            raise rule_error(".field_sources", f"names no field of {type(self).__name__}: {', '.join(unknown)}")
        return self

    def source_of(self, field: str) -> Source:
        """The source of one field's value."""
        return self.field_sources.get(field, self.source)


def rule_error(subpath: str, message: str) -> PydanticCustomError:
    """A validation error for a rule; ``subpath`` (e.g. ``[2].notional_floor``) extends the field path."""
    return PydanticCustomError("perpstress_rule", "{message}", {"message": message, "subpath": subpath})
