"""Errors a user can read: each names where the problem is, the value and the rule it broke.

The command line prints these as one line each and exits with code 2; the Python API raises them. Nothing in
perpstress lets a raw traceback reach a user for bad input.
"""

from __future__ import annotations

from collections.abc import Sequence


class PerpstressError(Exception):
    """Base class of every error perpstress raises on purpose."""


class UsageError(PerpstressError):
    """A command-line or API argument is out of its allowed range (e.g. a negative position size)."""


class MissingExtraError(PerpstressError):
    """An optional dependency (an extra such as ``report``) is not installed; the message names the extra."""


class UnknownNameError(PerpstressError):
    """A venue, market, preset or scenario name that does not exist; the message lists what does."""

    def __init__(self, kind: str, name: str, known: Sequence[str]) -> None:
        self.kind, self.name, self.known = kind, name, tuple(known)
        choices = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown {kind} {name!r}; known: {choices}")


class ConfigError(PerpstressError):
    """A scenario or preset file that is malformed or breaks a rule.

    ``problems`` holds one line per problem, each ``FILE: field.path[i]: what is wrong``.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class DataError(PerpstressError):
    """An input data file (positions snapshot, price path) with bad rows; lists every bad row."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))
