"""The syntax tree of a Go template: the nodes the parser builds and the executor walks.

A port of `text/template/parse/node.go`, reduced to what Ollama's templates can hold:
text, actions, pipelines and their operands, `if`/`with`/`range`, `break`/`continue` and
`{{ template }}` calls. `Tree` is one parsed template: its source (for error positions),
its top-level nodes and the bodies it `define`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    pos: int


@dataclass
class Text(Node):
    text: str


@dataclass
class Field(Node):
    idents: list[str]  # .A.B → ["A", "B"]


@dataclass
class Variable(Node):
    idents: list[str]  # $x.A → ["$x", "A"]


@dataclass
class Chain(Node):
    node: Node
    fields: list[str]  # (pipeline).A.B


@dataclass
class Identifier(Node):
    name: str  # a function name


@dataclass
class Dot(Node):
    pass


@dataclass
class Nil(Node):
    pass


@dataclass
class Literal(Node):
    value: Any  # bool, int, float or str constant, or an Overflow
    text: str


@dataclass(frozen=True)
class Overflow:
    """A number Go parses as an unsigned constant that no int holds: an error when used
    (`12345678901234567890 overflows int`), not when parsed."""

    text: str


@dataclass
class Command(Node):
    args: list[Node]


@dataclass
class Pipe(Node):
    decl: list[str]
    is_assign: bool
    cmds: list[Command]


@dataclass
class Action(Node):
    pipe: Pipe


@dataclass
class Branch(Node):
    """`if`, `with` or `range`: a pipeline, a body and an optional else body."""

    kind: str
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None


@dataclass
class Break(Node):
    pass


@dataclass
class Continue(Node):
    pass


@dataclass
class Call(Node):
    """`{{ template "name" pipeline }}`."""

    name: str
    pipe: Pipe | None


@dataclass
class Tree:
    """One parsed template: its source, its top-level nodes and its `define`d bodies."""

    source: str
    root: list[Node]
    defines: dict[str, list[Node]] = field(default_factory=dict)
