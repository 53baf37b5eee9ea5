"""``bench/side_by_side.py`` without running a benchmark: its workload snippets, result parsing and options."""

from __future__ import annotations

import ast
from types import ModuleType

import pytest

from kit import load_bench_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench_script("side_by_side")


def test_a_snippet_uses_only_the_long_standing_api_with_the_workload_values(bench: ModuleType) -> None:
    calm = bench.WORKLOADS["calm-5pct"]
    source = bench.snippet(calm)
    tree = ast.parse(source)  # valid Python
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert imports == {("perpstress", "Scenario"), ("perpstress.engine.simulation", "Simulation")}
    assert "Scenario.load('oct-2025')" in source
    assert "with_(duration_s=600)" in source
    assert "Simulation(scenario, scale=0.05)" in source
    whole = bench.snippet(bench.WORKLOADS["oct-full"])
    assert "if None is not None" in whole  # the whole scenario: no with_
    assert "scale=1.0" in whole


def test_the_result_is_the_last_marked_line(bench: ModuleType) -> None:
    out = f'numba says hello\n{bench.MARKER}{{"seconds": 1.0}}\nnoise\n{bench.MARKER}{{"seconds": 2.5}}\n'
    assert bench.parse_result(out) == {"seconds": 2.5}
    with pytest.raises(ValueError, match="no line starting 'SIDE_BY_SIDE'"):
        bench.parse_result("Traceback ...")


def test_options_choose_the_workloads(bench: ModuleType) -> None:
    names = lambda argv: [w.name for w in bench.selected(bench.parse_args(argv))]  # noqa: E731
    assert names(["--only-new"]) == ["calm-5pct"]
    assert names(["--base", "HEAD", "--workload", "quickstart", "--scale-ratio"]) == [
        "quickstart", "calm-5pct", "calm-full",
    ]  # fmt: skip
    custom = bench.selected(bench.parse_args(["--only-new", "--scenario", "quickstart", "--scale", "0.2",
                                              "--duration", "60"]))  # fmt: skip
    assert [(w.scenario, w.scale, w.duration_s) for w in custom] == [("quickstart", 0.2, 60.0)]
    assert [w.scenario for w in bench.warm_ups([*custom, bench.WORKLOADS["oct-5pct"]])] == ["quickstart", "oct-2025"]
    with pytest.raises(SystemExit):
        bench.parse_args([])  # neither --base nor --only-new
