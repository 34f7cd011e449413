"""The OpenAI and Anthropic routes against the fake engine: SSE framing (`data:` lines,
`[DONE]`, typed events), usage, aggregated answers, and OpenAI's sampling defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.routes.conftest import PLAIN_PARAMETERS, Serve, Server
from tests.routes.families import ASK, body

# The fake engine's template applied to one user message `ASK`: what usage counts.
PROMPT_TOKENS = len(f"<|user|>{ASK}\n<|assistant|>")
ANSWER = "Hello there!"


def choices_text(frames: list[tuple[str | None, Any]], key: str) -> str:
    return "".join(choice[key] if key == "text" else choice["delta"].get("content") or ""
                   for _, data in frames if isinstance(data, dict)
                   for choice in data.get("choices", []))


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_completions_stream_data_frames_ending_with_done(serve: Serve,
                                                              include_usage: bool) -> None:
    async def scenario(server: Server) -> None:
        reply, frames = await server.events(
            "/v1/chat/completions", **body("/v1/chat/completions", "plain", stream=True,
                                           stream_options={"include_usage": include_usage}))
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert all(name is None for name, _ in frames)  # data lines only
        assert frames[-1] == (None, "[DONE]")
        chunks = [data for _, data in frames[:-1]]
        assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
        assert len({chunk["id"] for chunk in chunks}) == 1
        opening = chunks[0]["choices"][0]["delta"]
        assert (opening["role"], opening["content"]) == ("assistant", "")
        assert choices_text(frames, "delta") == ANSWER
        with_usage = [chunk for chunk in chunks if chunk.get("usage")]
        if include_usage:
            (last,) = with_usage
            assert last is chunks[-1] and last["choices"] == []
            assert last["usage"]["prompt_tokens"] == PROMPT_TOKENS
            assert last["usage"]["completion_tokens"] == len(ANSWER)
            finish = chunks[-2]
        else:
            assert with_usage == []
            finish = chunks[-1]
        assert finish["choices"][0]["finish_reason"] == "stop"

    serve(scenario)


@pytest.mark.parametrize("include_usage", [False, True])
def test_completions_stream_text_frames_ending_with_done(serve: Serve,
                                                         include_usage: bool) -> None:
    async def scenario(server: Server) -> None:
        reply, frames = await server.events(
            "/v1/completions", **body("/v1/completions", "plain", stream=True,
                                      stream_options={"include_usage": include_usage}))
        assert reply.status_code == 200
        assert frames[-1] == (None, "[DONE]")
        assert choices_text(frames, "text") == ANSWER
        _, final = frames[-2]
        assert final["choices"][0]["finish_reason"] == "stop"
        assert (final.get("usage") is not None) == include_usage
        if include_usage:
            assert final["usage"]["completion_tokens"] == len(ANSWER)

    serve(scenario)


def test_responses_stream_typed_events_in_sequence(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply, frames = await server.events("/v1/responses",
                                            **body("/v1/responses", "plain", stream=True))
        assert reply.status_code == 200
        assert all(name == data["type"] for name, data in frames)
        assert [data["sequence_number"] for _, data in frames] == list(range(len(frames)))
        names = [name for name, _ in frames]
        assert names == [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.content_part.added", *["response.output_text.delta"] * 3,
            "response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"]
        assert "".join(data["delta"] for name, data in frames
                       if name == "response.output_text.delta") == ANSWER
        completed = frames[-1][1]["response"]
        assert completed["status"] == "completed"
        assert completed["output"][0]["content"][0]["text"] == ANSWER
        assert completed["usage"]["input_tokens"] == PROMPT_TOKENS
        assert completed["usage"]["output_tokens"] == len(ANSWER)

    serve(scenario)


def test_anthropic_stream_typed_events_from_message_start_to_message_stop(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply, frames = await server.events("/v1/messages",
                                            **body("/v1/messages", "plain", stream=True))
        assert reply.status_code == 200
        assert all(name == data["type"] for name, data in frames)
        assert [name for name, _ in frames] == [
            "message_start", "ping", "content_block_start", *["content_block_delta"] * 3,
            "content_block_stop", "message_delta", "message_stop"]
        assert "".join(data["delta"]["text"] for name, data in frames
                       if name == "content_block_delta") == ANSWER
        delta = frames[-2][1]
        assert delta["delta"]["stop_reason"] == "end_turn"
        assert delta["usage"]["output_tokens"] == len(ANSWER)

    serve(scenario)


def test_non_streaming_answers_in_each_compat_shape(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        chat = (await server.post("/v1/chat/completions",
                                  **body("/v1/chat/completions", "plain"))).json()
        assert chat["object"] == "chat.completion"
        assert chat["choices"][0]["message"]["content"] == ANSWER
        assert chat["choices"][0]["finish_reason"] == "stop"
        assert chat["usage"].pop("stats")["tokens_per_second"] > 0  # tests/routes/test_stats.py
        assert chat["usage"] == {"prompt_tokens": PROMPT_TOKENS,
                                 "completion_tokens": len(ANSWER),
                                 "total_tokens": PROMPT_TOKENS + len(ANSWER),
                                 "prompt_tokens_details": {"cached_tokens": 0}}
        legacy = (await server.post("/v1/completions", **body("/v1/completions", "plain")))
        assert legacy.json()["choices"][0]["text"] == ANSWER
        response = (await server.post("/v1/responses", **body("/v1/responses", "plain"))).json()
        assert response["status"] == "completed" and response["object"] == "response"
        (message,) = response["output"]
        assert message["type"] == "message" and message["content"][0]["text"] == ANSWER
        anthropic = (await server.post("/v1/messages", **body("/v1/messages", "plain"))).json()
        assert anthropic["type"] == "message" and anthropic["stop_reason"] == "end_turn"
        assert anthropic["content"] == [{"type": "text", "text": ANSWER}]
        assert anthropic["usage"]["input_tokens"] == PROMPT_TOKENS

    serve(scenario)


def test_openai_defaults_temperature_and_top_p_to_one_over_the_modelfile(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        await server.post("/v1/chat/completions", **body("/v1/chat/completions", "plain"))
        await server.post("/v1/chat/completions", **body(
            "/v1/chat/completions", "plain", temperature=0.2, max_tokens=5, seed=9))
        await server.post("/v1/messages", **body("/v1/messages", "plain"))
        defaults, given, anthropic = (request.options for request in server.runner.requests)
        assert (defaults["temperature"], defaults["top_p"]) == (1.0, 1.0)
        assert defaults["top_k"] == PLAIN_PARAMETERS["top_k"]  # the Modelfile's, still
        assert (given["temperature"], given["num_predict"], given["seed"]) == (0.2, 5, 9)
        assert anthropic["temperature"] == PLAIN_PARAMETERS["temperature"]
        assert anthropic["num_predict"] == 100  # max_tokens

    serve(scenario)


def test_openai_logprobs_reach_the_engine_and_come_back(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        chat = await server.post("/v1/chat/completions", **body(
            "/v1/chat/completions", "plain", logprobs=True, top_logprobs=3))
        content = chat.json()["choices"][0]["logprobs"]["content"]
        assert "".join(entry["token"] for entry in content) == ANSWER
        assert all(len(entry["top_logprobs"]) == 3 for entry in content)
        legacy = await server.post("/v1/completions", **body("/v1/completions", "plain",
                                                             logprobs=2))
        logprobs = legacy.json()["choices"][0]["logprobs"]
        assert "".join(logprobs["tokens"]) == ANSWER
        assert logprobs["text_offset"] == list(range(len(ANSWER)))
        assert [r.top_logprobs for r in server.runner.requests] == [3, 2]

    serve(scenario)


def test_the_engines_cached_prompt_tokens_reach_openai_and_anthropic_usage(
        serve: Serve) -> None:
    """The second of two identical requests reuses the whole prompt from the engine's
    cache: OpenAI reports it as `prompt_tokens_details.cached_tokens`, Anthropic as
    `cache_read_input_tokens` (whole and streamed)."""
    async def scenario(server: Server) -> None:
        ask = body("/v1/messages", "plain")
        first = (await server.post("/v1/messages", **ask)).json()["usage"]
        again = (await server.post("/v1/messages", **ask)).json()["usage"]
        _, frames = await server.events("/v1/messages", **{**ask, "stream": True})
        streamed = frames[-2][1]["usage"]
        cached = again["input_tokens"]  # the fake engine: the same prompt, all reused
        assert first["cache_read_input_tokens"] == 0  # a fresh runner has nothing cached
        assert again["cache_read_input_tokens"] == cached
        assert streamed["cache_read_input_tokens"] == cached
        ask = body("/v1/chat/completions", "plain")
        warm = (await server.post("/v1/chat/completions", **ask)).json()["usage"]
        assert warm["prompt_tokens_details"] == {"cached_tokens": PROMPT_TOKENS}

    serve(scenario)
