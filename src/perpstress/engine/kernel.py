"""The kernel: a clock, a fixed order of phases and the run's named random streams. It knows no venue rule.

A phase is any callable taking the :class:`Clock`; the simulation registers them in DESIGN.md's order (exogenous
drivers, agents, prices, funding, margin check and liquidation, funds, ADL, record). Randomness: one
:class:`~perpstress.streams.RandomStreams` per run from the scenario's seed; each mechanism takes its own stream.

The kernel also keeps the run's wall-clock :class:`Timing`: seconds spent in each phase, summed over the steps
(``time.perf_counter``, one reading after each phase call), and sections a phase times inside itself
(``kernel.timing.section("cascade")``). Timings are measurements, not outcomes: they differ between two runs of
one seed, so nothing that has to be reproducible may depend on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from perpstress.state.clock import Clock
from perpstress.streams import RandomStreams

__all__ = ["Clock", "Kernel", "Phase", "Timing"]


Phase = Callable[[Clock], None]


class _Section:
    """A reusable context manager adding the seconds between enter and exit to one section (not re-entrant)."""

    __slots__ = ("_name", "_started", "_within")

    def __init__(self, within: dict[str, float], name: str) -> None:
        self._within, self._name, self._started = within, name, 0.0
        within.setdefault(name, 0.0)

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._within[self._name] += time.perf_counter() - self._started


class Timing:
    """Wall-clock seconds of a run: per phase (in the kernel's order), per section within a phase, and the step
    loop's total, over ``steps`` steps. The kernel owns one (``kernel.timing``) and fills in the phases; a phase
    adds its own sections with :meth:`section` or :meth:`add`."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        """Phase name -> seconds, in the order the phases run."""
        self.sections: dict[str, dict[str, float]] = {}
        """Phase name -> section name -> seconds (a section's time is part of its phase's)."""
        self.total_seconds = 0.0
        """The step loop from first step to last, phases and the progress callback included."""
        self.steps = 0
        self.phase = ""
        """The phase running now ("" between phases): where :meth:`add` and :meth:`section` file their time."""
        self._open: dict[tuple[str, str], _Section] = {}

    def _within(self, phase: str) -> dict[str, float]:
        within = self.sections.get(phase)
        if within is None:
            within = self.sections[phase] = {}
        return within

    def add(self, name: str, seconds: float, phase: str | None = None) -> None:
        """Add ``seconds`` to section ``name`` of ``phase`` (default: the phase running now)."""
        within = self._within(self.phase if phase is None else phase)
        within[name] = within.get(name, 0.0) + seconds

    def section(self, name: str) -> _Section:
        """``with timing.section("cascade"): ...`` times the block as section ``name`` of the running phase. The
        context manager is made once per phase and name and reused, so timing a block every step allocates
        nothing."""
        key = (self.phase, name)
        found = self._open.get(key)
        if found is None:
            found = self._open[key] = _Section(self._within(self.phase), name)
        return found


class Kernel:
    def __init__(self, ts_start_ms: int, step_ms: int, steps: int, seed: int) -> None:
        self.ts_start_ms = ts_start_ms
        self.step_ms = step_ms
        self.steps = steps
        self.streams = RandomStreams(seed)
        self.phases: list[tuple[str, Phase]] = []
        self.timing = Timing()

    def add(self, name: str, phase: Phase) -> None:
        self.phases.append((name, phase))
        self.timing.phases.setdefault(name, 0.0)

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        timing = self.timing
        names = [name for name, _ in self.phases]
        calls = [phase for _, phase in self.phases]
        seconds = [0.0] * len(calls)
        order = range(len(calls))
        clock_now = time.perf_counter
        started = clock_now()
        try:
            for step in range(self.steps):
                clock = Clock(step, self.ts_start_ms + step * self.step_ms, self.step_ms)
                last = clock_now()
                for i in order:
                    timing.phase = names[i]
                    calls[i](clock)
                    now = clock_now()
                    seconds[i] += now - last
                    last = now
                timing.phase = ""
                timing.steps += 1
                if progress is not None:
                    progress(step)
        finally:
            timing.total_seconds += clock_now() - started
            timing.phase = ""
            for name, spent in zip(names, seconds, strict=True):
                timing.phases[name] += spent
