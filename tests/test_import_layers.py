"""Imports point one way: no import cycle among the modules of ``src/perceiverkit`` and no import up the layer
order written in ``docs/architecture.md`` (module-level and function-level imports alike)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "perceiverkit"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"
FACE = "__init__"  # the package's own __init__.py, as a layer entry


@cache
def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package (a package's name maps to its __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def unit(module: str) -> str:
    """The entry of the layer table a module belongs to: its top-level module or package under perceiverkit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACE


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        is_package = modules()[module].name == "__init__.py"
        parts = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(parts[: len(parts) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    # `from a import b` depends on a, and on a.b when that is a module rather than a name defined in a.
    return [source, *(f"{source}.{alias.name}" for alias in node.names)]


@cache
def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports anywhere in its file (TYPE_CHECKING blocks included)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node):
                    # A module inside a package reaching that package's __init__ (``from . import x``) means the
                    # sibling x, which the target list holds already; the __init__ itself only re-exports.
                    if target in known and target != module and not module.startswith(target + "."):
                        deps.add(target)
        graph[module] = deps
    return graph


@cache
def layer_table() -> dict[str, int]:
    """Layer-table entry (``tasks``, ``config``, ``__init__``) → its layer, 0 at the bottom, from the docs."""
    text = ARCHITECTURE_DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- layers: begin -->(.*?)<!-- layers: end -->", text, re.S)
    assert match, f"{ARCHITECTURE_DOC} has no layer table between <!-- layers: begin --> and <!-- layers: end -->"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")][2:]  # skip header and rule
    levels: dict[str, int] = {}
    for level, row in enumerate(rows):
        for entry in re.findall(r"`([^`]+)`", row):
            name = entry.removesuffix("/").removesuffix(".py")
            assert levels.get(name, level) == level, f"{entry} is in two layers of {ARCHITECTURE_DOC}"
            levels[name] = level
    return levels


def test_every_module_has_a_layer():
    levels = layer_table()
    missing = sorted({unit(m) for m in modules()} - set(levels))
    assert not missing, f"add {missing} to the layer table in {ARCHITECTURE_DOC}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_points_up_the_layers():
    levels = layer_table()
    upward = [f"{a} (layer {levels[unit(a)]}) imports {b} (layer {levels[unit(b)]})"
              for a, deps in sorted(import_graph().items()) for b in sorted(deps)
              if unit(a) in levels and unit(b) in levels and levels[unit(a)] < levels[unit(b)]]
    assert not upward, "imports against the layer order of docs/architecture.md:\n" + "\n".join(upward)


def test_checkpoints_reach_tasks_only_through_the_registry():
    # checkpoints/ is generic: it may use the task base class, the registry and the key-rule blocks, never a task.
    allowed = {"perceiverkit.tasks.base", "perceiverkit.tasks.registry", "perceiverkit.tasks.transformers_keys"}
    named = [f"{a} imports {b}" for a, deps in sorted(import_graph().items()) if unit(a) == "checkpoints"
             for b in sorted(deps) if unit(b) == "tasks" and b not in allowed]
    assert not named, "\n".join(named)


def test_importing_tasks_checkpoints_and_pipelines_leaves_lightning_unloaded():
    code = ("import sys, perceiverkit.tasks, perceiverkit.checkpoints, perceiverkit.pipelines; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "[]"
