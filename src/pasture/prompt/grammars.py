"""Grammars that constrain decoding: JSON schemas, user grammars, forced tool calls.

The engine (llama.cpp built with llguidance) compiles a `json_schema` or a grammar in
llguidance's Lark dialect (`%llguidance {}` first) when a request starts; a schema it
cannot compile is only logged there and the answer comes back *unconstrained*. So every
schema and Lark grammar is compiled here first with the same library (PyPI
`llguidance`), and one it rejects is a 400 naming the construct. GBNF grammars go to
llama.cpp's own parser, which refuses a bad one with a 400 of its own. The grammars
Pasture composes (`Constrained`) are written in GBNF instead for an engine build without
llguidance (`pasture.prompt.gbnf`).

Thinking and constraints: a thinking model asked for a `format` or a forced tool call
must still be free to think first. Ollama runs two passes for that (unconstrained until
the thought closes, then again with the format); here one grammar does it: room for a
thought in the model's own tags, free text up to the closing tag, then the constrained
answer. One generation keeps streaming, metrics, logprobs and the prompt cache a single
code path, and the engine cannot drift between passes. The thought is optional (the
model decides, as in Ollama's first pass) unless the prompt already opened it, in which
case the output starts inside it and must close it. Tags are matched as text, which is
how llama.cpp's llguidance sees user-defined tokens such as Qwen 3's `<think>`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from pasture.errors import BadRequestError
from pasture.prompt import bounds, gbnf
from pasture.prompt.tools import ToolCallFormat, ToolChoice

LLGUIDANCE = "%llguidance {}"
MAX_GRAMMAR_BYTES = 256 * 1024


@functools.lru_cache(maxsize=256)
def _compile_error(grammar: str) -> str:
    """llguidance's complaint about `grammar` ("" when it compiles); remembered, as the
    same schemas and tool lists come with request after request."""
    import llguidance

    return _first_line(llguidance.LLMatcher.validate_grammar(grammar))


def _first_line(message: str) -> str:
    """The reason alone: llguidance follows it with the grammar's source, quoted."""
    lines = []
    for line in message.strip().splitlines():
        if re.match(r"^\s*\d+ \| ", line):
            break
        if line.strip() and not set(line.strip()) <= {"^"}:
            lines.append(line.strip())
    return re.sub(r"^at \d+\(\d+\): ", "", " ".join(lines))


_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
               "propertyNames", "unevaluatedProperties")


def closed_objects(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` wherever an object lists `properties`
    and says nothing about others, as llama.cpp's own schema converter (which Ollama
    uses) reads such objects; llguidance would allow any extra key, and a small model
    then invents keys until it runs out of tokens."""
    if not isinstance(schema, dict):
        return schema
    closed = dict(schema)
    for key in bounds.SCHEMA_MAPS:
        if isinstance(closed.get(key), dict):
            closed[key] = {name: closed_objects(sub) for name, sub in closed[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(closed.get(key), list):
            closed[key] = [closed_objects(sub) for sub in closed[key]]
    for key in _SCHEMA_ONE:
        if key in closed:
            closed[key] = closed_objects(closed[key])
    if isinstance(closed.get("properties"), dict) and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


@dataclass(frozen=True)
class Thought:
    """Room for a thought before a constrained answer: the model's thinking tags, and
    whether the prompt already opened the thought (the output then starts inside it)."""

    opening: str
    closing: str
    opened: bool = False


def _grammar(answer: str, rules: list[str], thought: Thought | None = None) -> str:
    """An llguidance Lark grammar whose `start` is `answer`, after room for `thought`.

    The thought's text is lazy up to the first closing tag (llguidance's `suffix`), so
    the tag always ends it; blank lines may follow it, as models write them."""
    start = answer
    if thought is not None:
        opening = "" if thought.opened else _lark_string(thought.opening) + " "
        start = f"thought{'' if thought.opened else '?'} {answer}"
        rules = [f"thought: {opening}thought_text /[ \\t\\r\\n]*/",
                 f"thought_text[suffix={_lark_string(thought.closing)}]: /(?s:.*)/", *rules]
    return "\n".join([LLGUIDANCE, f"start: {start}", *rules]) + "\n"


def _json(schema: Any) -> str:
    return f"%json {json.dumps(schema, separators=(',', ':'))}"


def format_schema(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema Ollama's `format` asks for (None: unconstrained). `json` is any
    object; a schema gets its objects closed and is checked (400 if it cannot be enforced)."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "object"}
    if isinstance(fmt, dict):
        bounds.check_schema(fmt)  # before anything walks it: its depth is bounded here
        schema = closed_objects(fmt)
        check_json_schema(schema)  # else the engine would answer unconstrained
        return schema
    raise BadRequestError(f"invalid format: {fmt!r}")


def format_grammar(schema: dict[str, Any], thought: Thought) -> Constrained:
    """The grammar for a `format` schema after room for a thought."""
    answer = Constrained(schema, thought=thought)
    error = _compile_error(answer.lark())
    if error:
        raise BadRequestError(f"invalid format: cannot constrain it after thinking: {error}")
    return answer


def check_json_schema(schema: Any, what: str = "format") -> None:
    """400 `invalid <what>: …` naming what the engine cannot enforce in `schema`."""
    if not isinstance(schema, dict | bool):
        raise BadRequestError(f"invalid {what}: a JSON schema must be an object")
    error = _compile_error(Constrained(schema).lark())  # what the engine builds
    if error:
        reason = error.removeprefix("failed to compile JSON schema: ")
        raise BadRequestError(f"invalid {what}: unsupported JSON schema: {reason}")


def check_grammar(grammar: str) -> None:
    """400 for a grammar that is empty, too large, or (Lark) does not compile."""
    if not grammar.strip():
        raise BadRequestError("invalid grammar: it is empty")
    if len(grammar.encode()) > MAX_GRAMMAR_BYTES:
        raise BadRequestError("invalid grammar: larger than 256 KiB")
    bounds.check_grammar(grammar, is_lark(grammar))
    if is_lark(grammar):
        error = _compile_error(grammar)
        if error:
            raise BadRequestError(f"invalid grammar: {error}")


def is_lark(grammar: str) -> bool:
    """An llguidance grammar (GBNF otherwise), as llama.cpp tells them apart."""
    return grammar.lstrip().startswith("%llguidance")


def _lark_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lark string literal


def call_schema(tools: list[dict[str, Any]], choice: ToolChoice,
                arguments_key: str = "arguments") -> dict[str, Any]:
    """The JSON schema of one call: `name` one of the allowed tools (const for a named
    one) and its arguments following that tool's `parameters`."""
    options = []
    for tool in tools:
        function = tool.get("function") or {}
        name = function.get("name")
        if not isinstance(name, str) or (choice.mode == "function" and name != choice.name):
            continue
        parameters = function.get("parameters")
        parameters = closed_objects(parameters) if isinstance(parameters, dict) \
            else {"type": "object"}
        options.append({
            "type": "object",
            "properties": {"name": {"const": name}, arguments_key: parameters},
            "required": ["name", arguments_key],
            "additionalProperties": False,
        })
    return options[0] if len(options) == 1 else {"anyOf": options}


def tool_call_grammar(fmt: ToolCallFormat, tools: list[dict[str, Any]],
                      choice: ToolChoice, thought: Thought | None = None) -> Constrained:
    """A grammar that forces one call in the model's own format: its tag, the call
    object, its closing tag (after room for `thought`). 400 if a tool's parameters
    cannot be enforced."""
    bounds.check_schema({"anyOf": [(tool.get("function") or {}).get("parameters")
                                   for tool in tools]}, "tools")
    schema = call_schema(tools, choice, fmt.arguments_key)
    check_json_schema(schema, "tools")
    if fmt.prefix == "{":
        prefix, suffix = "", ""  # the call's own brace
    elif fmt.prefix == "[":
        prefix, suffix = "[", "]"
    elif fmt.suffix:
        prefix, suffix = fmt.prefix + "\n", "\n" + fmt.suffix
    else:
        prefix, suffix = fmt.prefix, ""
    answer = Constrained(schema, prefix, suffix, thought, what="tools")
    error = _compile_error(answer.lark())
    if error:
        raise BadRequestError(f"invalid tools: cannot constrain a tool call: {error}")
    return answer


@dataclass(frozen=True)
class Constrained:
    """An answer Pasture constrains itself: JSON following `schema` between `prefix` and
    `suffix`, after room for `thought`. Written for llguidance (`lark`) or, for an engine
    build without it, in llama.cpp's GBNF (`gbnf`, which may refuse a schema keyword)."""

    schema: dict[str, Any]
    prefix: str = ""
    suffix: str = ""
    thought: Thought | None = None
    what: str = "format"  # the request field a refusal names

    def lark(self) -> str:
        parts = [_lark_string(self.prefix)] if self.prefix else []
        parts.append("answer")
        parts += [_lark_string(self.suffix)] if self.suffix else []
        return _grammar(" ".join(parts), [f"answer: {_json(self.schema)}"], self.thought)

    def gbnf(self) -> str:
        json_part = gbnf.SchemaGrammar(self.schema, self.what)
        rules = dict(json_part.rules)
        # The JSON ends with the whitespace it allows, which covers a newline before the
        # closing tag: written again in the tag, the grammar would be ambiguous there.
        suffix = self.suffix.lstrip()
        answer = " ".join(filter(None, [gbnf.literal(self.prefix) if self.prefix else "",
                                        json_part.expression,
                                        gbnf.literal(suffix) if suffix else ""]))
        if self.thought is None:
            return gbnf.render(answer, rules)
        rules.update(gbnf.text_through(self.thought.closing, "p-thought"))
        rules["p-blank"] = "[ \\t\\r\\n]*"
        thought = "p-thought-0 p-blank"
        if not self.thought.opened:
            thought = f"({gbnf.literal(self.thought.opening)} {thought})?"
        return gbnf.render(f"{thought} {answer}", rules)
