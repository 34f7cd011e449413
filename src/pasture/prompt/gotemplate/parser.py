"""The parser of Go's `text/template`: tokens into a syntax tree, with Go's errors.

A port of `text/template/parse/parse.go`: the same grammar, the same checks (undefined
variables and functions, `break` outside `range`, non-executable pipeline stages) and the
same error messages, which name the line and column (`template: :3:15: unexpected "}"
in operand`), so the templates Go accepts parse here and the ones it refuses are refused.
As in Go, the parser is handed the names of the functions a template may call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from pasture.errors import TemplateError
from pasture.prompt.gotemplate.lexer import Token, lex, location
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

MAX_NESTING = 100  # control structures and parentheses inside one another
MAX_PARSE_SECONDS = 2.0  # a template is untrusted input: parsing it has a time budget


def parse(source: str, functions: set[str]) -> Tree:
    """Parse `source`, raising TemplateError (a 400) with the position on a mistake."""
    parser = _Parser(source, functions)
    try:
        root = parser.parse()
    except ValueError as exc:  # a malformed escape inside a string literal
        raise parser.error(f"invalid syntax: {exc}") from None
    return Tree(source, root, parser.defines)


class _Parser:
    """Go's template parser: the same grammar, checks and error messages."""

    def __init__(self, text: str, functions: set[str]) -> None:
        self.text = text
        self.deadline = time.monotonic() + MAX_PARSE_SECONDS
        self.tokens = lex(text)
        self.i = 0
        self.functions = functions
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.nesting = 0
        self.defines: dict[str, list[Node]] = {}

    # tokens
    def next(self) -> Token:
        token = self.tokens[self.i]
        if token.kind not in ("eof", "error"):
            self.i += 1
            if self.i % 1024 == 0 and time.monotonic() > self.deadline:
                raise self.error(f"template too complex: not parsed in {MAX_PARSE_SECONDS:g} s")
        return token

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.backup_to(token)
        return token

    def backup_to(self, token: Token) -> None:
        if token.kind not in ("eof", "error"):
            self.i -= 1

    def error(self, message: str, token: Token | None = None) -> TemplateError:
        if token is None:
            token = self.tokens[max(self.i - 1, 0)]
        return TemplateError(f"template: :{location(self.text, token.pos)}: {message}")

    def unexpected(self, token: Token, context: str) -> TemplateError:
        if token.kind == "error":
            return self.error(token.val, token)
        return self.error(f"unexpected {_describe(token)} in {context}", token)

    # structure
    def parse(self) -> list[Node]:
        root: list[Node] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                delim_index = self.i
                self.next()
                keyword = self.next_non_space()
                if keyword.kind == "keyword" and keyword.val == "define":
                    self.parse_definition()
                    continue
                self.i = delim_index
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                raise self.error(f"unexpected {node.describe()}")
            root.append(node)
        return root

    def parse_definition(self) -> None:
        name_token = self.next_non_space()
        if name_token.kind not in ("string", "rawstring"):
            raise self.unexpected(name_token, "define clause")
        name = _unquote(name_token.val)
        self.expect("right", "define clause")
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        if not isinstance(end, _End):
            raise self.error(f"unexpected {end.describe()} in define clause")
        self.vars = saved_vars
        self.defines[name] = body

    def expect(self, kind: str, context: str) -> Token:
        token = self.next_non_space()
        if token.kind != kind:
            raise self.unexpected(token, context)
        return token

    def item_list(self) -> tuple[list[Node], _End | _Else]:
        nodes: list[Node] = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                return nodes, node
            nodes.append(node)
        token = self.peek()
        if token.kind == "error":
            raise self.error(token.val, token)
        raise self.error("unexpected EOF", token)

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.kind == "text":
            return Text(token.pos, token.val)
        if token.kind == "left":
            return self.action()
        raise self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        if token.kind == "keyword":
            handler = {"block": self.block_control, "break": self.break_control,
                       "continue": self.continue_control, "else": self.else_control,
                       "end": self.end_control, "if": self.if_control,
                       "range": self.range_control, "template": self.template_control,
                       "with": self.with_control}.get(token.val)
            if handler is not None:
                return handler(token)
        self.backup_to(token)
        return Action(token.pos, self.pipeline("command", "right"))

    def break_control(self, token: Token) -> Node:
        after = self.next_non_space()
        if after.kind != "right":
            raise self.unexpected(after, "{{break}}")
        if not self.range_depth:
            raise self.error("{{break}} outside {{range}}", token)
        return Break(token.pos)

    def continue_control(self, token: Token) -> Node:
        after = self.next_non_space()
        if after.kind != "right":
            raise self.unexpected(after, "{{continue}}")
        if not self.range_depth:
            raise self.error("{{continue}} outside {{range}}", token)
        return Continue(token.pos)

    def else_control(self, token: Token) -> Node:
        after = self.peek_non_space()
        if after.kind == "keyword" and after.val in ("if", "with"):
            return _Else(after.pos)  # "else if": the if stays pending
        after = self.next_non_space()
        if after.kind != "right":
            raise self.unexpected(after, "else")
        return _Else(token.pos)

    def end_control(self, token: Token) -> Node:
        self.expect("right", "end")
        return _End(token.pos)

    def if_control(self, token: Token) -> Node:
        return self.control("if", token)

    def with_control(self, token: Token) -> Node:
        return self.control("with", token)

    def range_control(self, token: Token) -> Node:
        return self.control("range", token)

    def control(self, kind: str, token: Token) -> Branch:
        self.enter(token)
        mark = len(self.vars)
        pipe = self.pipeline(kind, "right")
        if kind == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: list[Node] | None = None
        if isinstance(end, _Else):
            following = self.peek()
            if kind in ("if", "with") and following.kind == "keyword" and following.val == kind:
                else_token = self.next()
                else_body = [self.control(kind, else_token)]
            else:
                else_body, end = self.item_list()
                if not isinstance(end, _End):
                    raise self.error(f"expected end; found {end.describe()}")
        del self.vars[mark:]
        self.nesting -= 1
        return Branch(token.pos, kind, pipe, body, else_body)

    def enter(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"template nesting exceeds {MAX_NESTING} levels", token)

    def template_control(self, token: Token) -> Node:
        name_token = self.next_non_space()
        if name_token.kind not in ("string", "rawstring"):
            raise self.unexpected(name_token, "template clause")
        pipe = None
        if self.next_non_space().kind != "right":
            self.backup()
            pipe = self.pipeline("template clause", "right")
        return Call(token.pos, _unquote(name_token.val), pipe)

    def block_control(self, token: Token) -> Node:
        name_token = self.next_non_space()
        if name_token.kind not in ("string", "rawstring"):
            raise self.unexpected(name_token, "block clause")
        name = _unquote(name_token.val)
        pipe = self.pipeline("block clause", "right")
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, _End):
            raise self.error(f"unexpected {end.describe()} in block clause")
        self.defines[name] = body
        return Call(token.pos, name, pipe)

    # pipelines
    def pipeline(self, context: str, end: str) -> Pipe:
        start = self.peek_non_space()
        pipe = Pipe(start.pos, [], False, [])
        while True:  # declarations: "$x :=", "$x =", "$i, $e :="
            var = self.peek_non_space()
            if var.kind != "variable":
                break
            var_index = self.i
            self.next()
            following = self.peek_non_space()
            if following.kind in ("assign", "declare"):
                pipe.is_assign = following.kind == "assign"
                self.next_non_space()
                self.declare(pipe, var)
                break
            if following.kind == "char" and following.val == ",":
                self.next_non_space()
                self.declare(pipe, var)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("variable", "right", "rparen"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            self.i = var_index  # "$x" is an operand, not a declaration
            break
        while True:
            token = self.next_non_space()
            if token.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.kind in ("bool", "charconst", "dot", "field", "ident", "number",
                              "string", "rawstring", "variable", "lparen") or (
                    token.kind == "keyword" and token.val == "nil"):
                self.backup_to(token)
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def declare(self, pipe: Pipe, var: Token) -> None:
        pipe.decl.append(var.val)
        self.vars.append(var.val)

    def check_pipeline(self, pipe: Pipe, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], Literal | Dot | Nil):
                raise self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == "space":
                continue
            if token.kind in ("right", "rparen"):
                self.backup()
            elif token.kind != "pipe":
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "field":
            fields = []
            while self.peek().kind == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, Field):
                return Field(node.pos, node.idents + fields)
            if isinstance(node, Variable):
                return Variable(node.pos, node.idents + fields)
            if isinstance(node, Literal | Nil | Dot):
                raise self.error(f"unexpected . after term {_node_text(node)!r}"
                                 .replace("'", '"'))
            return Chain(node.pos, node, fields)
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == "ident":
            if token.val not in self.functions:
                raise self.error(f'function "{token.val}" not defined', token)
            return Identifier(token.pos, token.val)
        if kind == "dot":
            return Dot(token.pos)
        if kind == "keyword" and token.val == "nil":
            return Nil(token.pos)
        if kind == "variable":
            name, *fields = token.val.split(".")
            if name not in self.vars:
                raise self.error(f'undefined variable "{name}"', token)
            return Variable(token.pos, [name, *fields])
        if kind == "field":
            return Field(token.pos, token.val[1:].split("."))
        if kind == "bool":
            return Literal(token.pos, token.val == "true", token.val)
        if kind in ("number", "charconst"):
            return Literal(token.pos, self.number(token), token.val)
        if kind in ("string", "rawstring"):
            return Literal(token.pos, _unquote(token.val), token.val)
        if kind == "lparen":
            self.enter(token)
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            self.nesting -= 1
            return pipe
        self.backup_to(token)
        return None

    def number(self, token: Token) -> int | float:
        """The constant a number or character literal stands for (Go's ideal constant)."""
        text = token.val
        try:
            if token.kind == "charconst":
                value = _unquote('"' + text[1:-1].replace('"', '\\"') + '"')
                if len(value) != 1:
                    raise self.error(f"malformed character constant: {text}", token)
                return ord(value)
            return _number(text)
        except _NumberError as error:
            raise self.error(str(error), token) from None
        except ValueError:
            raise self.error(f'illegal number syntax: "{text}"', token) from None


class _NumberError(ValueError):
    """A number Go's `newNumber` refuses with its own message."""


def _number(text: str) -> int | float | Overflow:
    """Go's `parse.newNumber` then `idealConstant`: an int when an int64 holds it (bases
    and `_` as in Go), else a float when written with `.eEpP`; an unsigned constant past
    int64 fails only when used (`Overflow`), a longer integer fails here."""
    if text.endswith("i"):
        raise _NumberError(f'complex constants are not supported: "{text}"')
    negative = text.startswith("-")
    body = text.lstrip("+-")
    whole = _go_int(body)
    if whole is not None:
        value = -whole if negative else whole
        if -(1 << 63) <= value < (1 << 63):
            return value
        if 0 <= value < (1 << 64):
            return Overflow(text)
    if not any(char in text for char in ".eEpP") or (
            body[:2].lower() == "0x" and not any(char in text for char in "pP")):
        if whole is not None:
            raise _NumberError(f'integer overflow: "{text}"')
        raise ValueError(text)
    if body[:2].lower() == "0x":
        if "__" in body or body.endswith("_"):
            raise ValueError(text)
        value_f = float.fromhex(body.replace("_", ""))
    else:
        value_f = float(body)
    if math.isinf(value_f) or math.isnan(value_f):
        raise ValueError(text)  # out of float64's range
    return -value_f if negative else value_f


def _go_int(body: str) -> int | None:
    """`strconv.ParseInt(body, 0, 64)` without the size check: `0x`, `0o`, `0b`, a
    leading-zero octal, `_` between digits."""
    try:
        return int(body, 0)
    except ValueError:
        pass
    if len(body) > 1 and body[0] == "0" and all(c in "01234567_" for c in body) \
            and "__" not in body and not body.endswith("_"):
        return int(body.replace("_", ""), 8)
    return None


@dataclass
class _End(Node):
    def describe(self) -> str:
        return "{{end}}"


@dataclass
class _Else(Node):
    def describe(self) -> str:
        return "{{else}}"


def _describe(token: Token) -> str:
    """Go's `item.String()` for an unexpected token."""
    if token.kind == "eof":
        return "EOF"
    if token.kind in ("keyword", "dot"):
        return f"<{token.val}>"
    if len(token.val) > 10:
        return '"' + token.val[:10].replace('"', '\\"') + '"...'
    return '"' + token.val.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_text(node: Node) -> str:
    if isinstance(node, Literal):
        return node.text
    return "nil" if isinstance(node, Nil) else "."


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v"}


def _unquote(token: str) -> str:
    """`strconv.Unquote` for Go string literals ("…" with escapes, or `raw`)."""
    if token.startswith("`"):
        return token[1:-1].replace("\r", "")
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            out.append(chr(int(body[i + 2:i + 2 + size], 16)))
            i += 2 + size
        elif esc in "01234567":
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise ValueError(f"invalid escape \\{esc}")
    return "".join(out)
