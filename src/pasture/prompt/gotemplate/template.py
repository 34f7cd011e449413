"""The public face of the Go template interpreter: parse a template, then execute it.

As Go's `text/template` does on top of `text/template/parse`, `Template` ties the pieces
together: the parser is handed the names of the builtin functions (`funcs`), and a parsed
template runs in the capped executor (`exec`).
"""

from __future__ import annotations

from typing import Any

from pasture.prompt.gotemplate.exec import execute
from pasture.prompt.gotemplate.funcs import FUNCTION_NAMES
from pasture.prompt.gotemplate.nodes import Field, Tree, Variable, walk
from pasture.prompt.gotemplate.parser import parse


class Template(Tree):
    """A parsed template: run it with `execute(data)`; it never runs code of its own."""

    @classmethod
    def parse(cls, source: str) -> Template:
        """Parse `source`, raising TemplateError (a 400) with the position on a mistake."""
        tree = parse(source, FUNCTION_NAMES)
        return cls(tree.source, tree.root, tree.defines)

    def execute(self, data: Any, **limits: Any) -> str:
        """Render with `data` as dot; `exec` holds the caps (MAX_OUTPUT, MAX_STEPS, …)."""
        return execute(self, data, **limits)

    def identifiers(self) -> set[str]:
        """Field and variable names used anywhere, lower-cased (Ollama's `Vars()`)."""
        names: set[str] = set()
        for nodes in [self.root, *self.defines.values()]:
            for node in walk(nodes):
                if isinstance(node, Field | Variable):
                    names.update(ident.lower() for ident in node.idents)
        return names
