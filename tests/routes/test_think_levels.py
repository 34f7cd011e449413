"""`think: "max"`, Ollama's fourth level, wherever low, medium and high are taken: it
reaches a Go TEMPLATE as `.ThinkLevel` and the engine's Jinja template as
`reasoning_effort`, except on harmony models, whose `Reasoning:` line stops at high."""

from __future__ import annotations

import pytest

from tests.routes.conftest import Serve, Server

LEVEL_TEMPLATE = "level={{ .ThinkLevel }} think={{ .Think }}|{{ .Prompt }}"


async def rendered_level(server: Server, model: str, think: object) -> str:
    reply = await server.post("/api/generate", model=model, prompt="Hi", think=think,
                              template=LEVEL_TEMPLATE, stream=False, _debug_render_only=True)
    assert reply.status_code == 200, reply.text
    return reply.json()["_debug_info"]["rendered_template"]


@pytest.mark.parametrize("level", ["low", "medium", "high", "max"])
def test_each_level_reaches_a_go_template(serve: Serve, level: str) -> None:
    async def scenario(server: Server) -> None:
        assert await rendered_level(server, "qwen", level) == f"level={level} think=true|Hi"

    serve(scenario)


def test_max_reaches_the_engines_template_as_reasoning_effort(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="native", think="max", stream=False,
                                  messages=[{"role": "user", "content": "Hi"}])
        assert reply.status_code == 200, reply.text
        assert server.runner.templated[-1]["effort"] == "max"
        assert server.runner.templated[-1]["thinking"] is True

    serve(scenario)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"reasoning_effort": "max"}),
    ("/v1/chat/completions", {"reasoning_effort": "xhigh"}),
    ("/v1/responses", {"reasoning": {"effort": "max"}}),
    ("/v1/messages", {"max_tokens": 5, "output_config": {"effort": "max"}}),
])
def test_max_through_the_compatible_apis(serve: Serve, path: str, body: dict) -> None:
    async def scenario(server: Server) -> None:
        asked = {"input": "Hi"} if path == "/v1/responses" else \
            {"messages": [{"role": "user", "content": "Hi"}]}
        reply = await server.post(path, model="native", **asked, **body)
        assert reply.status_code == 200, reply.text
        assert server.runner.templated[-1]["effort"] == "max"

    serve(scenario)


def test_a_harmony_model_reads_max_as_high(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        created = await server.post("/api/create", model="qwen-harmony", stream=False,
                                    parser="harmony", **{"from": "qwen"})
        assert created.status_code == 200, created.text
        assert await rendered_level(server, "qwen-harmony", "max") == "level=high think=true|Hi"
        assert await rendered_level(server, "qwen-harmony", "low") == "level=low think=true|Hi"
        deleted = await server.client.request("DELETE", "/api/delete",
                                              json={"model": "qwen-harmony"})
        assert deleted.status_code == 200

    serve(scenario)


def test_an_unknown_level_is_refused(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="native", think="extreme",
                                  messages=[{"role": "user", "content": "Hi"}])
        assert reply.status_code == 400

    serve(scenario)
