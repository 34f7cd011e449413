"""Go `text/template`, as Ollama's model templates use it: parsed and interpreted here.

Templates come from models and Modelfiles, so they are untrusted input: this is an
interpreter over a parsed tree (no code generation, no eval), with caps on output size,
steps and nesting. The lexer and parser follow Go's `text/template/parse` closely so the
same templates parse, the same whitespace is trimmed and the same mistakes are errors;
errors name the line and column (`template: :3:15: unexpected "}" in operand`).

    >>> Template.parse("{{ range .Messages }}{{ .Role }}: {{ .Content }}\\n{{ end }}").execute(
    ...     {"Messages": [GoStruct("m", {"Role": "user", "Content": "hi"})]})
    'user: hi\\n'

The package is laid out as Go's is, and its imports run one way: `lexer` (tokens) ←
`parser` (Go's `parse.go`, building the `nodes` of the syntax tree); `values` (Go's
data, marshalling and truth) ← `strconv` (float formats) ← `printer` (`fmt` printing an
operand: `print`, `{{ value }}`) ← `printf` (Go's `Sprintf` format) ← `funcs` (the
builtin functions) ← `exec` (running a tree within its caps); `template`
(`Template`: parse, then execute) sits on top. This module re-exports the names the rest
of Pasture uses.
"""

from __future__ import annotations

from pasture.errors import TemplateError
from pasture.prompt.gotemplate.funcs import BUILTIN_NAMES
from pasture.prompt.gotemplate.nodes import (
    Action,
    Branch,
    Command,
    Field,
    Node,
    Pipe,
    Text,
    Variable,
)
from pasture.prompt.gotemplate.template import Template
from pasture.prompt.gotemplate.values import GoStruct, JSONList, JSONMap, json_decoded

__all__ = ["BUILTIN_NAMES", "Action", "Branch", "Command", "Field", "GoStruct", "JSONList",
           "JSONMap", "Node",
           "Pipe", "Template", "TemplateError", "Text", "Variable", "json_decoded"]
