"""What a Go TEMPLATE sees of a request, as Ollama gives it: roles lower-cased whichever
API family sent them, tool-call arguments as Go's float64 prints them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server
from tests.routes.test_tools_and_thinking import prompt_text

SHOUTED = [{"role": "System", "content": "Be brief."},
           {"role": "USER", "content": "Hi"},
           {"role": "Assistant", "content": "Hello!"},
           {"role": "uSeR", "content": "Weather?"}]
# QWEN_TEMPLATE: `.System` collects system messages, and `eq .Role "assistant"` picks
# the assistant branch; a role left as sent would be printed as `<|im_start|>Assistant`.
LOWERED = ("<|im_start|>system\nBe brief.<|im_end|>\n"
           "<|im_start|>system\nBe brief.<|im_end|>\n"
           "<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n"
           "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n")


def test_native_chat_roles_reach_the_template_lower_cased(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="qwen", messages=SHOUTED, stream=False,
                                  _debug_render_only=True)
        assert reply.status_code == 200, reply.text
        assert reply.json()["_debug_info"]["rendered_template"] == LOWERED

    serve(scenario)


@pytest.mark.parametrize(("path", "extra"), [
    ("/v1/chat/completions", {"messages": SHOUTED}),
    ("/v1/responses", {"input": [{"role": m["role"], "content": m["content"]}
                                 for m in SHOUTED]}),
])
def test_openai_roles_reach_the_template_lower_cased(serve: Serve, path: str,
                                                     extra: dict[str, Any]) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, model="qwen", **extra)
        assert reply.status_code == 200, reply.text
        (request,) = server.runner.requests
        assert prompt_text(request) == LOWERED

    serve(scenario)


BIG = 12345678901234567890
CALLED = [{"role": "user", "content": "Add"},
          {"role": "assistant", "content": "", "tool_calls": [{"function": {
              "name": "add", "arguments": {"n": BIG, "m": 3, "x": 1e21, "y": 0.1}}}]},
          {"role": "tool", "content": "ok"}]


def test_tool_call_arguments_reach_the_template_as_go_float64s(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="qwen", messages=CALLED, stream=False,
                                  _debug_render_only=True)
        assert reply.status_code == 200, reply.text
        # Go's json.Marshal of the float64 map, as Go's own text/template printed it
        assert '{"name": "add", "arguments": {"m":3,"n":12345678901234567000,"x":1e+21,' \
               '"y":0.1}}' in reply.json()["_debug_info"]["rendered_template"]

    serve(scenario)


def test_a_number_no_float64_holds_is_refused_as_go_refuses_it(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        huge = [CALLED[0], {**CALLED[1], "tool_calls": [{"function": {
            "name": "add", "arguments": {"n": 10 ** 400}}}]}]
        reply = await server.post("/api/chat", model="qwen", messages=huge, stream=False,
                                  _debug_render_only=True)
        assert reply.status_code == 400
        assert "cannot unmarshal number" in reply.json()["error"]

    serve(scenario)


def test_the_reply_keeps_the_number_the_model_wrote(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        tools = [{"type": "function", "function": {"name": "add", "parameters": {
            "type": "object", "properties": {"n": {"type": "integer"}}}}}]
        reply = await server.post("/api/chat", model="qwen", messages=CALLED[:1], tools=tools,
                                  stream=False)
        (call,) = reply.json()["message"]["tool_calls"]
        assert call["function"]["arguments"] == {"n": BIG}

    serve(scenario, Script(reply=['<tool_call>\n{"name": "add", "arguments": {"n": ',
                                  f"{BIG}}}}}\n</tool_call>"]))


@pytest.mark.parametrize(("template", "message"), [
    ('{{ template "x" }}', "undefined template specified"),  # Ollama's Vars()
    ("{{ 99999999999999999999 }}", "integer overflow"),  # Go's parser
    ("{{ 1e400 }}", "illegal number syntax"),
])
def test_create_refuses_a_template_go_refuses_to_parse(serve: Serve, template: str,
                                                       message: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/create", model="refused", stream=False,
                                  template=template, **{"from": "plain"})
        assert reply.status_code == 400, reply.text
        assert message in reply.json()["error"]

    serve(scenario)


@pytest.mark.parametrize(("template", "message"), [
    ("{{ .Prompt }}{{ 12345678901234567890 }}", "overflows int"),  # Go's executor
    ("{{ .Prompt }}{{ if .System }}{{ .Response }}{{ else }}E{{ end }}", "Ollama panics"),
    ("{{ .Prompt }}{{ json .Prompt }}", '"json" is not a defined function'),  # last turn
])
def test_generate_refuses_a_template_ollama_cannot_render(serve: Serve, template: str,
                                                         message: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="qwen", prompt="Hi", stream=False,
                                  template=template)
        assert reply.status_code == 400, reply.text
        assert message in reply.json()["error"]

    serve(scenario)
