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

import pytest

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
    assert "imbstat.sections" in modules and "imbstat.report.metrics" in modules
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


# The layers, top to bottom: cli -> report, plots -> sections (the registry, one slice per statistic) and
# analysis (compute, Results) -> stats, anchors, scores -> data. A module imports only below itself; a slice's
# renderers import rich, the report's helpers and matplotlib inside their bodies, never at module level.
COMPUTE = ("imbstat.analysis", "imbstat.sections", "imbstat.stats", "imbstat.anchors", "imbstat.data",
           "imbstat.scores", "imbstat.errors", "imbstat.text", "imbstat.lazy", "imbstat.version")  # fmt: skip
RENDERING = ("imbstat.report", "imbstat.plots", "imbstat.cli", "rich", "matplotlib")
BELOW_SECTIONS = ("imbstat.stats", "imbstat.anchors", "imbstat.data", "imbstat.scores")


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def _imports(tree: ast.AST, module_level: bool) -> set[str]:
    """Every module a file imports; ``module_level``: only what runs on import (not in a function body nor under
    ``if TYPE_CHECKING``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if module_level and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.add(child.module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            visit(child)

    visit(tree)
    return found


def _layer_breaks() -> list[str]:
    broken = []
    for path in sorted((ROOT / "imbstat").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _under(name, COMPUTE):
            broken += [f"{name} imports {m} on import" for m in _imports(tree, True) if _under(m, RENDERING)]
        if _under(name, BELOW_SECTIONS):
            up = ("imbstat.analysis", "imbstat.sections", *RENDERING[:3])
            broken += [f"{name} imports {m}" for m in _imports(tree, False) if _under(m, up)]
    return broken


def test_no_import_runs_back_up_the_layers():
    assert "imbstat.sections.classes" in _import_graph()  # the slices are there to check
    assert _layer_breaks() == []


def test_layer_check_sees_a_module_level_import_and_not_a_local_or_typing_one():
    code = "import rich\nif TYPE_CHECKING:\n    import matplotlib\ndef f():\n    from imbstat.report import html\n"
    assert _imports(ast.parse(code), True) == {"rich"}
    assert _imports(ast.parse(code), False) == {"rich", "matplotlib", "imbstat.report"}


def test_compute_loads_no_renderer_in_a_fresh_interpreter(tmp_path):
    """``imbstat.compute`` (every section a report has, the remedies and the batch section too) loads neither
    rich, matplotlib nor the HTML page's module: they are the renderers' and load where output is written."""
    code = (
        "import sys, imbstat\n"
        "from imbstat.data.sample import write_sample\n"
        f"ds = imbstat.load(write_sample({str(tmp_path / 'sample.json')!r}))\n"
        "r = imbstat.compute(ds, repeat_factor=0.01, class_balanced=0.99, batch={'batch_size': 4})\n"
        "assert r.classes.scores and r.batch is not None, r\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('rich', 'matplotlib')"
        " or m in ('imbstat.report.html', 'imbstat.report.terminal', 'imbstat.report.html_parts')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_import_imbstat_loads_nothing_of_report_until_compare_is_named():
    """``import imbstat`` (and a computation) loads no module of ``imbstat.report``; ``imbstat.compare`` is
    report/'s and loads it when first named, as the same function ``from imbstat import compare`` gives."""
    code = (
        "import sys, imbstat\n"
        "from imbstat.data.sample import write_sample\n"
        "import tempfile, os\n"
        "r = imbstat.compute(imbstat.load(write_sample(os.path.join(tempfile.mkdtemp(), 's.json'))))\n"
        "print(' '.join(m for m in sys.modules if m == 'imbstat.report' or m.startswith('imbstat.report.')))\n"
        "from imbstat import Comparison, compare\n"
        "import imbstat.report.compare as c\n"
        "assert compare is c.compare and imbstat.Comparison is c.Comparison and 'compare' in imbstat.__all__\n"
        "print(type(compare(r, r)).__name__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded, compared = done.stdout.splitlines()
    assert loaded == "" and compared == "Comparison"


def test_an_unknown_attribute_of_the_package_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'comparee'"):
        imbstat.comparee  # noqa: B018
