"""`pasture`'s modules import one another one way: the import graph has no cycles.

A cycle works only while each module in it happens to find what it needs already defined
in the other, half-initialised one, and a function-level import that dodges a cycle hides
it rather than removing it (the Go template interpreter had such a pair until it was split
into a package whose imports run one way). So the graph counts every import of a
`pasture` module, at module level or inside a function, except the few lazy imports in
LAZY_IMPORTS, which are deferred to keep start-up cheap; imports under
`if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# (importer, imported): function-level imports that close a loop but exist for start-up
# time, not to dodge a cycle. Only those that would otherwise close a cycle belong here;
# each must still be a function-level import (test_lazy_imports_are_still_lazy).
LAZY_IMPORTS = {
    # `import pasture` (server, runner) must not pay for httpx; the client's names are
    # imported on first use, and the client imports `pasture.__version__`.
    ("pasture", "pasture.client"),
}


def modules(src: Path) -> dict[str, Path]:
    """Every module under `src/pasture` by dotted name (a package by its `__init__.py`)."""
    found: dict[str, Path] = {}
    for path in sorted((src / "pasture").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Imports(ast.NodeVisitor):
    """What one module imports: (the modules it may name, best first; line; in a function)."""

    def __init__(self, package: str) -> None:
        self.package = package  # what relative imports are relative to
        self.found: list[tuple[tuple[str, ...], int, bool]] = []
        self.in_function = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.in_function += 1
        self.generic_visit(node)
        self.in_function -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append(((alias.name,), node.lineno, self.in_function > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
        for alias in node.names:
            # `from pkg import name` imports the submodule `pkg.name` when there is one
            self.found.append(((f"{base}.{alias.name}", base), node.lineno,
                               self.in_function > 0))


def import_edges(src: Path) -> dict[tuple[str, str], tuple[int, bool]]:
    """(importer, imported) → (line, lazy) for every import of one `pasture` module by another.

    Only the module an import names is an edge, not the parent packages Python initialises
    on the way: a package's `__init__` importing the submodules that import their siblings
    is the usual shape, not a cycle.
    """
    known = modules(src)
    edges: dict[tuple[str, str], tuple[int, bool]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        visitor = _Imports(package)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for candidates, line, lazy in visitor.found:
            resolved = next((module for module in candidates if module in known), None)
            if resolved is None or resolved == name:
                continue
            # a module-level import of the pair wins over a lazy one
            if (name, resolved) not in edges or not lazy:
                edges[(name, resolved)] = (line, lazy)
    return edges


def find_cycle(edges: dict[tuple[str, str], tuple[int, bool]]) -> list[str]:
    """One cycle of the graph as [a, b, …, a], or [] when there is none."""
    graph: dict[str, list[str]] = {}
    for importer, imported in sorted(edges):
        graph.setdefault(importer, []).append(imported)
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for following in graph.get(node, []):
            if state.get(following) == "open":
                return path[path.index(following):] + [following]
            if following not in state and (cycle := visit(following)):
                return cycle
        path.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def describe(cycle: list[str], edges: dict[tuple[str, str], tuple[int, bool]]) -> str:
    steps = []
    for importer, imported in zip(cycle, cycle[1:], strict=False):
        line, lazy = edges[(importer, imported)]
        steps.append(f"  {importer}:{line} imports {imported}"
                     + (" (inside a function)" if lazy else ""))
    return "import cycle " + " -> ".join(cycle) + "\n" + "\n".join(steps)


def counted(src: Path) -> dict[tuple[str, str], tuple[int, bool]]:
    """The edges of the graph, less the allowed lazy imports (while they are lazy)."""
    return {pair: (line, lazy) for pair, (line, lazy) in import_edges(src).items()
            if not (lazy and pair in LAZY_IMPORTS)}


def test_pasture_imports_have_no_cycle() -> None:
    edges = counted(SRC)
    cycle = find_cycle(edges)
    assert not cycle, describe(cycle, edges)


def test_lazy_imports_are_still_lazy() -> None:
    edges = import_edges(SRC)
    stale = {pair for pair in LAZY_IMPORTS if not edges.get(pair, (0, False))[1]}
    assert not stale, f"LAZY_IMPORTS entries that are not function-level imports: {stale}"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pasture" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_function_level_import_closing_a_loop_is_a_cycle(tmp_path: Path) -> None:
    src = _write(tmp_path, {"__init__.py": "", "a.py": "def f():\n    from pasture import b\n",
                            "b.py": "from pasture.a import f\n"})
    edges = import_edges(src)
    assert find_cycle(edges) == ["pasture.a", "pasture.b", "pasture.a"]
    assert "pasture.a:2 imports pasture.b (inside a function)" in describe(
        find_cycle(edges), edges)


def test_an_import_only_for_type_checking_is_no_edge(tmp_path: Path) -> None:
    src = _write(tmp_path, {"__init__.py": "", "a.py": "from pasture import b\n",
                            "b.py": "from typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from pasture.a import X\n"})
    assert set(import_edges(src)) == {("pasture.a", "pasture.b")}
    assert find_cycle(import_edges(src)) == []
