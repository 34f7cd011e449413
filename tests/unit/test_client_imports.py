"""The Python client, and the CLI on top of it, import nothing of the server.

As in Ollama, whose `api` package is the one thing its CLI and server share, the client
talks to a server over HTTP and depends on `pasture.api` (the wire contract) and a few
top-level leaf modules only. Read from the source with `ast`, not by importing, so a
module imported under `if TYPE_CHECKING:` or inside a function (run on use, e.g. `serve`
starting the server) does not count, and the check needs none of the server's packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pasture"
SERVER_SIDE = ("store", "server", "scheduler", "runner", "engines", "prompt")


def _modules() -> dict[str, Path]:
    """Every module under src/pasture by dotted name (a package by its `__init__.py`)."""
    found = {}
    for path in PACKAGE.parent.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _run_at_import(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements run when a module is imported: not function bodies, nor the
    `if TYPE_CHECKING:` branch (its `else:` does run)."""
    for node in body:
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _run_at_import(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _run_at_import(getattr(node, field, ()))


def _with_parents(name: str) -> Iterator[str]:
    """Importing `a.b.c` runs `a` and `a.b` first."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def imports_in(source: str, module: str, is_package: bool = False) -> set[str]:
    """The pasture modules that importing `module`, whose code is `source`, imports."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _run_at_import(ast.parse(source).body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import name` imports the submodule `pkg.name` when there is one.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(parent for name in names if name in MODULES
                     for parent in _with_parents(name))
    found.discard(module)
    return found


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    return imports_in(path.read_text(), module, path.name == "__init__.py")


def closure(roots: Iterable[str]) -> set[str]:
    """`roots` and every pasture module they import, transitively."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imports_of(module))
    return seen


def server_side(modules: Iterable[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == f"pasture.{p}" or m.startswith(f"pasture.{p}.")
                         for p in SERVER_SIDE))


def package(name: str) -> list[str]:
    return [m for m in MODULES if m == name or m.startswith(name + ".")]


def test_client_imports_nothing_of_the_server() -> None:
    reached = server_side(closure(package("pasture.client")))
    assert not reached, f"pasture.client imports {', '.join(reached)}"


def test_the_cli_imports_nothing_of_the_server() -> None:
    # `pasture engine` imports `pasture.engines` inside its commands, so nothing is excused.
    reached = server_side(closure(package("pasture.cli")))
    assert not reached, f"pasture.cli imports {', '.join(reached)}"


def test_the_import_reader_sees_what_runs_at_import_and_nothing_else() -> None:
    # Guards the reader itself: one that missed imports would pass everything.
    source = """
from typing import TYPE_CHECKING
import pasture.store.names
from pasture.store import blobs, Store
from . import ollama
try:
    from pasture.scheduler import memory
except ImportError:
    from pasture.runner import base
if TYPE_CHECKING:
    from pasture.server import app
else:
    from pasture.prompt import render

class Lazy:
    from pasture.engines import probe

def later():
    import pasture.server.app
"""
    assert imports_in(source, "pasture.api.example") == {
        "pasture", "pasture.store", "pasture.store.names", "pasture.store.blobs",
        "pasture.api", "pasture.api.ollama", "pasture.scheduler",
        "pasture.scheduler.memory", "pasture.runner", "pasture.runner.base",
        "pasture.prompt", "pasture.prompt.render", "pasture.engines",
        "pasture.engines.probe"}
