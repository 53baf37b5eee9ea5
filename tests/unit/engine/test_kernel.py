"""The kernel's wall-clock accounting: what it records and where, never how long anything took."""

from __future__ import annotations

import pytest

from perpstress.engine.kernel import Clock, Kernel


def _kernel(steps: int = 5) -> tuple[Kernel, list[tuple[str, int]]]:
    kernel = Kernel(ts_start_ms=0, step_ms=1000, steps=steps, seed=1)
    seen: list[tuple[str, int]] = []

    def phase(name: str) -> None:
        def run(clock: Clock) -> None:
            seen.append((name, clock.step))
            if name == "liquidation":
                with kernel.timing.section("cascade"):
                    seen.append(("cascade", clock.step))
                kernel.timing.add("adl", 0.25)

        kernel.add(name, run)

    for name in ("makers", "prices", "liquidation", "record"):
        phase(name)
    return kernel, seen


def test_every_phase_is_timed_in_the_kernel_order_and_sections_are_filed_under_their_phase() -> None:
    kernel, seen = _kernel()
    assert list(kernel.timing.phases) == ["makers", "prices", "liquidation", "record"]  # known before the run
    kernel.run()
    timing = kernel.timing
    assert [name for name, step in seen if step == 0] == ["makers", "prices", "liquidation", "cascade", "record"]
    assert list(timing.phases) == [name for name, _ in kernel.phases]
    assert timing.steps == 5
    assert all(seconds >= 0 for seconds in timing.phases.values())
    assert sum(timing.phases.values()) <= timing.total_seconds
    assert list(timing.sections) == ["liquidation"]
    assert set(timing.sections["liquidation"]) == {"cascade", "adl"}
    assert timing.sections["liquidation"]["adl"] == pytest.approx(5 * 0.25)  # add() sums what it is given
    assert 0 <= timing.sections["liquidation"]["cascade"] <= timing.phases["liquidation"]
    assert timing.phase == ""  # nothing is running any more


def test_a_section_is_one_reused_object_per_phase_and_name() -> None:
    kernel, _ = _kernel()
    timing = kernel.timing
    timing.phase = "liquidation"
    first = timing.section("cascade")
    assert timing.section("cascade") is first  # timing a block every step allocates nothing
    timing.phase = "record"
    assert timing.section("cascade") is not first


def test_a_failing_phase_still_leaves_the_time_of_the_steps_before_it() -> None:
    kernel, _ = _kernel(steps=3)

    def fail(clock: Clock) -> None:
        if clock.step == 2:
            raise RuntimeError("boom")

    kernel.add("broken", fail)
    with pytest.raises(RuntimeError, match="boom"):
        kernel.run()
    assert kernel.timing.steps == 2
    assert kernel.timing.phase == ""
    assert sum(kernel.timing.phases.values()) <= kernel.timing.total_seconds
