"""The kernel's clock as the phases see it: the step number, its time and the step length."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Clock:
    step: int
    ts_ms: int
    """Milliseconds since the epoch at this step."""
    step_ms: int

    @property
    def step_s(self) -> float:
        return self.step_ms / 1000.0
