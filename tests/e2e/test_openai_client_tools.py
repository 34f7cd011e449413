"""The official `openai` SDK's function-calling and logprobs examples against Pasture.

SmolLM2 does not call tools unprompted, so `tool_choice` (which Pasture enforces with
a grammar) forces the call; the model has a Qwen 2.5-style Go template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import template_variant
from tests.integration.conftest import MODEL, RunningServer

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl"
              ).read_text()
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "required": ["location"], "properties": {
        "location": {"type": "string", "maxLength": 24},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}]
ASK = [{"role": "user", "content": "What's the weather like in Boston today?"}]



@pytest.fixture(scope="module")
def tools_model(server: RunningServer) -> Iterator[str]:
    with template_variant(server, "openai-qwen-tools", QWEN_TOOLS) as name:
        yield name


def test_forced_function_call_and_its_result(oai: openai.OpenAI, tools_model: str) -> None:
    reply = oai.chat.completions.create(
        model=tools_model, messages=ASK, tools=TOOLS, tool_choice="required",
        temperature=0, max_tokens=60)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["location"], str)
    follow_up = oai.chat.completions.create(
        model=tools_model, tools=TOOLS, max_tokens=8, messages=[
            *ASK, choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}])
    assert follow_up.choices[0].message.content is not None


def test_streamed_function_call_arrives_as_a_tool_calls_delta(oai: openai.OpenAI,
                                                              tools_model: str) -> None:
    stream = oai.chat.completions.create(
        model=tools_model, messages=ASK, tools=TOOLS, stream=True, temperature=0,
        max_tokens=60, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    chunks = list(stream)
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) == 1 and deltas[0].index == 0
    assert deltas[0].function.name == "get_weather"
    assert "location" in json.loads(deltas[0].function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_logprobs_come_back_per_token(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model=MODEL, messages=ASK, logprobs=True,
                                       top_logprobs=30)


def test_legacy_completion_logprobs_in_the_legacy_shape(oai: openai.OpenAI) -> None:
    reply = oai.completions.create(model=MODEL, prompt="The sky is", max_tokens=3,
                                      temperature=0, logprobs=2)
    choice = reply.choices[0]
    logprobs = choice.logprobs
    assert len(logprobs.tokens) == reply.usage.completion_tokens == 3
    assert "".join(logprobs.tokens) == choice.text
    assert logprobs.text_offset == [0, len(logprobs.tokens[0]),
                                    len(logprobs.tokens[0]) + len(logprobs.tokens[1])]
    for token, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs,
                                   logprobs.top_logprobs, strict=True):
        assert logprob <= 0 and 1 <= len(top) <= 2
        assert top[token] == pytest.approx(logprob)  # greedy: the likeliest token
    chunks = list(oai.completions.create(model=MODEL, prompt="The sky is", max_tokens=3,
                                            temperature=0, logprobs=0, stream=True))
    streamed = [c.choices[0].logprobs for c in chunks if c.choices[0].logprobs]
    assert [t for lp in streamed for t in lp.tokens] == logprobs.tokens
    assert [o for lp in streamed for o in lp.text_offset] == logprobs.text_offset
    assert all(top == {} for lp in streamed for top in lp.top_logprobs)
    plain = oai.completions.create(model=MODEL, prompt="The sky is", max_tokens=1)
    assert plain.choices[0].logprobs is None


RESPONSES_TOOLS = [{"type": "function", "name": f["function"]["name"],
                    "description": f["function"]["description"],
                    "parameters": f["function"]["parameters"]} for f in TOOLS]


def test_responses_forced_function_call_and_its_output(oai: openai.OpenAI,
                                                       tools_model: str) -> None:
    reply = oai.responses.create(model=tools_model, input=ASK, tools=RESPONSES_TOOLS,
                                    tool_choice="required", temperature=0,
                                    max_output_tokens=60)
    (call,) = reply.output
    assert call.type == "function_call" and call.status == "completed"
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    assert isinstance(json.loads(call.arguments)["location"], str)
    assert reply.tool_choice == "required"
    follow_up = oai.responses.create(
        model=tools_model, tools=RESPONSES_TOOLS, max_output_tokens=8, input=[
            *ASK, *reply.output,
            {"type": "function_call_output", "call_id": call.call_id,
             "output": '{"temperature": 21}'}])
    assert [item.type for item in follow_up.output] == ["message"]
    # The call and its output reached the prompt (the template renders both).
    assert follow_up.usage.input_tokens > reply.usage.input_tokens + 10


def test_responses_streamed_function_call_events(oai: openai.OpenAI,
                                                 tools_model: str) -> None:
    with oai.responses.stream(model=tools_model, input=ASK, tools=RESPONSES_TOOLS,
                                 temperature=0, max_output_tokens=60,
                                 tool_choice={"type": "function", "name": "get_weather"}
                                 ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    (call,) = final.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert events[3].delta == events[4].arguments == call.arguments
    assert events[2].item.id == call.id and events[2].item.arguments == ""
