"""Tool calls in a model's output: where they start, and how they are read back.

A model asked with tools answers either plain text or tool calls written in the format
its template taught it: a tag (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`)
followed by JSON objects, or bare JSON. As Ollama does (`tools/template.go`), the tag
is the first non-whitespace text inside the template's `{{ if .ToolCalls }}` block, cut
before `{`; without one, `{` itself is the tag and output counts as calls only when it
*starts* with it. For a GGUF Jinja template the tag is the first known one it mentions.

`ToolCallParser` reads the output as it streams: text before the tag is content at
once; after it, JSON objects are brace-matched (string-aware), each emitted as a call
as soon as it is complete, when it names a provided tool. Output that turns out not to
be a call is given back as content, tag included.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

from pasture.errors import BadRequestError
from pasture.prompt.gotemplate import Action, Branch, Field, Node, Template, Text, Variable

# Tags the common Jinja templates teach, in the order they are looked for.
JINJA_TAGS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<|tool_call_start|>",
              "<tool_calls>", "<function_call>", "<|tool_call|>")
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class ToolCallFormat:
    """How a model writes tool calls: the tag before them, the tag after (if its
    template has one) and the key its JSON puts the arguments under."""

    prefix: str = "{"
    suffix: str = ""
    arguments_key: str = "arguments"

    @property
    def bare(self) -> bool:
        """No tag: calls are JSON from the first character on."""
        return self.prefix in ("{", "[")


def new_call_id() -> str:
    """Ollama's tool-call id: `call_` and 8 lower-case letters or digits."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


# ----- finding the format in a template --------------------------------------------------


def go_template_format(template: Template) -> ToolCallFormat:
    """The tool-call format a Go template teaches (Ollama's `parseTag`)."""
    block = _tool_calls_block(template.root)
    if block is None:
        return ToolCallFormat()
    first = _first_text(block.body)
    prefix = "{"
    if first is not None:
        prefix = first.text.replace("\r\n", "\n").split("{", 1)[0].strip() or "{"
        # `[TOOL_CALLS] [` opens a list of calls: the tag is `[TOOL_CALLS]` (the parser
        # skips the bracket), so `[TOOL_CALLS][` matches as well.
        prefix = prefix.removesuffix("[").rstrip() or prefix
    texts = "".join(node.text for node in _texts(block.body))
    return ToolCallFormat(prefix, _closing(prefix, texts), _arguments_key(texts))


def jinja_template_format(chat_template: str) -> ToolCallFormat:
    """The tool-call format a GGUF Jinja template mentions (bare JSON if no known tag)."""
    prefix = next((tag for tag in JINJA_TAGS if tag in chat_template), "{")
    return ToolCallFormat(prefix, _closing(prefix, chat_template),
                          _arguments_key(chat_template))


def _closing(prefix: str, text: str) -> str:
    """`</tool_call>` for `<tool_call>` (`[/TOOL_CALLS]` …), when the template writes it."""
    if len(prefix) < 2 or prefix[0] not in "<[":
        return ""
    closing = prefix[0] + "/" + prefix[1:]
    return closing if closing in text else ""


def _arguments_key(text: str) -> str:
    return "parameters" if '"parameters"' in text and '"arguments"' not in text else "arguments"


def _is_tool_calls_if(node: Branch) -> bool:
    return node.kind == "if" and any(
        isinstance(arg, Field | Variable) and "ToolCalls" in arg.idents
        for cmd in node.pipe.cmds for arg in cmd.args)


def _tool_calls_block(nodes: list[Node]) -> Branch | None:
    """The first `{{ if .ToolCalls }}`, searched depth first through if/range/with."""
    for node in nodes:
        if not isinstance(node, Branch):
            continue
        if _is_tool_calls_if(node):
            return node
        for body in (node.body, node.else_body or []):
            found = _tool_calls_block(body)
            if found is not None:
                return found
    return None


def _first_text(nodes: list[Node]) -> Text | None:
    """The first non-blank text, stopping at the first action or nested block (Ollama's
    `findTextNode`), so text after the calls is never taken for the tag."""
    for node in nodes:
        if isinstance(node, Text):
            if node.text.strip():
                return node
        elif isinstance(node, Branch):
            found = _first_text(node.body)
            if found is None and node.else_body is not None:
                found = _first_text(node.else_body)
            return found
        elif isinstance(node, Action):
            return None
    return None


def _texts(nodes: list[Node]) -> list[Text]:
    found: list[Text] = []
    for node in nodes:
        if isinstance(node, Text):
            found.append(node)
        elif isinstance(node, Branch):
            found.extend(_texts(node.body))
            found.extend(_texts(node.else_body or []))
    return found


# ----- tool_choice ------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolChoice:
    """A request's `tool_choice`: `auto`, `none`, `required`, or one named function."""

    mode: str = "auto"
    name: str = ""

    @property
    def forced(self) -> bool:
        return self.mode in ("required", "function")

    @classmethod
    def of(cls, value: Any, tools: list[dict[str, Any]] | None) -> ToolChoice:
        """Parse OpenAI's `tool_choice` (also taken on `/api/chat`); 400 when it asks for
        a call without tools, or names a function not among them."""
        if value is None:
            return cls()
        if isinstance(value, str):
            if value not in ("auto", "none", "required"):
                raise BadRequestError(
                    f"invalid tool_choice {value!r}: use auto, none, required or a function")
            choice = cls(value)
        elif isinstance(value, dict):
            function = value.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if value.get("type", "function") != "function" or not isinstance(name, str):
                raise BadRequestError(
                    'invalid tool_choice: expected {"type": "function", "function": {"name": …}}')
            choice = cls("function", name)
        else:
            raise BadRequestError("invalid tool_choice: expected a string or an object")
        if choice.forced and not tools:
            raise BadRequestError(f"tool_choice {choice.name or choice.mode!r} needs tools")
        if choice.mode == "function" and choice.name not in tool_names(tools):
            raise BadRequestError(f"tool_choice names {choice.name!r}, which is not in tools")
        return choice


def tool_names(tools: list[dict[str, Any]] | None) -> list[str]:
    names = []
    for tool in tools or []:
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


# ----- reading calls back -----------------------------------------------------------------


def json_object_end(text: str, start: int = 0) -> int:
    """Index just past the JSON object opening at `text[start]`, or -1 while it is
    incomplete; braces inside strings (and escaped quotes) do not count."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        char = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def call_from_object(value: Any, names: set[str]) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) when `value` is a call of a provided tool: `name` with
    `arguments` or `parameters` (an object, or a string of one), possibly wrapped in
    `{"function": {...}}`."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if name is None and isinstance(value.get("function"), str):
        name = value["function"]
    if not isinstance(name, str) or name not in names:
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if arguments is None:
        arguments = {}
    return (name, arguments) if isinstance(arguments, dict) else None


class ToolCallParser:
    """Split streamed output into content and tool calls (see the module docstring).

        parser = ToolCallParser(ToolCallFormat("<tool_call>"), tools)
        content, calls = parser.feed(chunk)   # as chunks arrive
        content, calls = parser.finish()      # at the end
    """

    _SEARCHING, _PARSING, _PLAIN = range(3)

    def __init__(self, fmt: ToolCallFormat, tools: list[dict[str, Any]]) -> None:
        self.format = fmt
        self.names = set(tool_names(tools))
        self.state = self._SEARCHING
        self.buffer = ""  # text not yet given out
        self.held = ""  # text consumed while parsing, given back if no call comes of it
        self.count = 0  # calls emitted so far: the next call's index

    def feed(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """Content that can be shown now, and the calls completed by `text`."""
        if self.state == self._PLAIN:
            return text, []
        self.buffer += text
        content = ""
        if self.state == self._SEARCHING:
            content = self._search()
        if self.state == self._PARSING:
            calls, more = self._parse()
            return content + more, calls
        if self.state == self._PLAIN:
            content, self.buffer = content + self.buffer, ""
        return content, []

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        """What is left once the output has ended: held text that was not a call."""
        rest = self.held + self.buffer
        self.held = self.buffer = ""
        if self.state == self._PARSING and self.count and self._separators_only(rest):
            return "", []  # a closing tag (whole or cut off) or whitespace after the last call
        return rest, []

    def _search(self) -> str:
        """Look for the tag; return the content before it (minus a partial tag)."""
        prefix = self.format.prefix
        if self.format.bare:
            stripped = self.buffer.lstrip()
            if not stripped:
                return ""
            if stripped[0] != prefix:
                self.state = self._PLAIN
                return ""
            self.buffer = stripped
            self.state = self._PARSING
            return ""
        at = self.buffer.find(prefix)
        if at >= 0:
            content = self.buffer[:at]
            self.held, self.buffer = prefix, self.buffer[at + len(prefix):]
            self.state = self._PARSING
            return content
        keep = partial_suffix(self.buffer, prefix)
        content = self.buffer[:len(self.buffer) - keep]
        self.buffer = self.buffer[len(self.buffer) - keep:]
        return content

    def _parse(self) -> tuple[list[dict[str, Any]], str]:
        """Emit each complete call; give everything back as content if a non-call shows."""
        calls: list[dict[str, Any]] = []
        while True:
            skipped = self._skip_separators()
            self.held += skipped
            if not self.buffer or self._maybe_separator(self.buffer):
                return calls, ""
            if self.buffer[0] != "{":
                return calls, self._give_up()
            end = json_object_end(self.buffer)
            if end < 0:
                return calls, ""
            try:
                value = json.loads(self.buffer[:end])
            except ValueError:
                value = None
            call = call_from_object(value, self.names)
            if call is None:
                return calls, self._give_up()
            self.buffer = self.buffer[end:]
            self.held = ""
            calls.append({"id": new_call_id(), "function": {
                "index": self.count, "name": call[0], "arguments": call[1]}})
            self.count += 1

    def _give_up(self) -> str:
        """Not a call after all: the held text and the rest stream on as content."""
        self.state = self._PLAIN
        content = self.held + self.buffer
        self.held = self.buffer = ""
        return content

    def _separator_tokens(self) -> tuple[str, ...]:
        tags = (self.format.prefix, self.format.suffix)
        return tuple(tag for tag in tags if tag and not self.format.bare) + (",", "[", "]")

    def _skip_separators(self) -> str:
        """Drop whitespace, commas, brackets and the tags between calls; return them."""
        start = self.buffer
        progress = True
        while progress:
            progress = False
            stripped = self.buffer.lstrip()
            if stripped != self.buffer:
                self.buffer, progress = stripped, True
            for token in self._separator_tokens():
                if self.buffer.startswith(token):
                    self.buffer, progress = self.buffer[len(token):], True
        return start[:len(start) - len(self.buffer)]

    def _maybe_separator(self, text: str) -> bool:
        """`text` may still grow into a tag (wait for more before judging it)."""
        return any(len(text) < len(tag) and tag.startswith(text)
                   for tag in self._separator_tokens())

    def _separators_only(self, text: str) -> bool:
        """Only separators, the last perhaps cut short: a budget that runs out inside the
        closing tag (`\n</tool_`) leaves part of the tag, which is still no content."""
        for token in self._separator_tokens():
            text = text.replace(token, "")
        text = text.strip()
        return not text or self._maybe_separator(text)


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that begins `tag` (a tag split across chunks)."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
