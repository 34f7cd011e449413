"""Tool calls: the format a template teaches, parsing calls out of streamed output,
`tool_choice`, and the grammars that force a call."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pasture.errors import BadRequestError
from pasture.prompt import grammars
from pasture.prompt.render import parse_template
from pasture.prompt.tools import (
    ToolCallFormat,
    ToolCallParser,
    ToolChoice,
    go_template_format,
    jinja_template_format,
    json_object_end,
)
from pasture.runner.llama_server import template_messages as native_messages

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}},
]
QWEN = (
    "{{- range .Messages }}{{ if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{ if .Content }}{{ .Content }}{{- else if .ToolCalls }}<tool_call>\n"
    "{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n{{ end }}</tool_call>{{ end }}<|im_end|>\n{{ end }}{{ end }}"
    "{{ if .Tools }}{{ range .Tools }}{{ . }}{{ end }}{{ end }}"
)
MISTRAL = (
    "{{- range .Messages }}{{- if eq .Role \"assistant\" }}{{- if .Content }}{{ .Content }}"
    "{{- else if .ToolCalls }}[TOOL_CALLS] [{{ range .ToolCalls }}{\"name\": \""
    "{{ .Function.Name }}\", \"arguments\": {{ .Function.Arguments }}}{{ end }}]"
    "{{- end }}</s>{{ end }}{{ end }}{{ .Tools }}"
)
LLAMA31 = (
    "{{- range .Messages }}{{- if and (eq .Role \"assistant\") .ToolCalls }}"
    "{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"parameters\": "
    "{{ .Function.Arguments }}}{{ end }}{{ end }}{{ end }}{{ .Tools }}"
)


def run(parser: ToolCallParser, text: str, step: int = 1) -> tuple[str, list[dict[str, Any]]]:
    """Feed `text` in chunks of `step` characters; all content and calls."""
    content, calls = [], []
    for i in range(0, len(text), step):
        more, found = parser.feed(text[i:i + step])
        content.append(more)
        calls.extend(found)
    more, found = parser.finish()
    return "".join(content) + more, calls + found


def named(calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], int]]:
    return [(c["function"]["name"], c["function"]["arguments"], c["function"]["index"])
            for c in calls]


@pytest.mark.parametrize(("source", "expected"), [
    (QWEN, ToolCallFormat("<tool_call>", "</tool_call>")),
    (MISTRAL, ToolCallFormat("[TOOL_CALLS]")),
    (LLAMA31, ToolCallFormat("{", "", "parameters")),
    ("{{ .Prompt }}", ToolCallFormat()),
])
def test_go_template_teaches_its_tool_call_format(source: str, expected: ToolCallFormat) -> None:
    assert go_template_format(parse_template(source).template) == expected


def test_jinja_template_format_is_the_first_known_tag_it_mentions() -> None:
    qwen = "{% if tools %}<tool_call>{\"name\": …}</tool_call>{% endif %}"
    assert jinja_template_format(qwen) == ToolCallFormat("<tool_call>", "</tool_call>")
    assert jinja_template_format("{{ messages }}") == ToolCallFormat()


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_calls_after_the_tag_are_parsed_at_every_chunk_split(step: int) -> None:
    text = ('Let me check. <tool_call>\n{"name": "get_weather", "arguments": '
            '{"city": "Pa}r\\"is"}}\n</tool_call>\n<tool_call>\n'
            '{"function": {"name": "add", "parameters": "{\\"a\\": 1}"}}\n</tool_call>')
    parser = ToolCallParser(ToolCallFormat("<tool_call>", "</tool_call>"), TOOLS)
    content, calls = run(parser, text, step)
    assert content == "Let me check. "
    assert named(calls) == [("get_weather", {"city": 'Pa}r"is'}, 0), ("add", {"a": 1}, 1)]
    assert all(re.fullmatch(r"call_[a-z0-9]{8}", c["id"]) for c in calls)


def test_each_call_is_emitted_as_soon_as_it_is_complete() -> None:
    parser = ToolCallParser(ToolCallFormat("[TOOL_CALLS]"), TOOLS)
    assert parser.feed('[TOOL_CALLS] [{"name": "add", "arguments": {"a": 1}}')[1]
    content, calls = parser.feed(', {"name": "add", "arguments": {"b"')
    assert (content, calls) == ("", [])
    assert named(parser.feed(": 2}}]")[1]) == [("add", {"b": 2}, 1)]
    assert parser.finish() == ("", [])


def test_output_that_is_not_a_call_is_given_back_as_content() -> None:
    fmt = ToolCallFormat("<tool_call>", "</tool_call>")
    text = 'I know <tool_call> is a tag: {"name": "unknown_tool", "arguments": {}}'
    assert run(ToolCallParser(fmt, TOOLS), text) == (text, [])
    unknown = '<tool_call>{"name": "unknown_tool", "arguments": {}}</tool_call>'
    assert run(ToolCallParser(fmt, TOOLS), unknown) == (unknown, [])
    cut_short = 'ok <tool_call>{"name": "add", "argu'
    assert run(ToolCallParser(fmt, TOOLS), cut_short) == (cut_short, [])


def test_bare_json_counts_as_a_call_only_at_the_start() -> None:
    call = '{"name": "add", "parameters": {"a": 2}}'
    assert named(run(ToolCallParser(ToolCallFormat(), TOOLS), "  " + call)[1]) == [
        ("add", {"a": 2}, 0)]
    text = "Here: " + call
    assert run(ToolCallParser(ToolCallFormat(), TOOLS), text) == (text, [])


def test_brace_matching_ignores_braces_in_strings() -> None:
    assert json_object_end('{"a": "}{\\"}"} tail') == len('{"a": "}{\\"}"}')
    assert json_object_end('{"a": {"b": 1}') == -1


def test_tool_choice_forms_and_their_errors() -> None:
    assert ToolChoice.of(None, TOOLS) == ToolChoice("auto")
    assert ToolChoice.of("none", TOOLS).mode == "none"
    assert ToolChoice.of("required", TOOLS).forced
    named_choice = ToolChoice.of({"type": "function", "function": {"name": "add"}}, TOOLS)
    assert named_choice == ToolChoice("function", "add")
    for bad in ("sometimes", {"type": "function", "function": {"name": "missing"}}, 3,
                {"type": "function"}):
        with pytest.raises(BadRequestError):
            ToolChoice.of(bad, TOOLS)
    with pytest.raises(BadRequestError, match="needs tools"):
        ToolChoice.of("required", None)


def test_forced_call_grammar_compiles_and_names_only_the_chosen_tool() -> None:
    fmt = ToolCallFormat("<tool_call>", "</tool_call>")
    named = grammars.tool_call_grammar(fmt, TOOLS, ToolChoice("function", "add"))
    lark, gbnf = named.lark(), named.gbnf()
    assert lark.startswith("%llguidance {}\nstart: \"<tool_call>\\n\" answer")
    assert '"const":"add"' in lark and "get_weather" not in lark
    assert gbnf.startswith('root ::= "<tool_call>\\n" j-root "</tool_call>"')
    assert '"\\"add\\""' in gbnf and "get_weather" not in gbnf
    either = grammars.tool_call_grammar(ToolCallFormat(), TOOLS, ToolChoice("required"))
    lark, gbnf = either.lark(), either.gbnf()
    assert "start: answer" in lark and "get_weather" in lark and '"add"' in lark
    assert gbnf.startswith("root ::= (") and "get_weather" in gbnf and "add" in gbnf


def test_tool_parameters_the_engine_cannot_enforce_are_a_400() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"not": {"type": "string"}}}}}}]
    with pytest.raises(BadRequestError, match="invalid tools: unsupported JSON schema.*not"):
        grammars.tool_call_grammar(ToolCallFormat(), tools, ToolChoice("required"))


def test_native_messages_take_the_engines_tool_call_shape() -> None:
    messages = [
        {"role": "assistant", "content": "", "thinking": "hmm", "tool_calls": [
            {"id": "call_1", "function": {"index": 0, "name": "add", "arguments": {"a": 1}}}]},
        {"role": "tool", "content": "3", "tool_name": "add", "tool_call_id": "call_1"},
    ]
    assert native_messages(messages) == [
        {"role": "assistant", "content": "", "reasoning_content": "hmm", "tool_calls": [
            {"type": "function", "id": "call_1",
             "function": {"name": "add", "arguments": '{"a": 1}'}}]},
        {"role": "tool", "content": "3", "name": "add", "tool_call_id": "call_1"},
    ]
