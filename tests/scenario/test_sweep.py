"""Small whole sweeps: serial vs Ray vs a process pool with a worker killed and resumed give the same tables.

The scenario is the quickstart cut to 40 simulated seconds with the shock at 5 s and a tenth of the crowd (about
0.5 s a run); 2 grid cells x 3 seeds.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from perpstress import Scenario
from perpstress.errors import UsageError
from perpstress.population.initial import population_key
from perpstress.population.liqmap import initial_population
from perpstress.sweep import SweepPlan, SweepResult, parse_grid, plan_sweep, run_sweep
from perpstress.sweep.lifeline import descendants
from perpstress.sweep.plan import PlannedRun

TINY = Scenario.load("quickstart").with_(name="tiny", duration_s=40, shock__at_s=5, shock__drift_s=20)
SCALE = 0.1
SEEDS = 3
GRID_TEXT = '[grid]\n"venues.binance.insurance_fund.initial_usd" = [1e6, 8e6]\n'
GRID = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 8e6]}}, "grid.toml")


def plan() -> SweepPlan:
    return plan_sweep(TINY, GRID, SEEDS, scale=SCALE)


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return run_sweep(plan(), tmp_path_factory.mktemp("serial") / "sweep", executor="serial")


def test_a_serial_sweep_writes_one_row_per_run(serial: SweepResult) -> None:
    root = serial.root
    assert serial.executed == 6
    assert serial.reused == 0
    assert not serial.failures
    assert serial.missing == 0
    assert serial.populations == 1  # the grid varies the fund only: one population, drawn once for all 6 runs
    results = pq.read_table(root / "results.parquet")
    assert results.num_rows == 6
    assert results.column("cell").to_pylist() == [0, 0, 0, 1, 1, 1]
    assert results.column("venues.binance.insurance_fund.initial_usd").to_pylist() == [1e6] * 3 + [8e6] * 3
    assert results.column("seed").to_pylist()[:3] == list(plan().seeds)
    for key in results.column("run_key").to_pylist():
        run = root / "runs" / key
        assert {"summary.json", "scenario.toml", "timeseries.parquet"} <= {p.name for p in run.iterdir()}
        assert (run / "events" / "adl.parquet").is_file()
        assert Scenario.load(run / "scenario.toml").seed in results.column("seed").to_pylist()
    by_cell = results.to_pydict()
    assert min(by_cell["liquidations_count"]) > 0  # every run saw the cascade
    cells = pq.read_table(root / "cells.parquet").to_pydict()
    assert cells["runs"] == [3, 3]
    for c in range(2):
        values = [v for v, cell in zip(by_cell["adl_usd"], by_cell["cell"], strict=True) if cell == c]
        assert cells["adl_usd_mean"][c] == pytest.approx(sum(values) / 3)
        assert cells["adl_usd_ci95_low"][c] <= cells["adl_usd_mean"][c] <= cells["adl_usd_ci95_high"][c]
    # A bigger Binance fund never draws it down more and takes no more ADL there, run for run.
    small, big = by_cell["adl_usd_binance"][:3], by_cell["adl_usd_binance"][3:]
    assert all(b <= s for s, b in zip(small, big, strict=True))
    assert sum(big) < sum(small)


def test_the_html_report_shows_every_cell(serial: SweepResult) -> None:
    if serial.report is None:
        pytest.skip(f"plotly missing: {serial.report_problem}")
    page = serial.report.read_text(encoding="utf-8")
    assert 'id="chart-distributions"' in page
    assert "<code>venues.binance.insurance_fund.initial_usd</code> = 8000000" in page  # the cells table
    assert page.count("initial_usd=8M") >= 2  # short name: the charts' ticks and the stats table
    stats = page[page.index('<table class="data stats">') :]
    stats = stats[: stats.index("</table>")]
    assert stats.count("<tr>") == 1 + 2  # header + one row per cell
    assert stats.count("95 % CI") == 2 * 6  # 6 policy metrics (broken hedges included) per cell
    paired = page[page.index('<table class="data paired">') :]
    paired = paired[: paired.index("</table>")]
    assert paired.count("<tr>") == 1 + 1  # header + cell 1 against cell 0
    assert paired.count("3 seeds paired") == 6
    assert 'id="chart-paired"' in page


def _crowd_fingerprint(plan: SweepPlan, run: PlannedRun) -> bytes:
    """The run's starting crowd as the run draws it (size, entry price and margin of every position)."""
    crowd = initial_population(plan.scenario(run), plan.scale).crowd
    return crowd.size_lots.tobytes() + crowd.entry_price.tobytes() + crowd.margin.tobytes()


def test_shared_population_is_the_same_crowd_for_every_seed_and_per_seed_draws_new_ones(tmp_path: Path) -> None:
    shared = plan()
    assert {r.population for r in shared.runs} == {population_key(shared.scenario(shared.runs[0]), SCALE)}
    assert len({_crowd_fingerprint(shared, r) for r in shared.runs}) == 1  # the seeds vary paths and flow only
    per_seed = plan_sweep(TINY, GRID, SEEDS, scale=SCALE, population="per-seed")
    assert all(r.population is None for r in per_seed.runs)
    assert per_seed.manifest()["population"] == "per-seed"
    crowds = [_crowd_fingerprint(per_seed, r) for r in per_seed.runs]
    assert len(set(crowds[:SEEDS])) == SEEDS  # each seed draws its own crowd...
    assert crowds[:SEEDS] == crowds[SEEDS:]  # ...the same one in every cell (common random numbers)
    assert {r.key for r in per_seed.runs}.isdisjoint(r.key for r in shared.runs)
    result = run_sweep(per_seed, tmp_path / "per-seed", executor="serial", summaries_only=True, report=False)
    assert (result.executed, result.populations) == (6, 0)
    with pytest.raises(UsageError, match="population_seed"):
        plan_sweep(TINY.with_(population_seed=1), GRID, SEEDS, scale=SCALE, population="per-seed")


def _processes(match: bytes) -> list[int]:
    """Pids whose command line starts with ``match`` (Ray names a busy worker ``ray::<function>``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(match):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (pip install 'perpstress[ray]')")
def test_local_ray_with_two_workers_gives_the_same_tables_even_with_a_worker_killed(
    serial: SweepResult, tmp_path: Path
) -> None:
    killed: list[int] = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        # From the first finished run on, at each progress tick until one is found: a worker is busy only while it
        # runs a task (about 0.3 s here), so one tick can fall between tasks.
        if 1 <= done < total - 1 and not killed and Path("/proc/self/cmdline").exists():
            mine = descendants(os.getpid())  # never another sweep's worker on this machine
            for pid in [p for p in _processes(b"ray::execute") if p in mine][:1]:  # mid-run: Ray must retry it
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    result = run_sweep(plan(), tmp_path / "ray", executor="ray", workers=2, progress=kill_a_busy_worker)
    assert result.executor == "ray"
    assert result.executed == 6
    assert result.populations == 1
    assert not result.failures
    for name in ("results.parquet", "cells.parquet"):
        assert (tmp_path / "ray" / name).read_bytes() == (serial.root / name).read_bytes(), name
    if Path("/proc/self/cmdline").exists():
        assert killed, "no busy Ray worker found to kill"


def test_summaries_only_and_resume_reuse_finished_runs(serial: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "summaries"
    first = run_sweep(plan(), out, executor="serial", summaries_only=True, report=False)
    assert first.executed == 6
    for run in (out / "runs").iterdir():
        assert [p.name for p in run.iterdir()] == ["summary.json"]
    assert (out / "results.parquet").read_bytes() == (serial.root / "results.parquet").read_bytes()
    with pytest.raises(UsageError, match="pass --resume"):
        run_sweep(plan(), out, executor="serial", summaries_only=True)
    (out / "runs" / ".deadbeef.partial-1").mkdir()  # what a killed driver leaves mid-rename
    again = run_sweep(plan(), out, executor="serial", summaries_only=True, resume=True, report=False)
    assert (again.executed, again.reused) == (0, 6)
    assert not (out / "runs" / ".deadbeef.partial-1").exists()
    assert (out / "results.parquet").read_bytes() == (serial.root / "results.parquet").read_bytes()
    # Asking for full run directories later re-runs what only has a summary.
    one = next((out / "runs").iterdir())
    (one / "summary.json").unlink()
    fuller = run_sweep(plan(), out, executor="serial", summaries_only=True, resume=True, report=False)
    assert (fuller.executed, fuller.reused) == (1, 5)


def _spawned_workers(parent: int) -> list[int]:
    """Pids of the multiprocessing workers (spawn start method) whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_a_worker_killed_mid_sweep_then_resume_gives_the_same_table(serial: SweepResult, tmp_path: Path) -> None:
    scenario_file = tmp_path / "tiny.toml"
    scenario_file.write_text(TINY.to_toml(), encoding="utf-8")
    (tmp_path / "grid.toml").write_text(GRID_TEXT, encoding="utf-8")
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "perpstress", "sweep", str(scenario_file), "--grid", str(tmp_path / "grid.toml"),
            "--seeds", str(SEEDS), "--scale", str(SCALE), "--out", str(out), "--executor", "process",
            "--workers", "2", "--no-report"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            if (out / "runs").is_dir() and any((out / "runs").glob("*/summary.json")):
                workers = _spawned_workers(proc.pid)
                if workers:
                    killed = workers[0]
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, f"no worker to kill: {stderr}"
    assert proc.returncode == 2, stdout + stderr
    assert "worker process died" in stderr
    assert "--resume" in stderr
    assert "Traceback" not in stderr
    partial = pq.read_table(out / "results.parquet")
    assert 1 <= partial.num_rows < 6
    assert not list((out / "runs").glob(".*"))  # nothing half-written
    resumed = run_sweep(plan(), out, executor="serial", resume=True, report=False)
    assert resumed.reused == partial.num_rows
    assert resumed.executed == 6 - partial.num_rows
    assert (out / "results.parquet").read_bytes() == (serial.root / "results.parquet").read_bytes()
    assert (out / "cells.parquet").read_bytes() == (serial.root / "cells.parquet").read_bytes()


GONE_WAIT_S = 60.0
"""Bounded wait for a killed driver's processes to go (without the guards they stay: the pool's workers forever,
Ray's agents for minutes)."""


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_driver_and_kill_it(
    tmp_path: Path, executor: str, ready: Callable[[int], set[int]], how: signal.Signals = signal.SIGKILL
) -> tuple[set[int], set[int]]:
    """Start a sweep driver, wait until ``ready(driver_pid)`` names its processes, send the driver ``how``; the
    processes named and those still alive after a bounded wait."""
    scenario_file = tmp_path / "tiny.toml"
    scenario_file.write_text(TINY.to_toml(), encoding="utf-8")
    args = [sys.executable, "-m", "perpstress", "sweep", str(scenario_file), "--seeds", "40", "--scale", str(SCALE),
            "--out", str(tmp_path / "sweep"), "--executor", executor, "--workers", "2", "--no-report",
            "--summaries-only"]  # fmt: skip
    log = (tmp_path / "driver.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    named: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while not named and time.monotonic() < deadline and proc.poll() is None:
            named = ready(proc.pid)
            time.sleep(0.05)
        assert named, f"the {executor} driver started no workers"
        proc.send_signal(how)
        code = proc.wait(timeout=GONE_WAIT_S)
        if how == signal.SIGTERM:
            log.flush()
            said = (tmp_path / "driver.log").read_text()
            assert code == 128 + signal.SIGTERM, said  # exited through its finally blocks, not killed by the signal
        named.discard(proc.pid)
        deadline = time.monotonic() + GONE_WAIT_S
        while any(_alive(p) for p in named) and time.monotonic() < deadline:
            time.sleep(0.1)
        return named, {p for p in named if _alive(p)}
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        for pid in named:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
def test_process_pool_workers_die_with_a_killed_driver(tmp_path: Path) -> None:
    def two_workers(driver: int) -> set[int]:
        workers = _spawned_workers(driver)
        return set(descendants(driver)) if len(workers) == 2 else set()  # the resource tracker too

    named, left = _start_driver_and_kill_it(tmp_path, "process", two_workers)
    assert len(named) >= 2
    assert not left, f"still alive after the driver's SIGKILL: {sorted(left)}"


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (pip install 'perpstress[ray]')")
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc")
@pytest.mark.parametrize(
    "how",
    [
        signal.SIGKILL,
        pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
    ],
    ids=lambda s: s.name,
)
def test_a_local_ray_instance_dies_with_its_driver(tmp_path: Path, how: signal.Signals) -> None:
    def busy_ray_workers(driver: int) -> set[int]:
        mine = descendants(driver)
        busy = [p for p in _processes(b"ray::execute") if p in mine]
        agents = [p for p in _processes(b"ray::") if p in mine and p not in busy]
        return mine if busy and len(agents) >= 2 else set()  # GCS, raylet, agents, workers, the lifeline

    named, left = _start_driver_and_kill_it(tmp_path, "ray", busy_ray_workers, how)
    assert len(named) >= 5
    assert not left, f"still alive after the driver's {how.name}: {sorted(left)}"
