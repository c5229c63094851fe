"""The package has no import cycle, lazy (function-level) imports included (issue #16.5).

The graph is read from the source with `ast`, not by importing: every `import` and
`from ... import` anywhere in a module (top level, inside functions, under `try`) is an
edge, except those under `if TYPE_CHECKING:` (never executed). Importing a submodule also
runs its parent packages' `__init__`, so `a.b.c` is an edge to `a.b.c`, `a.b` and `a`
(each one that is a module of the package). A cycle hidden behind a lazy import is still a
cycle: it only moves the failure from import time to the first call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import proofflow

ROOT = Path(proofflow.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement in `tree` may load (type-checking blocks
    excluded); `from pkg import name` counts `pkg.name` too (it may be a submodule)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: set[str] = set()
        for target in imported_names(tree, name, path.name == "__init__.py"):
            parts = target.split(".")
            # Loading a.b.c runs a, a.b and a.b.c: an edge to each that is ours.
            edges.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in files)
        edges.discard(name)
        # A package's own parents are loaded before it: not an edge it makes.
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_graph_sees_lazy_imports_and_parents() -> None:
    """The reader itself: a function-level import is an edge, a TYPE_CHECKING one is not,
    and a submodule import reaches its package."""
    src = ("from typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from proofflow.b import X\n"
           "def f():\n    from proofflow.c.d import y\n    import proofflow.e\n")
    names = imported_names(ast.parse(src), "proofflow.a", False)
    assert {"proofflow.c.d", "proofflow.c.d.y", "proofflow.e"} <= names
    assert "proofflow.b" not in names
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "proofflow.storage.db" in graph["proofflow.storage"] or graph["proofflow.storage.db"]


def test_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (each a set of modules that reach each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)
