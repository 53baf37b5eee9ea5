"""Shared pieces of every configuration model: frozen models, sources with confidence tags, rule errors.

Every number in a venue preset carries a :class:`Source`: where it comes from (a URL or ``owner/repo path``) and
how sure we are of it (:class:`Confidence`, the tags of ``shared/reference/exchange-rules.md``). A config section
(``MarkConfig``, ``MarginTier`` ...) has one ``source`` for all its numbers and may name a different source for
single fields in ``field_sources``.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class FrozenModel(BaseModel):
    """Immutable, strict about unknown keys, serialisable to TOML/JSON with a stable hash."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, use_enum_values=False)

    def with_(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and validated again (dotted paths allowed: ``a__b=1`` is ``a.b``).

        The copy starts from the serialised form (JSON types, unset optionals left out), the form a scenario file
        round-trips through, so validating it again reproduces the model exactly (same ``stable_hash``)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in changes.items():
            set_dotted(data, key.replace("__", "."), value)
        return type(self).model_validate(data)

    def stable_hash(self) -> str:
        """SHA-256 of the canonical JSON form; equal configs hash equal on any machine."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


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
