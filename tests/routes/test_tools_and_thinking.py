"""Tools and thinking through every family, against the fake engine: `tool_choice`
reaching the engine as a grammar (or hiding the tools), tool calls and thoughts parsed
out of the engine's text and answered in each family's shape."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pasture.runner.base import CompletionRequest
from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server
from tests.routes.families import CHAT_ROUTES, body

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string"}}}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}
CALL = Script(reply=["<tool_call>\n", '{"name": "get_weather", ', '"arguments": {"city": ',
                     '"Paris"}}\n', "</tool_call>"])
THOUGHT = Script(reply=["<think>", "Rain is", " likely.", "</think>", "Take ", "an umbrella."])
CALL_ID = re.compile(r"call_[a-z0-9]{8}")


def tools_for(path: str, *tools: dict[str, Any]) -> list[dict[str, Any]]:
    """`tools` in the family's spelling."""
    if path == "/v1/messages":
        return [{"name": t["function"]["name"], "description": t["function"]["description"],
                 "input_schema": t["function"]["parameters"]} for t in tools]
    if path == "/v1/responses":
        return [{"type": "function", **t["function"]} for t in tools]
    return list(tools)


def choice_for(path: str, choice: str) -> Any:
    """`required`, `none` or a function name as the family spells a tool_choice."""
    if path == "/v1/messages":
        return {"type": {"required": "any", "none": "none"}.get(choice, "tool"),
                **({"name": choice} if choice not in ("required", "none") else {})}
    if choice in ("required", "none"):
        return choice
    if path == "/v1/responses":
        return {"type": "function", "name": choice}
    return {"type": "function", "function": {"name": choice}}


def prompt_text(request: CompletionRequest) -> str:
    prompt = request.prompt
    return prompt if isinstance(prompt, str) else "".join(map(chr, prompt))


@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_a_required_tool_choice_reaches_the_engine_as_a_lark_grammar(serve: Serve,
                                                                      path: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "qwen", tools=tools_for(path, WEATHER, ADD),
                                               tool_choice=choice_for(path, "required")))
        assert reply.status_code == 200, reply.text
        (request,) = server.runner.requests
        assert request.grammar is not None and request.grammar.startswith("%llguidance")
        assert "<tool_call>" in request.grammar
        assert request.json_schema is None

    serve(scenario, CALL)


@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_a_named_tool_choice_constrains_to_that_function_in_gbnf_without_llguidance(
        serve: Serve, path: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "qwen", tools=tools_for(path, WEATHER, ADD),
                                               tool_choice=choice_for(path, "get_weather")))
        assert reply.status_code == 200, reply.text
        (request,) = server.runner.requests
        assert request.grammar is not None and request.grammar.startswith("root ::=")
        assert "get_weather" in request.grammar and '\\"add\\"' not in request.grammar

    serve(scenario, CALL, llguidance=False)


@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_tool_choice_none_hides_the_tools_from_a_rendered_prompt(serve: Serve,
                                                                 path: str) -> None:
    async def scenario(server: Server) -> None:
        offered = await server.post(path, **body(path, "qwen", tools=tools_for(path, WEATHER)))
        hidden = await server.post(path, **body(path, "qwen", tools=tools_for(path, WEATHER),
                                                tool_choice=choice_for(path, "none")))
        assert offered.status_code == hidden.status_code == 200, hidden.text
        with_tools, without = (prompt_text(r) for r in server.runner.requests)
        assert "get_weather" in with_tools and "<|im_start|>tools" in with_tools
        assert "get_weather" not in without and "<|im_start|>tools" not in without
        assert all(r.grammar is None for r in server.runner.requests)

    serve(scenario)


@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_tool_choice_none_hides_the_tools_from_the_engines_template(serve: Serve,
                                                                    path: str) -> None:
    async def scenario(server: Server) -> None:
        await server.post(path, **body(path, "native", tools=tools_for(path, WEATHER)))
        await server.post(path, **body(path, "native", tools=tools_for(path, WEATHER),
                                       tool_choice=choice_for(path, "none")))
        offered, hidden = server.runner.templated
        assert [t["function"]["name"] for t in offered["tools"]] == ["get_weather"]
        assert hidden["tools"] is None

    serve(scenario)


def test_a_tool_call_in_ollamas_shape(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", **body("/api/chat", "qwen", stream=False,
                                                      tools=[WEATHER]))
        message = reply.json()["message"]
        assert message["content"] == ""
        (call,) = message["tool_calls"]
        assert CALL_ID.fullmatch(call["id"])
        assert call["function"] == {"name": "get_weather", "arguments": {"city": "Paris"},
                                    "index": 0}
        _, lines = await server.lines("/api/chat", **body("/api/chat", "qwen", tools=[WEATHER]))
        streamed = [call for line in lines for call in line.get("message", {}).get(
            "tool_calls") or []]
        assert [c["function"]["arguments"] for c in streamed] == [{"city": "Paris"}]

    serve(scenario, CALL)


def test_a_native_mode_tool_call_is_parsed_from_the_gguf_templates_format(
        serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", **body("/api/chat", "native", stream=False,
                                                      tools=[WEATHER]))
        (call,) = reply.json()["message"]["tool_calls"]
        assert call["function"]["arguments"] == {"city": "Paris"}
        assert "<tool_call>" in server.runner.requests[0].preserved_tokens

    serve(scenario, CALL)


def test_a_tool_call_in_openais_shape(serve: Serve) -> None:
    path = "/v1/chat/completions"

    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "qwen", tools=[WEATHER]))
        (choice,) = reply.json()["choices"]
        assert choice["finish_reason"] == "tool_calls"
        (call,) = choice["message"]["tool_calls"]
        assert call["type"] == "function" and CALL_ID.fullmatch(call["id"])
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        _, frames = await server.events(path, **body(path, "qwen", tools=[WEATHER],
                                                     stream=True))
        deltas = [choice for _, data in frames[:-1] for choice in data["choices"]]
        (streamed,) = [call for d in deltas for call in d["delta"].get("tool_calls") or []]
        assert streamed["index"] == 0 and json.loads(streamed["function"]["arguments"]) == \
            {"city": "Paris"}
        assert deltas[-1]["finish_reason"] == "tool_calls"

    serve(scenario, CALL)


def test_a_tool_call_in_anthropics_shape(serve: Serve) -> None:
    path = "/v1/messages"

    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "qwen", tools=tools_for(path, WEATHER)))
        message = reply.json()
        assert message["stop_reason"] == "tool_use"
        (block,) = message["content"]
        assert (block["type"], block["name"], block["input"]) == \
            ("tool_use", "get_weather", {"city": "Paris"})
        _, frames = await server.events(path, **body(path, "qwen", stream=True,
                                                     tools=tools_for(path, WEATHER)))
        starts = [data["content_block"] for name, data in frames
                  if name == "content_block_start"]
        assert [s["type"] for s in starts] == ["tool_use"]
        (partial,) = [data["delta"]["partial_json"] for name, data in frames
                      if name == "content_block_delta"]
        assert json.loads(partial) == {"city": "Paris"}
        assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"

    serve(scenario, CALL)


def test_a_tool_call_as_a_responses_function_call_item(serve: Serve) -> None:
    path = "/v1/responses"

    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "qwen", tools=tools_for(path, WEATHER)))
        (item,) = reply.json()["output"]
        assert (item["type"], item["name"]) == ("function_call", "get_weather")
        assert json.loads(item["arguments"]) == {"city": "Paris"}
        assert CALL_ID.fullmatch(item["call_id"])
        _, frames = await server.events(path, **body(path, "qwen", stream=True,
                                                     tools=tools_for(path, WEATHER)))
        (done,) = [data["arguments"] for name, data in frames
                   if name == "response.function_call_arguments.done"]
        assert json.loads(done) == {"city": "Paris"}
        completed = frames[-1][1]["response"]
        assert [i["type"] for i in completed["output"]] == ["function_call"]

    serve(scenario, CALL)


def test_a_thought_comes_back_as_ollamas_thinking(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        _, lines = await server.lines("/api/chat", **body("/api/chat", "qwen"))
        thinking = "".join(line["message"].get("thinking", "") for line in lines)
        content = "".join(line["message"]["content"] for line in lines)
        assert (thinking, content) == ("Rain is likely.", "Take an umbrella.")
        generated = await server.post("/api/generate", **body("/api/generate", "qwen",
                                                              stream=False))
        assert generated.json()["thinking"] == "Rain is likely."
        assert generated.json()["response"] == "Take an umbrella."

    serve(scenario, THOUGHT)


def test_think_false_drops_the_thought(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", **body("/api/chat", "qwen", stream=False,
                                                      think=False))
        message = reply.json()["message"]
        assert "thinking" not in message and message["content"] == "Take an umbrella."

    serve(scenario, THOUGHT)


def test_a_thought_comes_back_as_openais_reasoning(serve: Serve) -> None:
    path = "/v1/chat/completions"

    async def scenario(server: Server) -> None:
        message = (await server.post(path, **body(path, "qwen"))).json()["choices"][0]["message"]
        assert (message["reasoning"], message["content"]) == ("Rain is likely.",
                                                              "Take an umbrella.")
        _, frames = await server.events(path, **body(path, "qwen", stream=True))
        deltas = [c["delta"] for _, data in frames[:-1] for c in data["choices"]]
        assert "".join(d.get("reasoning") or "" for d in deltas) == "Rain is likely."
        assert "".join(d.get("content") or "" for d in deltas) == "Take an umbrella."

    serve(scenario, THOUGHT)


def test_a_thought_comes_back_as_an_anthropic_thinking_block(serve: Serve) -> None:
    path = "/v1/messages"

    async def scenario(server: Server) -> None:
        content = (await server.post(path, **body(path, "qwen"))).json()["content"]
        assert [(b["type"], b.get("thinking") or b.get("text")) for b in content] == [
            ("thinking", "Rain is likely."), ("text", "Take an umbrella.")]
        _, frames = await server.events(path, **body(path, "qwen", stream=True))
        starts = [data["content_block"]["type"] for name, data in frames
                  if name == "content_block_start"]
        assert starts == ["thinking", "text"]
        kinds = {data["delta"]["type"] for name, data in frames if name == "content_block_delta"}
        assert kinds == {"thinking_delta", "text_delta"}

    serve(scenario, THOUGHT)


def test_a_thought_comes_back_as_a_responses_reasoning_item(serve: Serve) -> None:
    path = "/v1/responses"

    async def scenario(server: Server) -> None:
        output = (await server.post(path, **body(path, "qwen"))).json()["output"]
        reasoning, message = output
        assert reasoning["type"] == "reasoning"
        assert reasoning["summary"] == [{"type": "summary_text", "text": "Rain is likely."}]
        assert message["content"][0]["text"] == "Take an umbrella."
        _, frames = await server.events(path, **body(path, "qwen", stream=True))
        names = [name for name, _ in frames]
        assert "response.reasoning_summary_text.delta" in names
        assert names.index("response.reasoning_summary_text.done") < \
            names.index("response.output_text.delta")

    serve(scenario, THOUGHT)


def test_anthropic_thinking_is_dropped_not_refused_for_a_model_that_cannot_think(
        serve: Serve) -> None:
    path = "/v1/messages"

    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "plain",
                                               thinking={"type": "enabled",
                                                         "budget_tokens": 1024}))
        assert reply.status_code == 200, reply.text
        openai = await server.post("/v1/chat/completions", **body(
            "/v1/chat/completions", "plain", reasoning_effort="high"))
        assert openai.status_code == 400
        assert openai.json()["error"]["message"] == '"plain" does not support thinking'

    serve(scenario)


@pytest.mark.parametrize(("choice", "message"), [
    ("sometimes", "invalid tool_choice"),
    ({"type": "function", "function": {"name": "nope"}}, "not in tools")])
def test_a_bad_tool_choice_is_400_before_anything_loads(serve: Serve, choice: Any,
                                                        message: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", **body("/api/chat", "qwen", tools=[WEATHER],
                                                      tool_choice=choice))
        assert reply.status_code == 400 and message in reply.json()["error"]
        assert server.engine.started == []

    serve(scenario)


# The token budget runs out inside the closing tag of a complete, forced call.
CUT_IN_CLOSING_TAG = Script(reply=["<tool_call>\n", '{"name": "get_weather", ',
                                   '"arguments": {"city": "Paris"}}', "\n</tool_"],
                            done_reason="length")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/v1/responses"])
def test_a_closing_tag_cut_off_by_the_budget_is_never_content(serve: Serve, path: str,
                                                              stream: bool) -> None:
    async def scenario(server: Server) -> None:
        request = body(path, "qwen", stream=stream, tools=tools_for(path, WEATHER),
                       tool_choice=choice_for(path, "required"))
        if path == "/api/chat":
            if stream:
                _, lines = await server.lines(path, **request)
            else:
                lines = [(await server.post(path, **request)).json()]
            content = "".join(line["message"].get("content", "") for line in lines)
            calls = [c for line in lines for c in line["message"].get("tool_calls") or []]
            names = [call["function"]["name"] for call in calls]
        elif path == "/v1/chat/completions":
            if stream:
                _, frames = await server.events(path, **request)
                messages = [c["delta"] for _, data in frames[:-1] for c in data["choices"]]
            else:
                messages = [c["message"] for c in (await server.post(path, **request)).json()[
                    "choices"]]
            content = "".join(m.get("content") or "" for m in messages)
            names = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []]
        else:
            if stream:
                _, frames = await server.events(path, **request)
                output = frames[-1][1]["response"]["output"]
                assert not [data for name, data in frames if name.endswith(".delta")
                            and "output_text" in name]
            else:
                output = (await server.post(path, **request)).json()["output"]
            assert [item["type"] for item in output] == ["function_call"], output
            content, names = "", [item["name"] for item in output]
        assert content == ""
        assert names == ["get_weather"]

    serve(scenario, CUT_IN_CLOSING_TAG)
