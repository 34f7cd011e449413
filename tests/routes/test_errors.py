"""Errors in each API family's shape: before the first chunk an ordinary HTTP error that
keeps its status, streaming or not; after it, in-band, in the stream's own framing."""

from __future__ import annotations

import json

import pytest

from pasture.errors import RunnerError
from pasture.runner.base import CRASH_MESSAGE
from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server, sse_frames
from tests.routes.families import ANTHROPIC, OLLAMA, ROUTES, body, error_message

STREAMING = [pytest.param(stream, id="stream" if stream else "whole") for stream in (True,
                                                                                        False)]


@pytest.mark.parametrize("stream", STREAMING)
@pytest.mark.parametrize("path", ROUTES)
def test_an_unknown_model_is_404_in_the_familys_shape(serve: Serve, path: str,
                                                       stream: bool) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "nope", stream=stream))
        assert reply.status_code == 404
        assert reply.headers["content-type"] == "application/json"
        assert error_message(path, 404, reply.json()) == \
            "model 'nope' not found"
        assert server.engine.started == []

    serve(scenario)


@pytest.mark.parametrize("stream", STREAMING)
@pytest.mark.parametrize("path", ROUTES)
def test_a_bad_option_is_400_in_the_familys_shape(serve: Serve, path: str, stream: bool) -> None:
    bad = {"temperature": "hot"} if path in ANTHROPIC else {"options": {"num_ctx": "big"}}

    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "plain", stream=stream, **bad))
        assert reply.status_code == 400
        message = error_message(path, 400, reply.json())
        assert ("temperature" if path in ANTHROPIC else "num_ctx") in message
        assert server.engine.started == []

    serve(scenario)


@pytest.mark.parametrize("stream", STREAMING)
@pytest.mark.parametrize("path", ROUTES)
def test_a_failed_load_keeps_its_status_in_the_familys_shape(serve: Serve, path: str,
                                                             stream: bool) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "plain", stream=stream))
        assert reply.status_code == 500
        assert error_message(path, 500, reply.json()) == "unable to load model: no memory"
        assert await server.loaded() == []

    serve(scenario, fail_load=RunnerError("unable to load model: no memory"))


@pytest.mark.parametrize("path", OLLAMA)
def test_a_failure_mid_stream_ends_ndjson_with_an_error_line(serve: Serve, path: str) -> None:
    async def scenario(server: Server) -> None:
        reply, lines = await server.lines(path, **body(path, "plain"))
        assert reply.status_code == 200
        first, last = lines
        assert first["done"] is False
        assert last == {"error": CRASH_MESSAGE}

    serve(scenario, Script(fail_after=1))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_a_failure_mid_stream_ends_openai_sse_with_an_error_event_and_no_done(
        serve: Serve, path: str) -> None:
    async def scenario(server: Server) -> None:
        reply, frames = await server.events(path, **body(path, "plain", stream=True))
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        name, last = frames[-1]
        assert name is None and error_message(path, 500, last) == CRASH_MESSAGE
        assert "[DONE]" not in [data for _, data in frames]
        assert any("choices" in data for _, data in frames[:-1])  # text came first

    serve(scenario, Script(fail_after=1))


def test_a_failure_mid_stream_ends_responses_sse_with_an_error_event(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply, frames = await server.events("/v1/responses",
                                            **body("/v1/responses", "plain", stream=True))
        assert reply.status_code == 200
        names = [name for name, _ in frames]
        assert "response.output_text.delta" in names
        assert "response.completed" not in names
        _, last = frames[-1]
        assert error_message("/v1/responses", 500, last) == CRASH_MESSAGE

    serve(scenario, Script(fail_after=1))


def test_a_failure_mid_stream_ends_anthropic_sse_with_an_error_event(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/v1/messages", **body("/v1/messages", "plain", stream=True))
        assert reply.status_code == 200
        assert reply.text.endswith(
            "event: error\ndata: " + json.dumps({"type": "error", "error": {
                "type": "api_error", "message": CRASH_MESSAGE}}, separators=(",", ":")) + "\n\n")
        names = [name for name, _ in sse_frames(reply.text)]
        assert "content_block_delta" in names and "message_stop" not in names

    serve(scenario, Script(fail_after=1))


@pytest.mark.parametrize("path", ROUTES)
def test_a_failure_before_the_first_chunk_is_an_http_error_even_when_streaming(
        serve: Serve, path: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, **body(path, "plain", stream=True))
        assert reply.status_code == 500
        assert error_message(path, 500, reply.json()) == CRASH_MESSAGE
        runner = server.runner
        assert runner.cancelled == 0 and runner.finished == 0
        assert await server.loaded() == []  # a crashed runner is not reused

    serve(scenario, Script(fail_after=0))


@pytest.mark.parametrize("value", [10**18, 2**31])
def test_a_num_predict_past_the_engines_int_is_400_naming_the_range(serve: Serve,
                                                                   value: int) -> None:
    """llama.cpp reads n_predict as a 32-bit int: a larger value must not wrap into it."""
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", prompt="hi", stream=False,
                                  options={"num_predict": value})
        assert reply.status_code == 400
        assert reply.json() == {
            "error": 'option "num_predict" must be between -2 and 2147483647'}
        assert server.engine.started == []

    serve(scenario)
