"""A `parser: harmony` model (as gpt-oss is) on the real engine with SmolLM2.

SmolLM2 does not speak harmony, so a GBNF `grammar` makes it write harmony's channel
tokens as text; the server must answer with Ollama's `thinking`, `content` and
`tool_calls` rather than the raw channels, streamed and not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pasture.client import Client
from tests.integration.conftest import MODEL, RunningServer

TEMPLATE = ("{{- range .Messages }}<|start|>{{ .Role }}<|message|>{{ .Content }}<|end|>"
            "{{ end }}<|start|>assistant")
THOUGHT = '"<|channel|>analysis<|message|>" [a-z ]{3,12} "<|end|><|start|>assistant<|channel|>'
ANSWER = 'root ::= ' + THOUGHT + 'final<|message|>" [A-Za-z ]{3,12} "<|return|>"'
CALL = ('root ::= ' + THOUGHT + 'commentary to=functions.get_weather <|constrain|>json'
        '<|message|>{\\"city\\":\\"" [A-Za-z]{2,8} "\\"}<|call|>"')
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string"}}}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
FAST = {"temperature": 0, "num_predict": 160}
CALL_ID = re.compile(r"call_[a-z0-9]{8}")


@pytest.fixture(scope="module")
def harmony(api: httpx.Client) -> str:
    reply = api.post("/api/create", json={"model": "smollm2-harmony", "from": MODEL,
                                          "template": TEMPLATE, "parser": "harmony",
                                          "stream": False})
    assert reply.status_code == 200, reply.text
    return "smollm2-harmony"


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def chat(api: httpx.Client, **body: Any) -> dict[str, Any]:
    reply = api.post("/api/chat", json={"stream": False, "options": FAST, **body})
    assert reply.status_code == 200, reply.text
    return reply.json()["message"]


def stream_chat(api: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    with api.stream("POST", "/api/chat", json={"options": FAST, **body}) as reply:
        assert reply.status_code == 200, reply.read()
        return [json.loads(line)["message"] for line in reply.iter_lines() if line]


def assert_plain(*texts: str) -> None:
    for text in texts:
        assert text.strip() and "<|" not in text and "|>" not in text


def test_show_names_the_parser_and_its_capabilities(api: httpx.Client, harmony: str) -> None:
    shown = api.post("/api/show", json={"model": harmony}).json()
    assert {"completion", "thinking", "tools"} <= set(shown["capabilities"])
    assert shown["parser"] == "harmony"
    assert "\nPARSER harmony\n" in shown["modelfile"]
    assert "parser" not in api.post("/api/show", json={"model": MODEL}).json()
    # the shown Modelfile recreates the model, parser included (the Python client's PARSER)
    Client(str(api.base_url)).create_from_modelfile("smollm2-harmony-copy", shown["modelfile"])
    copy = api.post("/api/show", json={"model": "smollm2-harmony-copy"}).json()
    assert copy["parser"] == "harmony" and "thinking" in copy["capabilities"]
    assert api.request("DELETE", "/api/delete",
                       json={"model": "smollm2-harmony-copy"}).status_code == 200


def test_channels_become_thinking_and_content(api: httpx.Client, harmony: str) -> None:
    message = chat(api, model=harmony, messages=ASK, grammar=ANSWER)
    assert message["role"] == "assistant" and "tool_calls" not in message
    assert_plain(message["thinking"], message["content"])
    chunks = stream_chat(api, model=harmony, messages=ASK, grammar=ANSWER)
    thinking = "".join(c.get("thinking", "") for c in chunks)
    content = "".join(c["content"] for c in chunks)
    assert (thinking, content) == (message["thinking"], message["content"])
    assert sum(bool(c.get("thinking")) for c in chunks) > 1  # streamed as it came
    hidden = chat(api, model=harmony, messages=ASK, grammar=ANSWER, think=False)
    assert "thinking" not in hidden and hidden["content"] == message["content"]


def test_commentary_to_a_function_is_a_tool_call(api: httpx.Client, harmony: str) -> None:
    message = chat(api, model=harmony, messages=ASK, tools=[WEATHER], grammar=CALL)
    assert message["content"] == ""
    assert_plain(message["thinking"])
    [call] = message["tool_calls"]
    assert CALL_ID.fullmatch(call["id"])
    assert call["function"]["name"] == "get_weather" and call["function"]["index"] == 0
    assert set(call["function"]["arguments"]) == {"city"}
    assert call["function"]["arguments"]["city"].isalpha()
    chunks = stream_chat(api, model=harmony, messages=ASK, tools=[WEATHER], grammar=CALL)
    calls = [c for chunk in chunks for c in chunk.get("tool_calls", [])]
    assert [c["function"] for c in calls] == [call["function"]]
    assert "".join(c["content"] for c in chunks) == ""


def test_openai_chat_reads_harmony_too(api: httpx.Client, harmony: str) -> None:
    reply = api.post("/v1/chat/completions", json={
        "model": harmony, "messages": ASK, "tools": [WEATHER], "grammar": CALL,
        "temperature": 0, "max_tokens": FAST["num_predict"]})
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and not choice["message"]["content"]
    assert_plain(choice["message"]["reasoning"])
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert set(json.loads(call["function"]["arguments"])) == {"city"}
    forced = api.post("/v1/chat/completions", json={
        "model": harmony, "messages": ASK, "tools": [WEATHER], "tool_choice": "required"})
    assert forced.status_code == 400 and "harmony" in forced.json()["error"]["message"]
