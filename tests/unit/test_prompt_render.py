"""Ollama's rendering of Go TEMPLATEs: the template corpus, modes, capabilities, images.

The expected renderings in tests/unit/templates/*.json were produced by Go's own
text/template with Ollama's data model, then checked in; these tests hold us to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasture.errors import BadRequestError, TemplateError
from pasture.prompt.render import (
    Think,
    collate,
    parse_template,
    tag_images,
    thinking_tags,
)

CORPUS = Path(__file__).parent / "templates"
CASES = [(path.stem, case) for path in sorted(CORPUS.glob("*.json"))
         for case in json.loads(path.read_text())]


@pytest.mark.parametrize(("template_name", "case"), CASES,
                         ids=[f"{name}-{case['name']}" for name, case in CASES])
def test_corpus_template_renders_exactly_as_ollama(template_name: str, case: dict) -> None:
    template = parse_template((CORPUS / f"{template_name}.gotmpl").read_text())
    think = Think.of(case.get("think"))
    if case.get("suffix"):
        rendered = template.render_insert(case["prompt"], case["suffix"], think)
    else:
        rendered = template.render(case["messages"], case.get("tools"), think)
    assert rendered == case["expected"]


def test_corpus_covers_the_major_template_families() -> None:
    names = {path.stem for path in CORPUS.glob("*.gotmpl")}
    assert {"chatml", "llama3-tools", "mistral-tools", "gemma", "phi3", "command-r",
            "qwen2.5-tools", "deepseek-r1", "legacy-alpaca"} <= names
    assert all((CORPUS / f"{name}.json").exists() for name in names)


def test_template_without_messages_or_response_gets_response_appended() -> None:
    template = parse_template("{{ .System }} {{ .Prompt }}")
    history = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
               {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    # earlier turns print their response; the last turn ends where the response would go
    assert template.render(history) == "S Q1A1 Q2"


def test_legacy_last_turn_is_cut_at_response() -> None:
    template = parse_template("<s>{{ .Prompt }}</s>{{ .Response }}<end>")
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}]
    assert template.render(messages) == "<s>a</s>b<end><s>c</s>"


def test_collate_merges_same_role_but_not_tool_messages() -> None:
    system, merged = collate([
        {"role": "system", "content": "one"}, {"role": "system", "content": "two"},
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
        {"role": "tool", "content": "x"}, {"role": "tool", "content": "y"},
    ])
    assert system == "one\n\ntwo"
    assert [(m["role"], m["content"]) for m in merged] == [
        ("system", "one\n\ntwo"), ("user", "a\n\nb"), ("tool", "x"), ("tool", "y")]


def test_messages_data_model_fields() -> None:
    template = parse_template(
        "{{ range .Messages }}{{ .Role }}|{{ .ToolName }}|{{ .ToolCallID }}|{{ .Thinking }}|"
        "{{ range .ToolCalls }}{{ .ID }}:{{ .Function.Index }}:{{ .Function.Name }}:"
        "{{ .Function.Arguments }}{{ end }};{{ end }}{{ .Response }}|{{ .Think }}"
        "|{{ .ThinkLevel }}|{{ .IsThinkSet }}")
    messages = [
        {"role": "assistant", "content": "", "thinking": "hmm",
         "tool_calls": [{"id": "call_1", "function": {"index": 2, "name": "f",
                                                      "arguments": {"b": 1, "a": "<x>"}}}]},
        {"role": "tool", "content": "ok", "tool_name": "f", "tool_call_id": "call_1"},
    ]
    assert template.render(messages, None, Think.of("high")) == (
        'assistant|||hmm|call_1:2:f:{"a":"\\u003cx\\u003e","b":1};tool|f|call_1||;|true|high|true')


def test_tools_print_as_json_and_expose_fields() -> None:
    template = parse_template(
        "{{ range .Messages }}{{ end }}{{ range .Tools }}{{ .Type }} {{ .Function.Name }}: "
        "{{ range $k, $p := .Function.Parameters.Properties }}{{ $k }}={{ $p.Type }}"
        "/{{ toTypeScriptType $p }} {{ end }}{{ end }}|{{ .Tools }}")
    tools = [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {
            "z": {"type": "integer"}, "a": {"type": ["string", "null"]}}}}}]
    assert template.render([{"role": "user", "content": "x"}], tools) == (
        "function f: a=[string null]/string | null z=integer/number |"
        '[{"type":"function","function":{"name":"f","description":"","parameters":'
        '{"type":"object","properties":{"a":{"type":["string","null"]},'
        '"z":{"type":"integer"}}}}}]')


def test_no_tools_prints_null_and_is_false() -> None:
    template = parse_template("{{ range .Messages }}{{ end }}{{ if .Tools }}T{{ end }}{{ .Tools }}")
    assert template.render([{"role": "user", "content": "x"}], None) == "null"
    assert template.render([{"role": "user", "content": "x"}], []) == "[]"


def test_malformed_tool_definition_is_a_bad_request() -> None:
    template = parse_template("{{ range .Messages }}{{ end }}{{ .Tools }}")
    with pytest.raises(BadRequestError, match="invalid tool definition"):
        template.render([], [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"x": "not an object"}}}}])


def test_insert_mode_and_capabilities() -> None:
    template = parse_template((CORPUS / "codellama-insert.gotmpl").read_text())
    assert template.capabilities() == ["insert"]
    assert parse_template((CORPUS / "qwen2.5-tools.gotmpl").read_text()).capabilities() == [
        "tools"]
    assert parse_template((CORPUS / "chatml.gotmpl").read_text()).capabilities() == []


def test_thinking_tags_are_inferred_from_the_messages_range() -> None:
    source = ("{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}"
              "{{ .Content }}{{ end }}")
    template = parse_template(source)
    assert thinking_tags(template.template) == ("<think>", "</think>")
    assert "thinking" in template.capabilities()
    # .Thinking outside a range over .Messages does not count
    assert thinking_tags(parse_template("<think>{{ .Thinking }}</think>").template) == ("", "")


def test_parse_error_is_a_400_with_position() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template("{{ range .Messages }}\n{{ .Content }")
    assert caught.value.status == 400
    assert caught.value.message.startswith("template: :2:")


def test_a_template_with_a_lone_surrogate_is_measured_and_parsed() -> None:
    """JSON's `"\\ud800"` decodes to a lone surrogate, which strict UTF-8 cannot encode."""
    template = parse_template("\ud800{{ range .Messages }}{{ .Content }}{{ end }}")
    assert template.render([{"role": "user", "content": "hi"}], None, Think()) == "\ud800hi"


def test_images_are_tagged_in_order() -> None:
    tagged, count = tag_images([
        {"role": "user", "content": "look", "images": ["AA", "BB"]},
        {"role": "user", "content": "and [img] here", "images": ["CC"]},
    ])
    assert count == 3
    assert [m["content"] for m in tagged] == ["[img-0][img-1]look", "and [img-2] here"]
