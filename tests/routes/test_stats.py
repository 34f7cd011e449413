"""Per-request `stats` (beyond Ollama): tokens a second and time to the first token, in
the native final chunk and in OpenAI's `usage`, computed from the durations beside them.

The fake engine reports a 1 µs prompt and a 2 µs answer, so the rates are exact."""

from __future__ import annotations

from typing import Any

import pytest

from tests.routes.conftest import Serve, Server

HI = [{"role": "user", "content": "Hi"}]
ANSWER = "Hello there!"  # the fake engine's default reply, one token a character


def check_stats(stats: dict[str, Any], prompt_tokens: int, total_seconds: float) -> None:
    assert stats["tokens_per_second"] == len(ANSWER) / 2e-6
    assert stats["prompt_tokens_per_second"] == prompt_tokens / 1e-6
    assert 0 < stats["time_to_first_token_seconds"] <= total_seconds


@pytest.mark.parametrize("stream", [True, False])
def test_the_native_final_chunk_carries_stats(serve: Serve, stream: bool) -> None:
    async def scenario(server: Server) -> None:
        for path, extra in (("/api/chat", {"messages": HI}), ("/api/generate", {"prompt": "Hi"})):
            reply, lines = await server.lines(path, model="plain", stream=stream, **extra)
            assert reply.status_code == 200, reply.text
            final = lines[-1]
            assert final["done"] is True
            assert set(final["stats"]) == {"tokens_per_second", "prompt_tokens_per_second",
                                           "time_to_first_token_seconds"}
            check_stats(final["stats"], final["prompt_eval_count"],
                        final["total_duration"] / 1e9)
            assert all("stats" not in line for line in lines[:-1])

    serve(scenario)


def test_a_load_only_request_has_no_stats(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", stream=False)
        assert reply.json()["done_reason"] == "load"
        assert "stats" not in reply.json()

    serve(scenario)


def test_openai_usage_carries_stats(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        whole = await server.post("/v1/chat/completions", model="plain", messages=HI)
        usage = whole.json()["usage"]
        check_stats(usage["stats"], usage["prompt_tokens"], 60)
        _, frames = await server.events("/v1/chat/completions", model="plain", messages=HI,
                                        stream=True, stream_options={"include_usage": True})
        (streamed,) = [data["usage"] for _, data in frames
                       if isinstance(data, dict) and data.get("usage")]
        check_stats(streamed["stats"], streamed["prompt_tokens"], 60)
        completion = await server.post("/v1/completions", model="plain", prompt="Hi")
        check_stats(completion.json()["usage"]["stats"],
                    completion.json()["usage"]["prompt_tokens"], 60)
        response = await server.post("/v1/responses", model="plain", input="Hi")
        check_stats(response.json()["usage"]["stats"],
                    response.json()["usage"]["input_tokens"], 60)

    serve(scenario)
