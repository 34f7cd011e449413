"""The public face of the Go template interpreter: parse a template, then execute it.

As Go's `text/template` does on top of `text/template/parse`, `Template` ties the pieces
together: the parser is handed the names of the builtin functions (`funcs`), and a parsed
template runs in the capped executor (`exec`).
"""

from __future__ import annotations

from typing import Any

from pasture.errors import TemplateError
from pasture.prompt.gotemplate.exec import execute
from pasture.prompt.gotemplate.funcs import FUNCTION_NAMES
from pasture.prompt.gotemplate.nodes import (
    Action,
    Branch,
    Call,
    Field,
    Node,
    Pipe,
    Tree,
    Variable,
)
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
        """Field and variable names, lower-cased, found as Ollama's `Vars()` finds them.

        Ollama's `Identifiers` (template/template.go) does not look inside a parenthesised
        pipeline that a field follows (`(index .Messages 0).Role`), so such a template
        renders in legacy mode there, and here; a `{{ template "x" }}` without a
        pipeline is its error "undefined template specified", which refuses the template.
        """
        names: set[str] = set()
        for nodes in [self.root, *self.defines.values()]:
            _identifiers(nodes, names)
        return names


def _identifiers(nodes: list[Node], names: set[str]) -> None:
    for node in nodes:
        if isinstance(node, Action):
            _pipe_identifiers(node.pipe, names)
        elif isinstance(node, Branch):
            _pipe_identifiers(node.pipe, names)
            _identifiers(node.body, names)
            _identifiers(node.else_body or [], names)
        elif isinstance(node, Call):
            if node.pipe is None:
                raise TemplateError("undefined template specified")
            _pipe_identifiers(node.pipe, names)


def _pipe_identifiers(pipe: Pipe, names: set[str]) -> None:
    for cmd in pipe.cmds:
        for arg in cmd.args:
            if isinstance(arg, Field | Variable):
                names.update(ident.lower() for ident in arg.idents)
            elif isinstance(arg, Pipe):
                _pipe_identifiers(arg, names)
