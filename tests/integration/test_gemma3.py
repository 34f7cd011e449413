"""A second architecture: Gemma 3 270M (gemma3) through the public API.

Native mode renders with the GGUF's own Jinja template (Gemma 3's, see
scripts/fetch_models.py); rendered mode with Ollama's gemma3 Go template, which must
produce the very same prompt. Tool calls and structured outputs are constrained by
grammars built against Gemma's 262k-token vocabulary. Generations are kept few and
short: this model is the slowest one in the suite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import ollama
import pytest
from pydantic import BaseModel, Field

from tests.integration.conftest import RunningServer, create_variant

# Ollama's template for Gemma 3 (template/gemma3-instruct.gotmpl), as a Modelfile's
# TEMPLATE """…""" carries it: without the file's final newline.
GEMMA3_TEMPLATE = """\
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{- if and (eq $i 1) $.System }}
{{ $.System }}
{{ end }}
{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- if $last }}<start_of_turn>model
{{ end }}
{{- end }}"""
# The same turns, with tools offered in the last user turn and calls as bare JSON.
GEMMA3_TOOLS_TEMPLATE = """\
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{- if and (eq $i 1) $.System }}
{{ $.System }}
{{ end }}
{{- if and $last $.Tools }}
To call a function, reply with only {"name": <function name>, "arguments": <arguments>}.
{{- range $.Tools }}
{{ . }}
{{- end }}
{{ end }}
{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", \
"arguments": {{ .Function.Arguments }}}{{ end }}{{ else }}{{ .Content }}{{ end }}<end_of_turn>
{{ else if eq .Role "tool" }}<start_of_turn>user
{{ .ToolName }}: {{ .Content }}<end_of_turn>
{{ end }}
{{- if $last }}<start_of_turn>model
{{ end }}
{{- end }}"""
HISTORY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "What is 2+2?"},
]
GEMMA_TURNS = ("<start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n"
               "<start_of_turn>model\nHello.<end_of_turn>\n"
               "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
               "<start_of_turn>model\n")
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "maxLength": 16, "description": "City name"}}}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
SHORT = {"temperature": 0, "num_predict": 8}
CALL_ID = re.compile(r"call_[a-z0-9]{8}")


class Sum(BaseModel):
    # Bounded so that the answer always ends well within num_predict.
    total: int = Field(ge=0, le=99)
    unit: str = Field(pattern="^(apples|pears)$")


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def rendered(api: httpx.Client, gemma3: str) -> str:
    return create_variant(api, "gemma3-rendered", GEMMA3_TEMPLATE, gemma3)


@pytest.fixture(scope="module")
def with_tools(api: httpx.Client, gemma3: str) -> str:
    return create_variant(api, "gemma3-tools", GEMMA3_TOOLS_TEMPLATE, gemma3)


def rendered_prompt(api: httpx.Client, model: str, messages: list[dict[str, Any]]) -> str:
    reply = api.post("/api/chat", json={"model": model, "messages": messages, "stream": False,
                                        "_debug_render_only": True})
    assert reply.status_code == 200, reply.text
    return reply.json()["_debug_info"]["rendered_template"]


def test_native_mode_renders_gemma_turns_and_chats(api: httpx.Client, gemma3: str,
                                                   server: RunningServer) -> None:
    show = api.post("/api/show", json={"model": gemma3}).json()
    assert show["details"]["family"] == "gemma3"
    assert "<start_of_turn>" in show["template"]  # the GGUF's Jinja template
    # The engine applies it (BOS left to the tokenizer, as for any prompt).
    assert rendered_prompt(api, gemma3, [{"role": "user", "content": "Hi"}]) == (
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
    response = ollama.Client(host=server.url).chat(model=gemma3, messages=HISTORY,
                                                   options=SHORT)
    assert response.done and response.message.role == "assistant"
    assert isinstance(response.message.content, str)
    assert response.eval_count and 0 < response.eval_count <= SHORT["num_predict"]


def test_rendered_mode_go_template_gives_the_jinja_prompt_and_chats(
        api: httpx.Client, gemma3: str, rendered: str) -> None:
    assert rendered_prompt(api, gemma3, HISTORY) == GEMMA_TURNS
    assert rendered_prompt(api, rendered, HISTORY) == GEMMA_TURNS
    reply = api.post("/api/chat", json={"model": rendered, "messages": HISTORY,
                                        "stream": False, "options": SHORT})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["done"] is True and body["done_reason"] in ("stop", "length")
    assert 0 < body["eval_count"] <= SHORT["num_predict"]


def test_native_gemma3_has_no_tools_capability(api: httpx.Client, gemma3: str) -> None:
    # Gemma 3's own template never mentions tools, so, as in Ollama, asking is a 400.
    reply = api.post("/api/chat", json={"model": gemma3, "messages": ASK, "tools": [WEATHER]})
    assert reply.status_code == 400
    assert reply.json()["error"] == f'"{gemma3}" does not support tools'


@pytest.mark.parametrize("stream", [False, True])
def test_forced_tool_calls_come_back_in_ollamas_shape(api: httpx.Client, with_tools: str,
                                                      stream: bool) -> None:
    choice: Any = {"type": "function", "function": {"name": "get_weather"}} if stream \
        else "required"
    body = {"model": with_tools, "messages": ASK, "tools": [WEATHER], "tool_choice": choice,
            "stream": stream, "options": {"temperature": 0, "num_predict": 40}}
    with api.stream("POST", "/api/chat", json=body) as reply:
        assert reply.status_code == 200, reply.read()
        chunks = [json.loads(line) for line in reply.iter_lines() if line]
    assert chunks[-1]["done"] is True and chunks[-1]["done_reason"] == "stop"
    calls = [call for c in chunks for call in c["message"].get("tool_calls") or []]
    assert len(calls) == 1
    assert CALL_ID.fullmatch(calls[0]["id"])
    function = calls[0]["function"]
    assert function["name"] == "get_weather" and function["index"] == 0
    assert set(function["arguments"]) == {"city"}
    assert isinstance(function["arguments"]["city"], str)
    assert "".join(c["message"]["content"] for c in chunks) == ""
    if stream:  # the call arrives once, whole, before the final chunk
        assert [c["done"] for c in chunks if c["message"].get("tool_calls")] == [False]
    else:  # and the official client's types read it
        message = ollama.ChatResponse.model_validate(chunks[-1]).message
        assert message.tool_calls and message.tool_calls[0].function.name == "get_weather"


def test_structured_output_validates(gemma3: str, server: RunningServer) -> None:
    schema = Sum.model_json_schema()
    response = ollama.Client(host=server.url).chat(
        model=gemma3, format=schema, options={"temperature": 0, "num_predict": 40},
        messages=[{"role": "user", "content": "Two apples plus two apples? Answer as JSON."}])
    assert response.done_reason == "stop"
    jsonschema.validate(json.loads(response.message.content), schema)
    Sum.model_validate_json(response.message.content)
