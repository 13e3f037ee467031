"""The emollm package has no import cycles, counting imports inside functions.

An import inside a function still ties two modules: if ``a`` imports ``b`` at module level
and ``b`` imports ``a`` inside a function, the two layers cannot be understood, tested or
moved apart. This test walks every module's AST (module-level, function-level and
``TYPE_CHECKING`` imports alike, relative imports resolved, ``from pkg import mod``
resolved to the submodule, and the packages above a target that importing it runs), builds the module graph and fails on any strongly connected
component with more than one module, printing the cycle.

Run: ``python -m pytest -q tests/test_import_cycles.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import emollm

ROOT = Path(emollm.__file__).resolve().parent
PACKAGE = "emollm"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their ``__init__``)."""
    out: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The emollm modules ``name`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    executed: set[str] = set()  # targets of imports that run (not under ``if TYPE_CHECKING:``)
    typing_only = {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node) for n in ast.walk(node)
    }

    def resolve(module: str) -> str | None:
        # the longest known module prefix (``emollm.a.b.func`` -> ``emollm.a.b``)
        while module:
            if module in modules:
                return module
            module = module.rpartition(".")[0]
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    target = resolve(alias.name)
                    if target:
                        found.add(target)
                        if id(node) not in typing_only:
                            executed.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                target = sub if sub in modules else resolve(module)  # ``from pkg import submodule``
                if target:
                    found.add(target)
                    if id(node) not in typing_only:
                        executed.add(target)
    # running ``import a.b.c`` first runs ``a/__init__`` and ``a/b/__init__``: an edge to every package
    # above an executed target that the importer is not itself inside (a sibling import within a package
    # is safe; a package whose __init__ leads back to the importer is a real import-order hazard)
    for target in executed:
        parts = target.split(".")
        for i in range(2, len(parts)):
            pkg = ".".join(parts[:i])
            if pkg in modules and not (name == pkg or name.startswith(pkg + ".")):
                found.add(pkg)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through a component, for the failure message."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}
    # breadth-first search back to start
    from collections import deque

    queue = deque([(start, [start])])
    while queue:
        node, trail = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start and len(trail) > 1:
                return [*trail, start]
            if child not in seen:
                seen.add(child)
                queue.append((child, [*trail, child]))
    return path


def test_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The walker itself: a function-level relative import is an edge."""
    modules = {"emollm.a": tmp_path / "a.py", "emollm.b": tmp_path / "b.py", "emollm": tmp_path / "__init__.py"}
    (tmp_path / "a.py").write_text("def f():\n    from . import b\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("from emollm.a import f\n", encoding="utf-8")
    graph = {
        "emollm.a": _imports("emollm.a", modules["emollm.a"], modules),
        "emollm.b": _imports("emollm.b", modules["emollm.b"], modules),
    }
    assert graph == {"emollm.a": {"emollm.b"}, "emollm.b": {"emollm.a"}}
    assert _strongly_connected(graph) == [["emollm.a", "emollm.b"]]


def test_graph_sees_package_inits_but_not_typing_only_imports(tmp_path: Path) -> None:
    """``from emollm.p.x import f`` runs ``emollm/p/__init__``: an edge to the package, unless the import
    is under ``TYPE_CHECKING`` (never run) or comes from inside the package (a sibling import)."""
    files = {
        "emollm.a": "from emollm.p.x import f\n",
        "emollm.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from emollm.p.x import f\n",
        "emollm.p": "from emollm.p import x\n",
        "emollm.p.x": "from emollm.p.y import g\n",
        "emollm.p.y": "g = 1\n",
    }
    modules = {}
    for name, text in files.items():
        path = tmp_path / (name.replace(".", "_") + ("__init__.py" if name == "emollm.p" else ".py"))
        path.write_text(text, encoding="utf-8")
        modules[name] = path
    modules["emollm"] = tmp_path / "__init__.py"
    assert _imports("emollm.a", modules["emollm.a"], modules) == {"emollm.p.x", "emollm.p"}
    assert _imports("emollm.b", modules["emollm.b"], modules) == {"emollm.p.x"}
    assert _imports("emollm.p.x", modules["emollm.p.x"], modules) == {"emollm.p.y"}


def test_no_import_cycles() -> None:
    graph = _graph()
    assert len(graph) > 50, "the walker found too few modules"
    components = _strongly_connected(graph)
    if components:
        lines = []
        for component in components:
            cycle = _cycle_in(component, graph)
            lines.append(f"{len(component)} modules: {', '.join(component)}\n    e.g. {' -> '.join(cycle)}")
        raise AssertionError("import cycles between emollm modules:\n  " + "\n  ".join(lines))


def test_config_does_not_import_torch() -> None:
    """Validating a YAML config must not import torch or any encoder."""
    code = "import sys, emollm.config; bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"import emollm.config pulled in {proc.stdout.strip()} {proc.stderr[-500:]}"


def test_validating_every_shipped_recipe_does_not_import_torch() -> None:
    """Loading and validating the training recipes (model, encoders and their options included)
    stays in pydantic: a config check is instant and works without torch."""
    repo = ROOT.parent
    recipes = sorted(str(p) for p in (repo / "train").rglob("*.yaml"))
    assert recipes, "no training recipes found"
    code = (
        "import sys\n"
        "from emollm.training.config import load_run_config\n"
        f"for path in {recipes!r}:\n"
        "    load_run_config(path)\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=repo)
    assert proc.returncode == 0, f"validating the recipes imported {proc.stdout.strip()} {proc.stderr[-800:]}"


def test_every_emollm_import_in_the_repo_resolves() -> None:
    """Every ``from emollm.x import y`` in the package, the tests and scripts (function-level included)
    names something that exists: a module moved by a refactor leaves no stale import behind, even in
    code paths no other test runs."""
    import importlib

    repo = ROOT.parent
    bad = []
    for folder in ("emollm", "tests", "scripts"):
        for path in sorted((repo / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith(PACKAGE)
                ):
                    continue
                where = f"{path.relative_to(repo)}:{node.lineno}"
                try:
                    mod = importlib.import_module(node.module or "")
                except ImportError as e:
                    bad.append(f"{where}: {e}")
                    continue
                for alias in node.names:
                    if alias.name == "*" or hasattr(mod, alias.name):
                        continue
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        bad.append(f"{where}: {node.module} has no {alias.name!r}")
    assert not bad, "imports that do not resolve:\n  " + "\n  ".join(bad)
