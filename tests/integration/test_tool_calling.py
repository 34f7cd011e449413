"""Tool calls, tool_choice, thinking and logprobs on the real engine with SmolLM2.

SmolLM2-135M does not call tools unprompted, so calls are forced with `tool_choice`
(a grammar in the model's own tool-call format): that proves the constraint, the
parser and Ollama's answer shape at once. Rendered mode uses a Qwen 2.5-style Go
TEMPLATE; native mode uses a copy of the same GGUF whose Jinja chat template teaches
`<tool_call>` and `<think>`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import MODEL, RunningServer, create_variant, import_model

TEMPLATES = Path(__file__).parents[1] / "unit" / "templates"
QWEN_TOOLS = (TEMPLATES / "qwen2.5-tools.gotmpl").read_text()
THINKING = (
    "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
    "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{ if .Thinking }}<think>{{ .Thinking }}</think>\n{{ end }}{{ .Content }}<|im_end|>\n"
    "{{ end }}{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n{{ end }}"
    "{{- end }}"
)
NATIVE_JINJA = (
    "{%- if tools %}<|im_start|>system\nTools:\n{% for tool in tools %}{{ tool | tojson }}\n"
    "{% endfor %}Call one as <tool_call>\n{\"name\": <name>, \"arguments\": <args>}\n"
    "</tool_call><|im_end|>\n{% endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n"
    "{% for tc in message.tool_calls %}<tool_call>\n{\"name\": \"{{ tc.function.name }}\", "
    "\"arguments\": {{ tc.function.arguments | tojson }}}\n</tool_call>{% endfor %}"
    "<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>{{ message.content }}"
    "</tool_response><|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{% if message.reasoning_content %}<think>"
    "{{ message.reasoning_content }}</think>{% endif %}{{ message.content }}<|im_end|>\n"
    "{%- endif %}{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "maxLength": 20, "description": "City name"}}}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers",
    "parameters": {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "integer", "minimum": 0, "maximum": 99},
        "b": {"type": "integer", "minimum": 0, "maximum": 99}}}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
FAST = {"temperature": 0, "num_predict": 60}
CALL_ID = re.compile(r"call_[a-z0-9]{8}")


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def qwen(api: httpx.Client) -> str:
    return create_variant(api, "smollm2-qwen-tools", QWEN_TOOLS)


@pytest.fixture(scope="module")
def native(server: RunningServer, smollm2_gguf: Path,
           tmp_path_factory: pytest.TempPathFactory) -> str:
    """SmolLM2 with a Jinja chat template that teaches `<tool_call>` (native mode)."""
    path = tmp_path_factory.mktemp("native") / "smollm2-jinja-tools.gguf"
    subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(smollm2_gguf),
                    str(path), "--chat-template", NATIVE_JINJA, "--force"],
                   check=True, capture_output=True)
    import_model(server.url, path, "smollm2-native-tools")
    return "smollm2-native-tools"


def chat(api: httpx.Client, **body: Any) -> dict[str, Any]:
    reply = api.post("/api/chat", json={"stream": False, "options": FAST, **body})
    assert reply.status_code == 200, reply.text
    return reply.json()


def stream_chat(api: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    with api.stream("POST", "/api/chat", json={"options": FAST, **body}) as reply:
        assert reply.status_code == 200, reply.read()
        return [json.loads(line) for line in reply.iter_lines() if line]


def assert_weather_call(call: dict[str, Any], index: int = 0) -> None:
    assert CALL_ID.fullmatch(call["id"])
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["index"] == index
    assert isinstance(call["function"]["arguments"]["city"], str)
    assert set(call["function"]["arguments"]) == {"city"}


def test_required_tool_choice_forces_a_call_in_ollamas_shape(api: httpx.Client,
                                                             qwen: str) -> None:
    body = chat(api, model=qwen, messages=ASK, tools=[WEATHER], tool_choice="required")
    message = body["message"]
    assert message["role"] == "assistant" and message["content"] == ""
    assert len(message["tool_calls"]) == 1
    assert_weather_call(message["tool_calls"][0])
    assert body["done"] is True and body["done_reason"] == "stop"


def test_a_named_tool_choice_streams_the_call_once_complete(api: httpx.Client,
                                                            qwen: str) -> None:
    chunks = stream_chat(api, model=qwen, messages=ASK, tools=[ADD, WEATHER],
                         tool_choice={"type": "function", "function": {"name": "get_weather"}})
    with_calls = [c for c in chunks if c["message"].get("tool_calls")]
    assert len(with_calls) == 1 and with_calls[0]["done"] is False
    assert_weather_call(with_calls[0]["message"]["tool_calls"][0])
    assert "".join(c["message"]["content"] for c in chunks) == ""
    assert chunks[-1]["done"] is True


def test_tool_choice_none_hides_the_tools_and_answers_in_text(api: httpx.Client,
                                                              qwen: str) -> None:
    # That the prompt hides the tools is tests/routes (test_tool_choice_none_hides_*).
    body = chat(api, model=qwen, messages=ASK, tools=[WEATHER], tool_choice="none",
                options={"temperature": 0, "num_predict": 8})
    assert body["message"]["content"].strip() and "tool_calls" not in body["message"]


def test_tool_results_in_history_reach_both_template_kinds(api: httpx.Client, qwen: str,
                                                           native: str) -> None:
    history = ASK + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_abc12345", "function": {"name": "get_weather",
                                                  "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "18 degrees, sunny", "tool_name": "get_weather",
         "tool_call_id": "call_abc12345"},
    ]
    for model in (qwen, native):
        rendered = chat(api, model=model, messages=history, tools=[WEATHER],
                        _debug_render_only=True)["_debug_info"]["rendered_template"]
        assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' \
            in rendered.replace('{"city":"Paris"}', '{"city": "Paris"}'), model
        assert "18 degrees, sunny" in rendered and "get_weather" in rendered, model


def test_native_mode_forced_call_is_parsed_from_the_jinja_format(api: httpx.Client,
                                                                 native: str) -> None:
    show = api.post("/api/show", json={"model": native}).json()
    assert "tools" in show["capabilities"]
    chunks = stream_chat(api, model=native, messages=ASK, tools=[WEATHER], think=False,
                         tool_choice="required")
    calls = [call for c in chunks for call in c["message"].get("tool_calls", [])]
    assert len(calls) == 1
    assert_weather_call(calls[0])


def test_thinking_is_split_from_the_answer(api: httpx.Client) -> None:
    name = create_variant(api, "smollm2-thinking", THINKING)
    assert "thinking" in api.post("/api/show", json={"model": name}).json()["capabilities"]
    # The grammar makes the 135M model write a thought, deterministically.
    grammar = 'root ::= "<think>" [a-z ]{3,30} "</think>" "\\n" [A-Za-z ]{3,30}'
    chunks = stream_chat(api, model=name, messages=ASK, grammar=grammar)
    thinking = "".join(c["message"].get("thinking", "") for c in chunks)
    content = "".join(c["message"]["content"] for c in chunks)
    assert thinking.strip() and thinking == thinking.strip()
    assert content.strip() and "<think>" not in content and "</think>" not in content
    hidden = chat(api, model=name, messages=ASK, grammar=grammar, think=False)["message"]
    assert "thinking" not in hidden and "<think>" not in hidden["content"]
    assert hidden["content"].strip()
    prior = chat(api, model=name, _debug_render_only=True, messages=ASK + [
        {"role": "assistant", "content": "Sunny.", "thinking": "I guess."},
        {"role": "user", "content": "Sure?"}])["_debug_info"]["rendered_template"]
    assert "<think>I guess.</think>\nSunny." in prior


def test_logprobs_on_generate_and_chat(api: httpx.Client) -> None:
    reply = api.post("/api/generate", json={
        "model": MODEL, "prompt": "Hi", "stream": False, "logprobs": True, "top_logprobs": 3,
        "options": {"temperature": 0, "num_predict": 3}})
    assert reply.status_code == 200, reply.text
    logprobs = reply.json()["logprobs"]
    assert len(logprobs) == reply.json()["eval_count"]
    for entry in logprobs:
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode(errors="replace")
        assert len(entry["top_logprobs"]) == 3
        assert entry["top_logprobs"][0]["logprob"] >= entry["top_logprobs"][-1]["logprob"]
    assert "".join(e["token"] for e in logprobs) == reply.json()["response"]
    chunks = stream_chat(api, model=MODEL, messages=ASK, logprobs=True,
                         options={"temperature": 0, "num_predict": 2})
    streamed = [e for c in chunks for e in c.get("logprobs") or []]
    assert len(streamed) == 2 and all(e["top_logprobs"] == [] for e in streamed)
    bad = api.post("/api/chat", json={"model": MODEL, "messages": ASK, "logprobs": True,
                                      "top_logprobs": 21})
    assert bad.status_code == 400 and "top_logprobs" in bad.json()["error"]
