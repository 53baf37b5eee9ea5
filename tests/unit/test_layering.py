"""The layering rule of DESIGN.md ("Architecture"), read from the source with ``ast``: a layer uses the ones below
it, never the ones above, and perpstress's modules import one another without a cycle at import time.

Imports inside ``if TYPE_CHECKING:`` blocks are left out (the type checker's, not the interpreter's). For the layering
rule every other import counts, a function's local import too; for cycles only what runs when the module is
imported (module level, including ``if``/``try`` blocks, not function or method bodies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import perpstress

SRC = Path(perpstress.__file__).parent

FORBIDDEN = {
    "state": ("mechanisms", "engine", "outputs", "cli"),
    "mechanisms": ("engine", "outputs", "cli"),
    "engine": ("outputs", "cli"),
}
"""Subpackage -> subpackages it must not import."""


def module_name(path: Path) -> str:
    parts = ("perpstress", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def resolve(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The perpstress modules an import statement loads (``from pkg import name`` loads ``pkg.name`` when that is
    a module, else ``pkg``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "perpstress"]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            package = package.rsplit(".", 1)[0]
        base = f"{package}.{base}" if base else package
    if base.split(".")[0] != "perpstress":
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def imports(module: str, import_time_only: bool) -> set[str]:
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(resolve(module, node))
            elif isinstance(node, ast.If):
                if not is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not import_time_only or isinstance(node, ast.ClassDef):
                    visit(node.body)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt)] + [
                            s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body
                        ])  # fmt: skip

    visit(ast.parse(MODULES[module].read_text()).body)
    return {m for m in found if m in MODULES}


def subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py") else ""


def test_the_parser_sees_imports_and_skips_type_checking_blocks() -> None:
    world = imports("perpstress.state.world", import_time_only=False)
    assert "perpstress.state.portfolio" in world
    assert "perpstress.mechanisms.insurance" not in world  # imported only for the type checker
    assert "perpstress.engine.build" in imports("perpstress.engine.simulation", import_time_only=True)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    broken = [
        f"{module} imports {target}"
        for module in MODULES
        if subpackage(module) == layer
        for target in sorted(imports(module, import_time_only=False))
        if subpackage(target) in FORBIDDEN[layer]
    ]
    assert not broken, "\n".join(broken)


def test_no_import_cycles_at_import_time() -> None:
    graph = {m: imports(m, import_time_only=True) - {m} for m in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if n == "perpstress" or m == "perpstress":
                continue  # the package's own __init__ re-exports the API; Python runs it before any submodule
            if state.get(n) == 1:
                cycles.append([*path[path.index(n) :], n])
            elif n not in state:
                walk(n, path)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
