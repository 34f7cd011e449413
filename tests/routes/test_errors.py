"""Errors in each API family's shape: before the first chunk an ordinary HTTP error that
keeps its status, streaming or not; after it, in-band, in the stream's own framing."""

from __future__ import annotations

import json

import pytest

from pasture.errors import RunnerError
from pasture.runner.base import CRASH_MESSAGE, CompletionRequest, RunnerCrashed
from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server, sse_frames
from tests.routes.families import ANTHROPIC, OLLAMA, ROUTES, body, error_message

HI = [{"role": "user", "content": "Hi"}]
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



def test_a_runner_lost_before_any_output_is_started_again_where_the_server_retries(
        serve: Serve) -> None:
    """A cluster tries a turn once more (`retries_before_output`) when its runner is lost
    before the first token: the turn runs again, on a fresh runner."""
    asked: list[CompletionRequest] = []

    def reply(request: CompletionRequest) -> list[str]:
        asked.append(request)
        if len(asked) == 1:
            raise RunnerCrashed()
        return ["Hello", " there"]

    async def scenario(server: Server) -> None:
        server.app.state.pasture.retries_before_output = 1
        reply = await server.post("/api/chat", model="plain", messages=HI, stream=False)
        assert reply.status_code == 200, reply.text
        assert reply.json()["message"]["content"] == "Hello there"
        assert len(asked) == 2 and len(server.engine.started) == 2
        assert server.engine.started[0].closed  # the lost runner was not used again

    serve(scenario, Script(reply=reply))


def test_embeddings_are_retried_on_a_fresh_runner_where_the_server_retries(
        serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        server.app.state.pasture.retries_before_output = 1
        reply = await server.post("/api/embed", model="plain", input=["a", "bc"])
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["embeddings"]) == 2
        assert len(server.engine.started) == 2 and server.engine.started[0].closed

    serve(scenario, Script(embed_failures=1))


def test_embeddings_are_not_retried_on_one_machine(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/embed", model="plain", input=["a"])
        assert reply.status_code == 500, reply.text
        assert len(server.engine.started) == 1

    serve(scenario, Script(embed_failures=1))


def test_a_runner_lost_after_output_is_not_started_again(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        server.app.state.pasture.retries_before_output = 1
        reply, lines = await server.lines("/api/chat", model="plain", messages=HI)
        assert reply.status_code == 200
        assert lines[0]["message"]["content"] == "Hello"
        assert lines[-1] == {"error": CRASH_MESSAGE}
        assert len(server.runner.requests) == 1 and len(server.engine.started) == 1

    serve(scenario, Script(fail_after=1))
