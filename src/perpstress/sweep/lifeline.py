"""Processes a sweep starts die with the sweep's driver, however the driver ends (``SIGKILL`` included).

A driver killed outright runs no cleanup code, so the processes it started must notice its death themselves, or be
killed by a process that outlives it:

- **Process-pool workers** call :func:`die_with_parent` in their initialiser. On Linux the kernel sends them
  ``SIGKILL`` when the driver dies (``prctl(PR_SET_PDEATHSIG)``): it needs no thread, works while the worker is
  inside a compiled kernel that holds the GIL, and cannot be missed. Elsewhere a daemon thread polls
  ``os.getppid()`` every :data:`PARENT_POLL_S` and exits the worker when its parent is no longer the driver (the
  orphan is re-parented). Without either, a worker waits forever on the pool's pipe: every worker holds the pipe's
  write end, so it never reads end-of-file.
- **A local Ray instance** (``ray.init(address="local")``) starts its node processes with the same kernel
  fate-sharing on Linux, so the GCS server, the raylet and its workers die with the driver. The raylet's two agents
  (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) do not: they see the raylet die, try to report it to the dead
  GCS and hang in their exit for minutes (Ray 2.60). A :class:`Lifeline` covers them: a small watcher process, in
  its own session, holds a pipe from the driver and the list of the processes ``ray.init`` started; when the pipe
  reads end-of-file without the driver's release (the driver died), it kills those of them still alive. A process
  is identified by its pid and its start time, so a pid the system has reused is never killed.

This module uses the standard library only: the watcher runs it as a script, without importing perpstress.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PARENT_POLL_S = 1.0
"""Seconds between a worker's checks that its driver is alive, where the kernel does not watch it (not Linux)."""
PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal this process gets when its parent dies (linux/prctl.h)."""
RELEASE = "release"
"""What the driver writes to the watcher when it has shut its processes down itself: the watcher kills nothing."""
PROC = Path("/proc")


def die_with_parent(parent_pid: int) -> str:
    """Make this process exit when ``parent_pid``, its parent, dies; returns how (``kernel`` or ``watchdog``).

    Exits at once if the parent is already gone (it may die before this runs)."""
    how = "kernel" if _kernel_death_signal() else "watchdog"
    if how == "watchdog":
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="perpstress-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)
    return how


def _kernel_death_signal() -> bool:
    """Ask the Linux kernel to send this process SIGKILL when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); ``None`` if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def descendants(pid: int) -> set[int]:
    """Pids of the living descendants of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    parents: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


class Lifeline:
    """A watcher process that kills the processes it is given if this process dies before :meth:`release`.

    Linux only (it identifies processes through ``/proc``); :meth:`start` returns ``None`` elsewhere."""

    def __init__(self, watcher: subprocess.Popen[str]) -> None:
        self.watcher = watcher
        self.guarded: set[int] = set()

    @classmethod
    def start(cls) -> Lifeline | None:
        if not PROC.joinpath("self", "stat").exists():
            return None
        command = [sys.executable, "-I", __file__]
        quiet = subprocess.DEVNULL
        watcher = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=quiet, stderr=quiet, text=True,
                                   start_new_session=True)  # fmt: skip
        return cls(watcher)

    def guard(self, pids: set[int]) -> None:
        """Kill these processes if this process dies before :meth:`release`."""
        assert self.watcher.stdin is not None
        for pid in sorted(pids - self.guarded - {self.watcher.pid}):
            started = start_time(pid)
            if started is not None:
                self.watcher.stdin.write(f"{pid} {started}\n")
                self.guarded.add(pid)
        self.watcher.stdin.flush()

    def release(self) -> None:
        """This process has shut its processes down: the watcher exits and kills nothing."""
        assert self.watcher.stdin is not None
        with contextlib.suppress(OSError):
            self.watcher.stdin.write(RELEASE + "\n")
            self.watcher.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.watcher.wait(timeout=10)


def _watch(lines: list[str]) -> int:
    """The watcher: reads ``PID START`` lines until end-of-file; unless the last line is the release, kills every
    listed process that is still the one listed. Returns how many it killed."""
    if lines and lines[-1].strip() == RELEASE:
        return 0
    killed = 0
    for line in lines:
        pid, started = (int(x) for x in line.split())
        if start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


if __name__ == "__main__":
    _watch(list(sys.stdin))
