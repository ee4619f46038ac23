"""No import cycle: every module of imbstat imports first, alone, in a fresh interpreter.

A cycle held open by the order in which a test session happens to import
modules fails here as soon as one of its modules is imported first; one held
open by a function-local import (build -> terminal -> taxonomy -> metrics ->
build was) is found by reading every import statement, local ones included.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imbstat

ROOT = Path(imbstat.__file__).resolve().parents[1]
SKIPPED = {"imbstat.__main__"}  # runs the CLI when imported
if importlib.util.find_spec("triton") is None:
    SKIPPED.add("imbstat.anchors.fused")  # needs triton (a GPU install)


def _modules() -> list[str]:
    found = ["imbstat"]
    for info in pkgutil.walk_packages(imbstat.__path__, "imbstat."):
        found.append(info.name)
    return sorted(set(found) - SKIPPED)


def _import_alone(module: str) -> tuple[str, int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env,
                          cwd=ROOT)  # fmt: skip
    return module, done.returncode, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def test_every_module_imports_first_in_a_fresh_interpreter():
    modules = _modules()
    assert "imbstat.report.sections" in modules and "imbstat.report.metrics" in modules
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        failed = [(m, err) for m, rc, err in pool.map(_import_alone, modules) if rc]
    assert not failed, failed


def _import_graph() -> dict[str, set[str]]:
    """Module -> the imbstat modules it imports anywhere in its file (function-local imports included)."""
    files = {}
    for path in (ROOT / "imbstat").rglob("*.py"):
        files[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imbstat"):
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                         for a in node.names}  # fmt: skip
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in files}
        graph[name] = deps & files.keys() - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set(stack[stack.index(v) :])
            del stack[stack.index(v) :]
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_even_through_local_imports():
    graph = _import_graph()
    assert "imbstat.report.metrics" in graph["imbstat.report.taxonomy"]  # the graph sees the imports
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [{"a", "b", "c"}]
