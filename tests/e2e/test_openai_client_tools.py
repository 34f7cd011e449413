"""The official `openai` SDK's function-calling and logprobs examples against Pasture.

SmolLM2 does not call tools unprompted, so `tool_choice` (which Pasture enforces with
a grammar) forces the call; the model has a Qwen 2.5-style Go template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import MODEL, RunningServer

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl"
              ).read_text()
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "required": ["location"], "properties": {
        "location": {"type": "string", "maxLength": 24},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}]
ASK = [{"role": "user", "content": "What's the weather like in Boston today?"}]


@pytest.fixture
def client(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def tools_model(server: RunningServer) -> str:
    reply = httpx.post(f"{server.url}/api/create", timeout=120, json={
        "model": "openai-qwen-tools", "from": MODEL, "template": QWEN_TOOLS, "stream": False})
    assert reply.status_code == 200, reply.text
    return "openai-qwen-tools"


def test_forced_function_call_and_its_result(client: openai.OpenAI, tools_model: str) -> None:
    reply = client.chat.completions.create(
        model=tools_model, messages=ASK, tools=TOOLS, tool_choice="required",
        temperature=0, max_tokens=60)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["location"], str)
    follow_up = client.chat.completions.create(
        model=tools_model, tools=TOOLS, max_tokens=8, messages=[
            *ASK, choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}])
    assert follow_up.choices[0].message.content is not None


def test_streamed_function_call_arrives_as_a_tool_calls_delta(client: openai.OpenAI,
                                                              tools_model: str) -> None:
    stream = client.chat.completions.create(
        model=tools_model, messages=ASK, tools=TOOLS, stream=True, temperature=0,
        max_tokens=60, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    chunks = list(stream)
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) == 1 and deltas[0].index == 0
    assert deltas[0].function.name == "get_weather"
    assert "location" in json.loads(deltas[0].function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_logprobs_come_back_per_token(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=ASK, logprobs=True,
                                       top_logprobs=30)
