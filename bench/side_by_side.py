"""Side by side: the same workloads timed in an older commit and in this working tree, alternately, on one machine.

    python bench/side_by_side.py --base COMMIT [--workload NAME ...] [--rounds 2] [--json FILE]
    python bench/side_by_side.py --base COMMIT --scenario NAME --scale S [--duration N]
    python bench/side_by_side.py --only-new --scale-ratio

``COMMIT`` is checked out into a temporary git worktree (``git worktree add --detach``), removed at the end, on an
error or Ctrl-C too. Each workload then runs in the base and in the working tree (the repository holding this
script, uncommitted changes included), back to back, each run in a fresh ``python -c`` subprocess with
``PYTHONPATH=<tree>/src`` and otherwise the same environment, so each tree imports its own code (checked: the
subprocess reports where ``perpstress`` came from). The order alternates between rounds; each tree keeps its
fastest round, the one least disturbed by other load on a shared machine. Before any timing, each tree runs a few
tiny warm-up runs (the quickstart whole at 5 %, and the first 120 s of each workload's scenario at 1 %) so that
numba compiles, or loads its cache, outside the timed runs: a fresh worktree has no numba cache.

A workload's ``seconds`` is ``sim.run()`` only (building the world and drawing the crowd excluded); the
subprocess also reports its peak RSS (``ru_maxrss``, the build included) and the outcome from the run's summary
(liquidations count and notional, ADL fills), so a change meant to keep results identical can be seen to. Only API
that old commits have is used: ``Scenario.load(name).with_(duration_s=N)``, ``Simulation(scenario, scale=s)``,
``sim.run().summary``.

``--scale-ratio`` adds ``calm-5pct`` and ``calm-full`` and reports, per tree, a calm step at full scale over the
same step at 5 % (the per-step cost that grows with the crowd although nothing happens). ``--only-new`` runs the
working tree alone (no base, no worktree).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
"""The working tree: the repository holding this script."""

MARKER = "SIDE_BY_SIDE "
"""Prefix of the one line a workload subprocess prints (its JSON result), whatever else it prints."""


@dataclass(frozen=True)
class Workload:
    name: str
    scenario: str
    scale: float
    duration_s: float | None
    """Simulated seconds from the scenario's start; ``None``: the whole scenario."""
    about: str = ""


WORKLOADS = {
    w.name: w
    for w in (
        Workload("calm-5pct", "oct-2025", 0.05, 600, "first 600 s of oct-2025 (before the shock), crowd at 5 %"),
        Workload("calm-full", "oct-2025", 1.0, 600, "first 600 s of oct-2025 (before the shock), whole crowd"),
        Workload("oct-5pct", "oct-2025", 0.05, None, "the whole of oct-2025 (12,600 steps), crowd at 5 %"),
        Workload("oct-full", "oct-2025", 1.0, None, "the whole of oct-2025, whole crowd (about 15-20 minutes)"),
        Workload("quickstart", "quickstart", 1.0, None, "the whole quickstart scenario, whole crowd"),
    )
}

SNIPPET = """\
import json, resource, time
import perpstress
from perpstress import Scenario
from perpstress.engine.simulation import Simulation

started = time.perf_counter()
scenario = Scenario.load({scenario!r})
if {duration_s!r} is not None:
    scenario = scenario.with_(duration_s={duration_s!r})
sim = Simulation(scenario, scale={scale!r})
built = time.perf_counter()
tables = sim.run()
seconds = time.perf_counter() - built
summary = tables.summary
liquidations = summary.get("liquidations", {{}})
adl = summary.get("adl", {{}})
result = {{
    "seconds": seconds,
    "build_seconds": built - started,
    "steps": summary.get("steps"),
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "liquidations_count": liquidations.get("count"),
    "liquidated_usd": liquidations.get("notional_usd"),
    "adl_count": adl.get("count"),
    "adl_usd": adl.get("notional_usd"),
    "bad_debt_usd": summary.get("bad_debt_usd"),
    "phases": (summary.get("timing") or {{}}).get("phases"),
    "module": perpstress.__file__,
}}
print({marker!r} + json.dumps(result))
"""

OUTCOME = ("liquidations_count", "liquidated_usd", "adl_count", "adl_usd", "bad_debt_usd")
"""The figures that must agree for two trees to count as giving the same outcome."""


def snippet(workload: Workload) -> str:
    """The Python source a subprocess runs for ``workload``: one timed run, one marked JSON line printed."""
    return SNIPPET.format(
        scenario=workload.scenario, duration_s=workload.duration_s, scale=workload.scale, marker=MARKER
    )


def parse_result(stdout: str) -> dict[str, Any]:
    """The JSON result in a workload subprocess's output (its last marked line)."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise ValueError(f"no line starting {MARKER.strip()!r} in the output:\n{stdout[-2000:]}")
    data: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    return data


def warm_ups(workloads: Sequence[Workload]) -> list[Workload]:
    """Tiny runs that make numba compile (or load its cache) everything the workloads call: the quickstart whole
    at 5 % (a shock, liquidations and ADL), then 120 s of each other scenario at 1 %."""
    runs = [Workload("warm-up", "quickstart", 0.05, None)]
    for scenario in dict.fromkeys(w.scenario for w in workloads):
        if scenario != "quickstart":
            runs.append(Workload("warm-up", scenario, 0.01, 120))
    return runs


def run_in(tree: Path, workload: Workload, env: dict[str, str]) -> dict[str, Any]:
    """Run ``workload`` in a fresh subprocess importing ``tree``'s code; its result (checked to come from there)."""
    src = tree / "src"
    done = subprocess.run(
        [sys.executable, "-c", snippet(workload)],
        env={**env, "PYTHONPATH": str(src)},
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{workload.name} in {tree} exited {done.returncode}:\n{done.stderr[-4000:]}")
    result = parse_result(done.stdout)
    if not Path(result["module"]).resolve().is_relative_to(src.resolve()):
        raise RuntimeError(f"{workload.name} in {tree}: imported perpstress from {result['module']}, not {src}")
    return result


def git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def base_worktree(commit: str | None) -> Iterator[Path | None]:
    """``commit`` checked out (detached) in a temporary worktree; removed when the block ends, however it ends.
    No commit: nothing to check out (``None``)."""
    if commit is None:
        yield None
        return
    sha = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    holder = Path(tempfile.mkdtemp(prefix="perpstress-base-"))
    tree = holder / "tree"
    try:
        git("worktree", "add", "--detach", str(tree), sha)
        yield tree
    finally:
        with suppress(RuntimeError):  # never added, or half added: the directory goes below and prune forgets it
            git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(holder, ignore_errors=True)
        try:
            git("worktree", "prune")
        except RuntimeError as error:
            print(f"warning: {error}", file=sys.stderr)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so the worktree is removed on SIGTERM as on Ctrl-C


def describe_tree(tree: Path) -> str:
    head = git("rev-parse", "--short", "HEAD", cwd=tree)
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=tree)
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def same_outcome(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in OUTCOME)


def per_step_ms(result: dict[str, Any]) -> float:
    return 1000.0 * float(result["seconds"]) / max(int(result["steps"] or 1), 1)


def measure(
    trees: dict[str, Path], workloads: Sequence[Workload], rounds: int, env: dict[str, str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every round's result per workload and tree; the trees' order alternates between rounds."""
    names = list(trees)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {w.name: {t: [] for t in names} for w in workloads}
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for w in workloads:
            for t in order:
                result = run_in(trees[t], w, env)
                runs[w.name][t].append(result)
                print(f"  round {round_ + 1}/{rounds} {w.name:<12} {t:<4} {result['seconds']:9.2f} s", flush=True)
    return runs


def fastest(results: list[dict[str, Any]]) -> dict[str, Any]:
    return min(results, key=lambda r: float(r["seconds"]))


def _money(x: Any) -> str:
    return "-" if x is None else f"${float(x) / 1e6:,.1f}M"


def _count(x: Any) -> str:
    return "-" if x is None else f"{int(x):,}"


def table(workloads: Sequence[Workload], runs: dict[str, dict[str, list[dict[str, Any]]]], trees: list[str]) -> str:
    """The results as a Markdown table (the fastest round per tree)."""
    lines = []
    if trees == ["base", "new"]:
        lines.append("| workload | steps | base s | new s | new/base | speedup | peak RSS MB base / new "
                     "| liquidations base / new | liquidated base / new | same outcome |")  # fmt: skip
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for w in workloads:
            b, n = fastest(runs[w.name]["base"]), fastest(runs[w.name]["new"])
            ratio = n["seconds"] / b["seconds"]
            lines.append(
                f"| {w.name} | {_count(n['steps'])} | {b['seconds']:.2f} | {n['seconds']:.2f} | {ratio:.3f} "
                f"| {1 / ratio:.2f}x | {b['max_rss_mb']:,.0f} / {n['max_rss_mb']:,.0f} "
                f"| {_count(b['liquidations_count'])} / {_count(n['liquidations_count'])} "
                f"| {_money(b['liquidated_usd'])} / {_money(n['liquidated_usd'])} "
                f"| {'yes' if same_outcome(b, n) else 'NO'} |"
            )
    else:
        lines.append("| workload | steps | new s | ms per step | peak RSS MB | liquidations | liquidated |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for w in workloads:
            n = fastest(runs[w.name]["new"])
            lines.append(
                f"| {w.name} | {_count(n['steps'])} | {n['seconds']:.2f} | {per_step_ms(n):.2f} "
                f"| {n['max_rss_mb']:,.0f} | {_count(n['liquidations_count'])} | {_money(n['liquidated_usd'])} |"
            )
    return "\n".join(lines)


def scale_ratios(runs: dict[str, dict[str, list[dict[str, Any]]]], trees: list[str]) -> dict[str, float]:
    """Per tree: a calm step at full scale over the same step at 5 % (fastest rounds), when both were run."""
    if "calm-full" not in runs or "calm-5pct" not in runs:
        return {}
    return {t: per_step_ms(fastest(runs["calm-full"][t])) / per_step_ms(fastest(runs["calm-5pct"][t])) for t in trees}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="workloads: " + "; ".join(f"{w.name}: {w.about}" for w in WORKLOADS.values()),
    )
    parser.add_argument("--base", help="commit to compare against (any git revision: HEAD~3, a hash, a branch)")
    parser.add_argument("--only-new", action="store_true", help="run the working tree only (no base)")
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS), default=[],
                        help="a workload to run (repeatable) [default: calm-5pct]")  # fmt: skip
    parser.add_argument("--scenario", help="a custom workload: scenario name or file (with --scale, --duration)")
    parser.add_argument("--scale", type=float, default=0.05, help="crowd scale of the custom workload")
    parser.add_argument("--duration", type=float, help="simulated seconds of the custom workload [default: all]")
    parser.add_argument("--scale-ratio", action="store_true",
                        help="add calm-5pct and calm-full; report a calm full-scale step over a 5 %% one")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; each tree keeps its fastest")
    parser.add_argument("--json", type=Path, help="also write every round's results to this JSON file")
    args = parser.parse_args(argv)
    if (args.base is None) == (not args.only_new):
        parser.error("give --base COMMIT, or --only-new to run the working tree alone")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def selected(args: argparse.Namespace) -> list[Workload]:
    names = list(dict.fromkeys(args.workload))
    if args.scale_ratio:
        names += [n for n in ("calm-5pct", "calm-full") if n not in names]
    workloads = [WORKLOADS[n] for n in names]
    if args.scenario is not None:
        scenario = str(Path(args.scenario).resolve()) if Path(args.scenario).is_file() else args.scenario
        label = f"{Path(args.scenario).stem}@{args.scale:g}" + (f"-{args.duration:g}s" if args.duration else "")
        workloads.append(Workload(label, scenario, args.scale, args.duration, "custom"))
    return workloads or [WORKLOADS["calm-5pct"]]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    workloads = selected(args)
    signal.signal(signal.SIGTERM, _terminate)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    load_before = os.getloadavg()
    with base_worktree(args.base) as base:
        trees = {"new": REPO} if base is None else {"base": base, "new": REPO}
        for name, tree in trees.items():
            print(f"{name}: {tree} ({describe_tree(tree)}); warming up", flush=True)
            for w in warm_ups(workloads):
                run_in(tree, w, env)
        runs = measure(trees, workloads, args.rounds, env)
        heads = {name: describe_tree(tree) for name, tree in trees.items()}
    load_after = os.getloadavg()
    names = list(trees)
    print()
    print(
        ", ".join(f"{n} {heads[n]}" for n in names)
        + f"; fastest of {args.rounds} alternating round(s) per tree; seconds = sim.run() only; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min; 5 min {load_before[1]:.2f} -> "
        f"{load_after[1]:.2f}); {os.cpu_count()} cores"
    )
    print(table(workloads, runs, names))
    ratios = scale_ratios(runs, names)
    if ratios:
        print("calm step at full scale / at 5 %: " + ", ".join(f"{t} {r:.2f}x" for t, r in ratios.items()))
    if args.json is not None:
        report = {
            "base": args.base,
            "trees": {n: {"path": str(trees[n]) if n == "new" else None, "head": heads[n]} for n in names},
            "rounds": args.rounds,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "workloads": [
                {
                    "name": w.name,
                    "scenario": w.scenario,
                    "scale": w.scale,
                    "duration_s": w.duration_s,
                    **{n: {"fastest": fastest(runs[w.name][n]), "rounds": runs[w.name][n]} for n in names},
                }
                for w in workloads
            ],
            "calm_full_over_5pct_per_step": ratios,
        }
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted (the base worktree was removed)", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as error:  # a git command or a workload failed; its message says which and why
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
