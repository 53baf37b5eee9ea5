"""Where a sweep's runs execute: in this process, in a local process pool, or on Ray (local or a cluster).

Each executor takes what the runs share (:class:`~perpstress.sweep.worker.SweepShared`: the base scenario and the
populations drawn once) and the run tasks, calls ``on_done`` in the driver with every finished
run (in completion order) and returns the runs that failed. Nothing is set up at import time: a pool or a Ray
instance exists only inside :func:`execute_runs` and is shut down when it returns.

- ``serial``: in-process, one run after another (``--workers 1``).
- ``process``: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (no forked copies of
  the driver's threads); what is shared goes to each worker once, through the pool's initialiser. A worker
  killed mid-run breaks the pool (``BrokenProcessPool``): the runs not yet returned are reported as failed and
  the sweep stops; ``--resume`` runs them.
- ``ray``: ``ray.init(address="local", num_cpus=workers)`` starts a private local instance (never joins another
  one by accident); ``--address`` connects to an existing cluster instead. What is shared is put once in the
  object store (``ray.put``) and every task receives its reference; workers on a node map its arrays read-only.
  A task whose worker dies is retried (``max_retries``) on another worker; runs that raise are not retried (the
  same inputs would raise again).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Literal

from perpstress.errors import PerpstressError, UsageError
from perpstress.sweep.worker import (
    RunOutcome,
    RunTask,
    SweepShared,
    execute,
    execute_in_process_worker,
    init_process_worker,
)

ExecutorName = Literal["auto", "serial", "process", "ray"]
RAY_TASK_RETRIES = 2
"""How many times Ray re-runs a task whose worker process died (a killed worker, a lost node)."""


@dataclass(frozen=True)
class RunFailure:
    key: str
    reason: str


OnDone = Callable[[RunOutcome], None]


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def choose_executor(executor: ExecutorName, workers: int, address: str | None) -> str:
    """The executor ``auto`` stands for: Ray for a cluster address or when installed, else a process pool;
    serial for one worker."""
    if workers < 1:
        raise UsageError(f"--workers {workers}: must be >= 1")
    if address is not None and executor not in {"auto", "ray"}:
        raise UsageError(f"--address needs the ray executor, not {executor}")
    if executor != "auto":
        return executor
    if address is not None:
        return "ray"
    if workers == 1:
        return "serial"
    return "ray" if ray_available() else "process"


def execute_runs(
    executor: str,
    shared: SweepShared,
    tasks: Sequence[RunTask],
    on_done: OnDone,
    *,
    workers: int,
    address: str | None = None,
) -> list[RunFailure]:
    """Run ``tasks`` on ``executor``; ``on_done`` receives each finished run. Returns the failed runs."""
    if not tasks:
        return []
    if executor == "serial":
        return _serial(shared, tasks, on_done)
    if executor == "process":
        return _process_pool(shared, tasks, on_done, workers)
    if executor == "ray":
        return _ray(shared, tasks, on_done, workers, address)
    raise UsageError(f"--executor {executor}: unknown; choose ray, process or serial")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, PerpstressError) else first


def _serial(shared: SweepShared, tasks: Sequence[RunTask], on_done: OnDone) -> list[RunFailure]:
    failures = []
    for task in tasks:
        try:
            outcome = execute(shared, task)
        except Exception as exc:  # one run's bug must not lose the others; reported per run
            failures.append(RunFailure(task.key, _reason(exc)))
            continue
        on_done(outcome)
    return failures


def _process_pool(shared: SweepShared, tasks: Sequence[RunTask], on_done: OnDone, workers: int) -> list[RunFailure]:
    failures: list[RunFailure] = []
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=get_context("spawn"),
        initializer=init_process_worker,
        initargs=(shared,),
    )
    pending: dict[Future[RunOutcome], RunTask] = {}
    try:
        pending = {pool.submit(execute_in_process_worker, task): task for task in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    failures.append(RunFailure(task.key, "a worker process died (killed or out of memory)"))
                    continue
                except Exception as exc:
                    failures.append(RunFailure(task.key, _reason(exc)))
                    continue
                on_done(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return failures


def _ray(
    shared: SweepShared, tasks: Sequence[RunTask], on_done: OnDone, workers: int, address: str | None
) -> list[RunFailure]:
    try:
        import ray
    except ImportError:
        raise UsageError("the ray executor needs Ray: pip install 'perpstress[ray]'") from None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING, "configure_logging": True}  # fmt: skip
        if address is None:
            ray.init(address="local", num_cpus=workers, **options)
        else:
            ray.init(address=address, **options)
    failures: list[RunFailure] = []
    try:
        shared_ref = ray.put(shared)
        remote = ray.remote(num_cpus=1, max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(execute)
        pending = {remote.remote(shared_ref, task): task for task in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the run raised inside the worker
                    failures.append(RunFailure(task.key, _reason(exc.cause) if exc.cause else _reason(exc)))
                    continue
                except ray.exceptions.RayError as exc:  # worker or node lost beyond the retries
                    failures.append(RunFailure(task.key, f"{type(exc).__name__}: worker lost after retries"))
                    continue
                on_done(outcome)
    finally:
        if started:
            ray.shutdown()
    return failures


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
