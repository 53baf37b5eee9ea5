"""The kernel: a clock, a fixed order of phases and the run's named random streams. It knows no venue rule.

A phase is any callable taking the :class:`Clock`; the simulation registers them in DESIGN.md's order (exogenous
drivers, agents, prices, funding, margin check and liquidation, funds, ADL, record). Randomness: one
:class:`~perpstress.streams.RandomStreams` per run from the scenario's seed; each mechanism takes its own stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perpstress.streams import RandomStreams


@dataclass
class Clock:
    step: int
    ts_ms: int
    step_ms: int

    @property
    def step_s(self) -> float:
        return self.step_ms / 1000.0


Phase = Callable[[Clock], None]


class Kernel:
    def __init__(self, ts_start_ms: int, step_ms: int, steps: int, seed: int) -> None:
        self.ts_start_ms = ts_start_ms
        self.step_ms = step_ms
        self.steps = steps
        self.streams = RandomStreams(seed)
        self.phases: list[tuple[str, Phase]] = []

    def add(self, name: str, phase: Phase) -> None:
        self.phases.append((name, phase))

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        for step in range(self.steps):
            clock = Clock(step, self.ts_start_ms + step * self.step_ms, self.step_ms)
            for _, phase in self.phases:
                phase(clock)
            if progress is not None:
                progress(step)
