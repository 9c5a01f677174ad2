"""The linter is part of the tests: `ruff check` over the code (configuration in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_ruff_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    assert exe, "ruff is in the dev extra: make setup installs it"
    result = subprocess.run([exe, "check", "src", "tests", "tools", "benchmarks", "assets"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------- the import graph
FOUNDATION = {"svd_lab.version", "svd_lab.errors", "svd_lab.progress", "svd_lab.atomic", "svd_lab.paths",
              "svd_lab.alignment", "svd_lab.pixels", "svd_lab.kernel", "svd_lab.processes"}
FRONT_ENDS = {"svd_lab.cli", "svd_lab.__main__"}


def _import_graph() -> dict[str, set[str]]:
    """module -> the svd_lab modules it imports, at the top or inside functions (``from svd_lab.x import y`` counts
    as importing ``svd_lab.x``, or only ``svd_lab.x.y`` when that is a module)."""
    import ast

    src = REPO / "src"
    modules = {}
    for path in (src / "svd_lab").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("svd_lab"):
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                targets.update(submodules)
                if len(submodules) < len(node.names):     # names defined in the module itself, not submodules
                    targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("svd_lab"))
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_the_import_graph_has_no_cycles():
    """README, "Where things live": every module can be read knowing only what it imports -- no module imports
    (even inside a function) one that imports it back, directly or through others."""
    graph = _import_graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_foundation_imports_only_the_foundation_and_nothing_imports_the_front_ends():
    graph = _import_graph()
    for module in FOUNDATION:
        assert graph[module] <= FOUNDATION, f"{module} imports {sorted(graph[module] - FOUNDATION)}"
    for module, targets in graph.items():
        if module in FRONT_ENDS or module.startswith("svd_lab.commands"):
            continue
        bad = {t for t in targets if t in FRONT_ENDS or t.startswith("svd_lab.commands")}
        assert not bad, f"{module} (library) imports the command line: {sorted(bad)}"
