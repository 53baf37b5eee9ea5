"""``perpstress sweep --address`` against a real Ray cluster that the test starts, and against addresses that refuse.

The cluster is ``ray start --head --block`` on a free local port, with token authentication on (``RAY_AUTH_MODE=
token``, a token made for the test) and its own temporary folder, in its own process group: the test stops it by
killing exactly that group, never another Ray on the machine (``ray stop`` would stop them all).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perpstress import Scenario

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = Scenario.load("quickstart").with_(name="tiny", duration_s=40, shock__at_s=5, shock__drift_s=20)
AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    """This environment without Ray's authentication and address variables, plus ``extra``."""
    out = {k: v for k, v in os.environ.items() if k not in AUTH}
    return {**out, "PYTHONPATH": SRC, "COLUMNS": "200", **extra}


def sweep(tmp_path: Path, out: str, *options: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    scenario = tmp_path / "tiny.toml"
    if not scenario.exists():
        scenario.write_text(TINY.to_toml(), encoding="utf-8")
    args = [sys.executable, "-m", "perpstress", "sweep", str(scenario), "--seeds", "3", "--scale", "0.1",
            "--summaries-only", "--no-report", "--out", str(tmp_path / out), *options]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, env=environment, timeout=600)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr


def test_an_address_where_nothing_listens_is_a_one_line_error(tmp_path: Path) -> None:
    port = free_port()
    done = sweep(tmp_path, "sweep", "--address", f"127.0.0.1:{port}", environment=env())
    assert_one_line_error(done, f"--address 127.0.0.1:{port}", "no Ray cluster answers there", "ray start --head")
    assert not (tmp_path / "sweep").exists()  # refused before the sweep directory is made
    done = sweep(tmp_path, "sweep", "--address", f"ray://127.0.0.1:{port}", environment=env())
    assert_one_line_error(done, f"--address ray://127.0.0.1:{port}", "--ray-client-server-port")


@dataclass
class Cluster:
    address: str
    token: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    port, token = free_port(), secrets.token_hex(16)
    temp = Path(tempfile.mkdtemp(prefix="psray", dir="/tmp"))  # short: Ray's socket paths live under it
    args = ["ray", "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1", "--temp-dir",
            str(temp), "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]  # fmt: skip
    log = (temp / "head.log").open("w")
    head = subprocess.Popen(args, env=env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token), start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and head.poll() is None:
            if "Ray runtime started" in (temp / "head.log").read_text():
                break
            time.sleep(0.2)
        assert head.poll() is None, (temp / "head.log").read_text()
        yield Cluster(f"127.0.0.1:{port}", token)
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # --block: the head stops its node's processes
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # what is left of the group
            os.killpg(head.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_a_sweep_on_a_cluster_equals_the_local_sweep(cluster: Cluster, tmp_path: Path) -> None:
    local = sweep(tmp_path, "local", "--executor", "serial", environment=env())
    assert local.returncode == 0, local.stderr
    on_cluster = sweep(tmp_path, "cluster", "--address", cluster.address,
                       environment=env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token))  # fmt: skip
    assert on_cluster.returncode == 0, on_cluster.stderr
    assert "3 runs on ray" in on_cluster.stdout
    for name in ("results.parquet", "cells.parquet"):
        assert (tmp_path / "cluster" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("token", ["none", "wrong"])
def test_a_cluster_that_refuses_the_token_is_a_one_line_error(cluster: Cluster, tmp_path: Path, token: str) -> None:
    auth = {"none": {}, "wrong": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}}[token]
    home = tmp_path / "home"  # no ~/.ray/auth_token to fall back on
    home.mkdir()
    done = sweep(tmp_path, "sweep", "--address", cluster.address, environment=env(HOME=str(home), **auth))
    assert_one_line_error(done, f"--address {cluster.address}", "refused", "RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN")
    assert not (tmp_path / "sweep").exists()
