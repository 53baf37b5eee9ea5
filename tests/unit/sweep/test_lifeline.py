"""Processes die with their driver: the worker's own guards and the lifeline watcher, on real processes.

Each test starts a "driver" process that starts a child the way a sweep does, kills the driver with SIGKILL (no
cleanup code runs) and polls until the child is gone. The whole-sweep versions are in tests/scenario/test_sweep.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from perpstress.sweep import lifeline

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")

SRC = str(Path(lifeline.__file__).resolve().parents[2])
WAIT_S = 30.0
"""Bounded wait for a process to go (the watchdog polls every second)."""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def start_driver(code: str) -> tuple[subprocess.Popen[str], list[int]]:
    """Start a driver running ``code``, which prints the pids it wants watched, one per line, then ``ready``."""
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=SRC))  # fmt: skip
    assert driver.stdout is not None
    pids = []
    for line in driver.stdout:
        if line.strip() == "ready":
            break
        pids.append(int(line))
    return driver, pids


def kill_driver(driver: subprocess.Popen[str]) -> None:
    driver.kill()
    driver.wait(timeout=10)


CHILD = """
import os, sys, time
sys.path.insert(0, {src!r})
from perpstress.sweep import lifeline
{setup}
print(os.getpid(), flush=True)
time.sleep(600)
"""


def child_driver(setup: str) -> str:
    child = CHILD.format(src=SRC, setup=setup)
    return f"""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", {child!r}], stdout=subprocess.PIPE, text=True)
        print(child.stdout.readline().strip(), flush=True)
        print("ready", flush=True)
        child.wait()
    """


@pytest.mark.parametrize("guard", ["die_with_parent", "watchdog"])
def test_a_child_dies_when_its_driver_is_killed(guard: str) -> None:
    setup = {
        "die_with_parent": "assert lifeline.die_with_parent(os.getppid()) == 'kernel'",
        "watchdog": "import threading; threading.Thread(target=lifeline._watch_parent, args=(os.getppid(),), "
        "daemon=True).start()",
    }[guard]
    driver, (child,) = start_driver(child_driver(setup))
    try:
        assert alive(child)
        time.sleep(0.3)
        assert alive(child)  # the guard does not fire while the driver lives
        kill_driver(driver)
        assert gone_within(child, WAIT_S)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_without_a_guard_the_child_outlives_its_driver() -> None:
    """The control: the tests above would not pass by themselves."""
    driver, (child,) = start_driver(child_driver(""))
    try:
        kill_driver(driver)
        assert not gone_within(child, 1.5)
    finally:
        os.kill(child, signal.SIGKILL)


LIFELINE_DRIVER = """
    import subprocess, sys, time
    sys.path.insert(0, {src!r})
    from perpstress.sweep.lifeline import Lifeline
    line = Lifeline.start()
    # A process in its own session, as Ray's agents end up: nothing else would kill it.
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    line.guard({{orphan.pid}})
    print(orphan.pid, flush=True)
    print(line.watcher.pid, flush=True)
    {then}
    print("ready", flush=True)
    time.sleep(600)
"""


def test_the_lifeline_kills_what_it_guards_when_its_driver_is_killed() -> None:
    driver, (orphan, watcher) = start_driver(LIFELINE_DRIVER.format(src=SRC, then=""))
    try:
        assert alive(orphan)
        assert alive(watcher)
        kill_driver(driver)
        assert gone_within(orphan, WAIT_S)
        assert gone_within(watcher, WAIT_S)
    finally:
        for pid in (orphan, watcher):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_released_lifeline_kills_nothing() -> None:
    driver, (orphan, watcher) = start_driver(LIFELINE_DRIVER.format(src=SRC, then="line.release()"))
    try:
        assert gone_within(watcher, WAIT_S)
        kill_driver(driver)
        assert not gone_within(orphan, 1.5)
    finally:
        for pid in (orphan, watcher):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_reused_pid_is_not_killed() -> None:
    """The watcher kills a pid only if it still has the start time it was given."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = lifeline.start_time(sleeper.pid)
        assert started is not None
        assert lifeline._watch([f"{sleeper.pid} {started + 1}\n"]) == 0
        assert alive(sleeper.pid)
        assert lifeline._watch([f"{sleeper.pid} {started}\n", "release\n"]) == 0
        assert alive(sleeper.pid)
        assert lifeline._watch([f"{sleeper.pid} {started}\n"]) == 1
        assert sleeper.wait(timeout=WAIT_S) == -signal.SIGKILL
    finally:
        sleeper.kill()


def test_descendants_are_children_and_their_children() -> None:
    driver, (child,) = start_driver(child_driver(""))
    try:
        assert child in lifeline.descendants(driver.pid)
        assert driver.pid in lifeline.descendants(os.getpid())
        assert child in lifeline.descendants(os.getpid())
        assert driver.pid not in lifeline.descendants(child)
    finally:
        kill_driver(driver)
        os.kill(child, signal.SIGKILL)
