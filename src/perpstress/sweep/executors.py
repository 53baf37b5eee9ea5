"""Where a sweep's runs execute: in this process, in a local process pool, or on Ray (local or a cluster).

Each executor takes what the runs share (:class:`~perpstress.sweep.worker.SweepShared`: the base scenario and the
populations drawn once) and the run tasks, calls ``on_done`` in the driver with every finished
run (in completion order) and returns the runs that failed. Nothing is set up at import time: a pool or a Ray
instance exists only inside :func:`execute_runs` and is shut down when it returns.

- ``serial``: in-process, one run after another (``--workers 1``).
- ``process``: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (no forked copies of
  the driver's threads); what is shared goes to each worker once, through the pool's initialiser. A worker
  killed mid-run breaks the pool (``BrokenProcessPool``): the runs not yet returned are reported as failed and
  the sweep stops; ``--resume`` runs them. Workers die with the driver, however it ends
  (:func:`~perpstress.sweep.lifeline.die_with_parent`).
- ``ray``: ``ray.init(address="local", num_cpus=workers)`` starts a private local instance (never joins another
  one by accident); ``--address`` connects to an existing cluster instead. What is shared is put once in the
  object store (``ray.put``) and every task receives its reference; workers on a node map its arrays read-only.
  A task whose worker dies is retried (``max_retries``) on another worker; runs that raise are not retried (the
  same inputs would raise again). The local instance is shut down on Ctrl-C and SIGTERM, and a
  :class:`~perpstress.sweep.lifeline.Lifeline` kills what of it would outlive a SIGKILLed driver. A cluster's
  address is checked first (:func:`check_cluster`): unreachable or refusing, it is a one-line error.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Literal

from perpstress.errors import PerpstressError, UsageError
from perpstress.sweep.lifeline import Lifeline, descendants
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
        initargs=(shared, os.getpid()),
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
    lifeline = Lifeline.start() if started and address is None else None
    try:
        if started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.WARNING, "configure_logging": True}  # fmt: skip
            if address is None:
                before = descendants(os.getpid())
                with _quiet_logger(RAY_TOKEN_LOGGER):
                    ray.init(address="local", num_cpus=workers, **options)
                if lifeline is not None:
                    lifeline.guard(descendants(os.getpid()) - before)
            else:
                connect_to_cluster(ray, address, options)
        with _terminate_as_exit():  # after ray.init, which installs a SIGTERM handler of its own
            return _ray_tasks(ray, shared, tasks, on_done)
    finally:
        if started:
            ray.shutdown()
        if lifeline is not None:
            lifeline.release()


def _ray_tasks(ray: Any, shared: SweepShared, tasks: Sequence[RunTask], on_done: OnDone) -> list[RunFailure]:
    failures: list[RunFailure] = []
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
    return failures


class ClusterConnectionError(PerpstressError):
    """``--address`` names no reachable Ray cluster, or one that refuses this driver."""


CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a cluster's head to accept a TCP connection before calling it unreachable."""
TOKEN_HELP = ("set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or in a file named by "
              "RAY_AUTH_TOKEN_PATH, default ~/.ray/auth_token)")  # fmt: skip
"""What a driver needs to join a cluster with token authentication (Ray >= 2.52: on by default for ``ray start``);
Ray reads these from the environment only, and never turns token mode on by itself for an explicit address."""


def check_cluster(address: str) -> None:
    """Raise a one-line :class:`ClusterConnectionError` if the cluster at ``address`` cannot take this driver: no
    head accepts a TCP connection there within :data:`CONNECT_TIMEOUT_S`, what answers is no Ray GCS, or the GCS
    refuses this process's authentication token (one request each). Addresses Ray resolves itself (``auto``) are
    left to :func:`connect_to_cluster`."""
    client = address.startswith("ray://")
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        why = (exc.strerror or type(exc).__name__).lower()
        start = "--ray-client-server-port" if client else "--port"
        raise ClusterConnectionError(
            f"--address {address}: no Ray cluster answers there ({why}); start one with `ray start --head {start} "
            f"{port}` on {host} or pass the address of a running head"
        ) from None
    if client:
        return
    problem = _gcs_problem(where)
    if problem == "token":
        raise ClusterConnectionError(
            f"--address {address}: the Ray cluster refused the connection (its token authentication is on and this "
            f"driver's token is missing or wrong); {TOKEN_HELP}"
        )
    if problem is not None:
        raise ClusterConnectionError(
            f"--address {address}: what answers there is not a Ray head's GCS port ({problem}); pass the head's "
            "address as `ray start --head` prints it (host:6379 by default) or ray://host:10001"
        )


def _gcs_problem(gcs_address: str) -> str | None:
    """What keeps this process from the GCS at ``gcs_address``: ``"token"`` (it refuses this process's
    authentication token), another error's first line, or ``None``. One request, no retries; Ray's C++ client
    logs a refusal to file descriptor 2 itself, and that line is kept off the terminal."""
    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]  # what ray.init connects with
        from ray.exceptions import AuthenticationError
    except ImportError:  # another Ray layout: ray.init's own error says it
        return None
    with _quiet_stderr():
        try:
            GcsClient(address=gcs_address)
        except AuthenticationError:
            return "token"
        except Exception as exc:  # anything else in the way; ray.init would retry it for 20 s and then fail
            return _reason(exc)
    return None


def connect_to_cluster(ray: Any, address: str, options: dict[str, Any]) -> None:
    """``ray.init(address=...)`` after :func:`check_cluster`, with a one-line :class:`ClusterConnectionError`
    saying what failed and what to set, instead of Ray's retries (20 s to minutes) ending in a bare
    ``ConnectionError``."""
    check_cluster(address)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterConnectionError(
            f"--address {address}: Ray could not connect ({first}); check the address, and if the cluster uses "
            f"token authentication, {TOKEN_HELP}"
        ) from None


RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
"""Ray's logger that warns, at every ``ray.init()`` of a private instance, that token authentication is on (with
a token Ray made for it): nothing for the user to do, so not shown."""


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """The logger ``name`` shows errors only while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null while the block runs (native libraries write there directly)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While the block runs, SIGTERM exits like Ctrl-C does: ``SystemExit(143)`` through every ``finally``, so a
    local Ray instance is shut down. (Inside ``ray.wait`` Ray turns the exception into ``SystemExit(1)``; the code
    is put back.) The previous handler is restored after. Only in the main thread, where Python runs handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def exit_on_terminate(signum: int, frame: object) -> None:
        received.append(signum)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_terminate)
    try:
        yield
    except SystemExit:
        if received:
            raise SystemExit(128 + received[0]) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
