"""`format` and forced tool calls on a thinking model: room to think first, then the
constrained answer (see `prompt.grammars`), on the real engine with SmolLM2.

SmolLM2 is not a thinking model; a few-shot history whose assistant turns carry
thoughts (rendered back by the template) makes it write one, deterministically at
temperature 0. Two templates: one where the model opens the thought itself, and one
that opens it in the prompt when `think` is on (as Qwen 3 and DeepSeek-R1 templates do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.integration.conftest import RunningServer, create_variant
from tests.integration.test_tool_calling import THINKING, WEATHER

# ChatML with tools, thoughts written as Qwen 3 writes them; when thinking is on, the
# prompt ends inside an opened thought.
OPENS_THOUGHT = """\
{{- if .Tools }}<|im_start|>system
Tools:
{{ range .Tools }}{{ . }}
{{ end }}Think, then call one as <tool_call>
{"name": <name>, "arguments": <args>}
</tool_call><|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Thinking }}<think>
{{ .Thinking }}
</think>

{{ end }}{{ if .ToolCalls }}{{ range .ToolCalls }}<tool_call>
{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
</tool_call>{{ end }}{{ else }}{{ .Content }}{{ end }}<|im_end|>
{{ else if eq .Role "tool" }}<|im_start|>user
<tool_response>{{ .Content }}</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ if $.Think }}<think>
{{ end }}{{ end }}
{{- end }}"""
SCHEMA = {"type": "object", "required": ["city", "sunny"], "properties": {
    "city": {"type": "string", "maxLength": 12}, "sunny": {"type": "boolean"}}}
FAST = {"temperature": 0, "num_predict": 80}


def shot(city: str, thought: str, sunny: bool) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"Is it sunny in {city}? Answer in JSON."},
            {"role": "assistant", "thinking": thought,
             "content": json.dumps({"city": city, "sunny": sunny})}]


ASK_JSON = [*shot("Paris", "Paris has clear skies today.", True),
            *shot("Oslo", "Oslo is cloudy and cold.", False),
            {"role": "user", "content": "Is it sunny in Rome? Answer in JSON."}]
ASK_CALL = [
    {"role": "user", "content": "What is the weather in Oslo?"},
    {"role": "assistant", "thinking": "I need the weather in Oslo.", "content": "",
     "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
    {"role": "tool", "tool_name": "get_weather", "content": "5 degrees, cloudy"},
    {"role": "assistant", "content": "It is 5 degrees and cloudy in Oslo."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def create(api: httpx.Client, name: str, template: str) -> str:
    create_variant(api, name, template)
    assert "thinking" in api.post("/api/show", json={"model": name}).json()["capabilities"]
    return name


@pytest.fixture(scope="module")
def thinks(api: httpx.Client) -> str:
    return create(api, "smollm2-thinks", THINKING)


@pytest.fixture(scope="module")
def opens(api: httpx.Client) -> str:
    return create(api, "smollm2-opens-thought", OPENS_THOUGHT)


def chat(api: httpx.Client, stream: bool, **body: Any) -> tuple[str, str, list[Any], list[Any]]:
    """Thinking, content and tool calls of an answer, and its chunks."""
    with api.stream("POST", "/api/chat",
                    json={"stream": stream, "options": FAST, **body}) as reply:
        assert reply.status_code == 200, reply.read()
        chunks = [json.loads(line) for line in reply.iter_lines() if line]
    assert chunks[-1]["done"] is True and chunks[-1]["done_reason"] == "stop"
    messages = [c["message"] for c in chunks]
    return ("".join(m.get("thinking") or "" for m in messages),
            "".join(m["content"] for m in messages),
            [call for m in messages for call in m.get("tool_calls") or []], chunks)


def test_a_format_follows_a_thought_the_model_chose_to_write(api: httpx.Client,
                                                             thinks: str) -> None:
    thinking, content, _, _ = chat(api, False, model=thinks, messages=ASK_JSON,
                                   format=SCHEMA, think=True)
    assert thinking.strip() and "<think>" not in thinking
    jsonschema.validate(json.loads(content), SCHEMA)


def test_a_format_follows_a_thought_the_prompt_opened(api: httpx.Client, opens: str) -> None:
    prompt = api.post("/api/chat", json={"model": opens, "messages": ASK_JSON, "think": True,
                                         "_debug_render_only": True, "stream": False})
    assert prompt.json()["_debug_info"]["rendered_template"].endswith("<think>\n")
    thinking, content, _, chunks = chat(api, True, model=opens, messages=ASK_JSON,
                                        format=SCHEMA, think=True)
    assert thinking.strip() and "</think>" not in thinking
    jsonschema.validate(json.loads(content), SCHEMA)
    # Streamed: the thought first, then the answer.
    kinds = [("thinking" if c["message"].get("thinking") else "content") for c in chunks
             if c["message"].get("thinking") or c["message"]["content"]]
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")


def test_without_thinking_the_format_alone_is_written(api: httpx.Client, opens: str) -> None:
    thinking, content, _, _ = chat(api, False, model=opens, messages=ASK_JSON,
                                   format=SCHEMA, think=False)
    assert thinking == ""
    jsonschema.validate(json.loads(content), SCHEMA)


def test_a_forced_tool_call_follows_the_thought(api: httpx.Client, opens: str) -> None:
    thinking, content, calls, chunks = chat(api, True, model=opens, messages=ASK_CALL,
                                            tools=[WEATHER], tool_choice="required")
    assert thinking.strip() and content == ""
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather"
    assert set(calls[0]["function"]["arguments"]) == {"city"}
    with_call = next(i for i, c in enumerate(chunks) if c["message"].get("tool_calls"))
    assert all(not c["message"].get("thinking") for c in chunks[with_call:])
