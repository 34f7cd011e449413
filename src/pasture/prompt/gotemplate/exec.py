"""Running a parsed Go template: Go's evaluation rules and safety caps.

Follows `text/template/exec.go`: truthiness, variable scopes (a variable lives until the
`end` of the control structure that declared it), `range` over lists, maps (sorted keys)
and integers, short-circuiting `and`/`or` that return the deciding value, `eq` with
several operands, and Ollama's `missingkey=zero` (a missing map key is nil, which prints
as `<no value>`). The functions a template calls are in `funcs`; only the
short-circuiting `and`/`or` are run here.

Every run is capped in steps, work, output size, call depth and time, so a hostile
template ends with a TemplateError instead of hanging the server. A step is one node
evaluated; work is the text a function reads and builds (characters, or the elements of
a list it slices). Steps alone let one cheap-looking action do unbounded work:
`{{ range 100000 }}{{ len (json $.Messages) }}{{ end }}` is five steps an iteration but
marshals the whole conversation each time. The clock is read every `CLOCK_EVERY` steps
and characters of work, so no run outlasts its time by more than one function call.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from pasture.errors import TemplateError
from pasture.prompt.gotemplate import values as gv
from pasture.prompt.gotemplate.funcs import FUNCTION_NAMES, FUNCTIONS, ArgTypeError, CallError
from pasture.prompt.gotemplate.lexer import location
from pasture.prompt.gotemplate.nodes import (
    Action,
    Branch,
    Break,
    Call,
    Chain,
    Command,
    Continue,
    Dot,
    Field,
    Identifier,
    Literal,
    Nil,
    Node,
    Overflow,
    Pipe,
    Text,
    Tree,
    Variable,
)
from pasture.prompt.gotemplate.printer import sprint_value

MAX_OUTPUT = gv.MAX_TEXT  # characters of output (and of any string a function builds)
MAX_STEPS = 1_000_000  # node evaluations
# Characters (and list elements) functions read and build in one render: 64 outputs' worth,
# well under a second of C-speed string work; Ollama's templates use a few outputs' worth.
MAX_WORK = 64 * MAX_OUTPUT
MAX_SECONDS = 2.0
CLOCK_EVERY = 1024  # steps and characters of work between two readings of the clock
MAX_CALL_DEPTH = 50  # nested {{ template }} calls

_MISSING = object()  # no value piped into a command (Go's missingVal)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Failure(Exception):
    """An execution error at a node; turned into a TemplateError with its position."""

    def __init__(self, node: Node | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


@dataclass
class _Limits:
    max_output: int = MAX_OUTPUT
    max_steps: int = MAX_STEPS
    max_work: int = MAX_WORK
    max_seconds: float = MAX_SECONDS


def execute(tree: Tree, data: Any, functions: Collection[str] = FUNCTION_NAMES,
            **limits: Any) -> str:
    """Render `tree` with `data` as dot (and `$`); a call of a function not among
    `functions` fails as in a Go template that lacks it."""
    state = _State(tree, _Limits(**limits), functions)
    try:
        state.walk_list(data, tree.root, [("$", data)])
    except _Failure as exc:
        where = location(tree.source, exc.node.pos) if exc.node else "1:1"
        raise TemplateError(f"template: :{where}: executing: {exc.message}") from None
    except RecursionError:
        raise TemplateError("template: nesting too deep to execute") from None
    except gv.TooLarge as exc:  # a huge value printed into an error message
        raise TemplateError(f"template: value exceeds {exc.limit} characters") from None
    return "".join(state.out)


class _State:
    def __init__(self, tree: Tree, limits: _Limits, functions: Collection[str]) -> None:
        self.tree = tree
        self.limits = limits
        self.functions = functions
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.work = 0
        self.next_clock = CLOCK_EVERY  # in steps + work
        self.deadline = time.monotonic() + limits.max_seconds
        self.depth = 0

    def step(self, node: Node) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise _Failure(node, f"template exceeds {self.limits.max_steps} steps")
        if self.steps + self.work >= self.next_clock:
            self.read_clock(node)

    def charge(self, node: Node, work: int) -> None:
        """Count `work` characters (or list elements) a function read or built."""
        self.work += work
        if self.work > self.limits.max_work:
            raise _Failure(node, f"template exceeds {self.limits.max_work} characters "
                                 "of work")
        if self.steps + self.work >= self.next_clock:
            self.read_clock(node)

    def read_clock(self, node: Node) -> None:
        self.next_clock = self.steps + self.work + CLOCK_EVERY
        if time.monotonic() > self.deadline:
            raise _Failure(node, f"template takes longer than {self.limits.max_seconds:g}s")

    def write(self, node: Node, text: str) -> None:
        self.charge(node, len(text))
        self.size += len(text)
        if self.size > self.limits.max_output:
            raise _Failure(node, f"template output exceeds {self.limits.max_output} characters")
        self.out.append(text)

    def check_size(self, node: Node, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.limits.max_output:
            raise _Failure(node, f"template value exceeds {self.limits.max_output} characters")
        return value

    # ----- statements -------------------------------------------------------------------

    def walk_list(self, dot: Any, nodes: list[Node], scope: list[tuple[str, Any]]) -> None:
        for node in nodes:
            self.walk(dot, node, scope)

    def walk(self, dot: Any, node: Node, scope: list[tuple[str, Any]]) -> None:
        self.step(node)
        if isinstance(node, Text):
            self.write(node, node.text)
        elif isinstance(node, Action):
            value = self.pipeline(dot, node.pipe, scope)
            if not node.pipe.decl:
                try:
                    text = _printable(value)
                except gv.TooLarge as exc:
                    raise _Failure(node, f"template value exceeds {exc.limit} "
                                         "characters") from None
                self.write(node, text)
        elif isinstance(node, Branch):
            mark = len(scope)
            try:
                if node.kind == "range":
                    self.walk_range(dot, node, scope)
                else:
                    self.walk_if_or_with(dot, node, scope)
            finally:
                del scope[mark:]
        elif isinstance(node, Break):
            raise _Break()
        elif isinstance(node, Continue):
            raise _Continue()
        elif isinstance(node, Call):
            self.walk_call(dot, node, scope)

    def walk_if_or_with(self, dot: Any, node: Branch, scope: list[tuple[str, Any]]) -> None:
        value = self.pipeline(dot, node.pipe, scope)
        if gv.truth(value):
            self.walk_list(value if node.kind == "with" else dot, node.body, scope)
        elif node.else_body is not None:
            self.walk_list(dot, node.else_body, scope)

    def walk_range(self, dot: Any, node: Branch, scope: list[tuple[str, Any]]) -> None:
        value = self.pipeline(dot, node.pipe, scope)
        decl = node.pipe.decl
        items: Iterable[tuple[Any, Any]]
        if value is None:
            items, count = (), 0  # nil: nothing to iterate, not an error
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(decl) > 1:
                raise _Failure(node, f"can't use {value} to iterate over more than one variable")
            items, count = ((i, i) for i in range(value)), value
        elif isinstance(value, dict):
            items, count = [(k, value[k]) for k in sorted(value, key=gv.sort_key)], len(value)
        elif isinstance(value, list | tuple):
            items, count = enumerate(value), len(value)
        else:
            raise _Failure(node, f"range can't iterate over "
                                 f"{sprint_value(value, indirect=True)}")
        if count <= 0:
            if node.else_body is not None:
                self.walk_list(dot, node.else_body, scope)
            return
        mark = len(scope)
        try:
            for index, element in items:
                self.step(node)
                if len(decl) == 1:
                    self.assign_or_top(scope, decl[0], node.pipe.is_assign, element, node)
                elif len(decl) == 2:
                    self.assign_or_top(scope, decl[0], node.pipe.is_assign, index, node)
                    self.assign_or_top(scope, decl[1], node.pipe.is_assign, element, node)
                try:
                    self.walk_list(element, node.body, scope)
                except _Continue:
                    pass
                finally:
                    del scope[mark:]
        except _Break:
            pass

    def assign_or_top(self, scope: list[tuple[str, Any]], name: str, is_assign: bool,
                      value: Any, node: Node) -> None:
        if is_assign:
            self.set_var(scope, name, value, node)
        else:
            # the range pipeline pushed its variables; they sit just below the body's
            for i in range(len(scope) - 1, -1, -1):
                if scope[i][0] == name:
                    scope[i] = (name, value)
                    return

    def walk_call(self, dot: Any, node: Call, scope: list[tuple[str, Any]]) -> None:
        body = self.tree.defines.get(node.name)
        if body is None:
            raise _Failure(node, f'no such template "{node.name}"')
        value = self.pipeline(dot, node.pipe, scope) if node.pipe is not None else None
        self.depth += 1
        if self.depth > MAX_CALL_DEPTH:
            raise _Failure(node, f"exceeded maximum template depth ({MAX_CALL_DEPTH})")
        try:
            self.walk_list(value, body, [("$", value)])
        finally:
            self.depth -= 1

    # ----- expressions ------------------------------------------------------------------

    def pipeline(self, dot: Any, pipe: Pipe, scope: list[tuple[str, Any]]) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value, scope)
        for name in pipe.decl:
            if pipe.is_assign:
                self.set_var(scope, name, value, pipe)
            else:
                scope.append((name, value))
        return value

    def set_var(self, scope: list[tuple[str, Any]], name: str, value: Any, node: Node) -> None:
        for i in range(len(scope) - 1, -1, -1):
            if scope[i][0] == name:
                scope[i] = (name, value)
                return
        raise _Failure(node, f"undefined variable: {name}")

    def command(self, dot: Any, cmd: Command, final: Any, scope: list[tuple[str, Any]]) -> Any:
        self.step(cmd)
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.field_chain(dot, dot, first.idents, first, cmd.args, final, scope)
        if isinstance(first, Chain):
            receiver = self.arg(dot, first.node, scope)
            return self.field_chain(dot, receiver, first.fields, first, cmd.args, final, scope)
        if isinstance(first, Identifier):
            return self.function(dot, first, cmd.args[1:], final, scope)
        if isinstance(first, Variable):
            value = self.variable(first, scope)
            if len(first.idents) == 1:
                self.not_a_function(cmd.args, final)
                return value
            return self.field_chain(dot, value, first.idents[1:], first, cmd.args, final, scope)
        self.not_a_function(cmd.args, final)
        if isinstance(first, Pipe):
            return self.pipeline(dot, first, scope)
        if isinstance(first, Dot):
            return dot
        if isinstance(first, Nil):
            raise _Failure(first, "nil is not a command")
        if isinstance(first, Literal):
            return _constant(first)
        raise _Failure(first, "can't evaluate command")

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise _Failure(args[0], f"can't give argument to non-function {_text(args[0])}")

    def variable(self, node: Variable, scope: list[tuple[str, Any]]) -> Any:
        name = node.idents[0]
        for i in range(len(scope) - 1, -1, -1):
            if scope[i][0] == name:
                return scope[i][1]
        raise _Failure(node, f"undefined variable: {name}")

    def field_chain(self, dot: Any, receiver: Any, idents: list[str], node: Node,
                    args: list[Node], final: Any, scope: list[tuple[str, Any]]) -> Any:
        for ident in idents[:-1]:
            receiver = self.field(receiver, ident, node, False)
        has_args = len(args) > 1 or final is not _MISSING
        return self.field(receiver, idents[-1], node, has_args)

    def field(self, receiver: Any, name: str, node: Node, has_args: bool) -> Any:
        if receiver is None:
            return None
        if isinstance(receiver, gv.GoStruct):
            if name in receiver.fields:
                if has_args:
                    raise _Failure(node, f"{name} has arguments but cannot be invoked as function")
                return receiver.fields[name]
            raise _Failure(node, f"can't evaluate field {name} in type {receiver.go_type}")
        if isinstance(receiver, dict):
            if has_args:
                raise _Failure(node, f"{name} is not a method but has arguments")
            return receiver.get(name)  # missingkey=zero: nil for map[string]any
        raise _Failure(node, f"can't evaluate field {name} in type {gv.type_name(receiver)}")

    def arg(self, dot: Any, node: Node, scope: list[tuple[str, Any]]) -> Any:
        self.step(node)
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Nil):
            return None
        if isinstance(node, Field):
            return self.field_chain(dot, dot, node.idents, node, [node], _MISSING, scope)
        if isinstance(node, Variable):
            value = self.variable(node, scope)
            if len(node.idents) == 1:
                return value
            return self.field_chain(dot, value, node.idents[1:], node, [node], _MISSING, scope)
        if isinstance(node, Pipe):
            return self.pipeline(dot, node, scope)
        if isinstance(node, Identifier):
            return self.function(dot, node, [], _MISSING, scope)
        if isinstance(node, Chain):
            receiver = self.arg(dot, node.node, scope)
            return self.field_chain(dot, receiver, node.fields, node, [node], _MISSING, scope)
        if isinstance(node, Literal):
            return _constant(node)
        raise _Failure(node, "can't handle argument")

    def function(self, dot: Any, node: Identifier, arg_nodes: list[Node], final: Any,
                 scope: list[tuple[str, Any]]) -> Any:
        name = node.name
        if name not in self.functions:
            raise _Failure(node, f'"{name}" is not a defined function')
        if name in ("and", "or"):
            if not arg_nodes and final is _MISSING:
                raise _Failure(node, f"wrong number of args for {name}: want at least 1 got 0")
            value = None
            for arg_node in arg_nodes:
                value = self.arg(dot, arg_node, scope)
                if gv.truth(value) == (name == "or"):
                    return value
            return final if final is not _MISSING else value
        args = [self.arg(dot, arg_node, scope) for arg_node in arg_nodes]
        if final is not _MISSING:
            args.append(final)
        spec = FUNCTIONS[name]
        if len(args) < spec.min_args or (spec.max_args is not None
                                         and len(args) > spec.max_args):
            want = (f"at least {spec.min_args}" if spec.max_args is None
                    else str(spec.min_args))
            raise _Failure(node, f"wrong number of args for {name}: want {want} got {len(args)}")
        try:
            result = spec.call(*args)
        except CallError as exc:
            raise _Failure(node, f"error calling {name}: {exc}") from None
        except ArgTypeError as exc:
            raise _Failure(node, f"expected {exc}") from None
        except gv.TooLarge as exc:
            raise _Failure(node, f"template value exceeds {exc.limit} characters") from None
        self.charge(node, _work(args, result))
        return self.check_size(node, result)


def _work(args: list[Any], result: Any) -> int:
    """What a call cost: the strings it read, and the string or list it built."""
    read = sum(len(arg) for arg in args if isinstance(arg, str))
    return read + (len(result) if isinstance(result, str | list) else 0)


def _printable(value: Any) -> str:
    """What `{{ value }}` writes: nil (a missing key included) is `<no value>`, and a
    pointer what it points to (text/template's `printableValue`)."""
    if value is None:
        return "<no value>"
    return sprint_value(value, indirect=True)


def _constant(node: Literal) -> Any:
    if isinstance(node.value, Overflow):
        raise _Failure(node, f"{node.text} overflows int")
    return node.value


def _text(node: Node) -> str:
    if isinstance(node, Field):
        return "." + ".".join(node.idents)
    if isinstance(node, Variable):
        return ".".join(node.idents)
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, Dot):
        return "."
    return "nil" if isinstance(node, Nil) else "(pipeline)"
