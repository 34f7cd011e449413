"""A client that leaves cancels its engine call and frees the runner; a full queue is 503.

httpx's ASGITransport never tells the app the client left, so the disconnect tests call
the ASGI app themselves, as uvicorn does (ASGI spec 2.3: the app learns of a disconnect
by receiving `http.disconnect`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server, asgi_post, until
from tests.routes.families import ROUTES, body, error_message

QUEUE_FULL = "server busy, please try again.  maximum pending requests exceeded"


async def leave(server: Server, path: str, request: dict[str, Any],
                when: Callable[[list[bytes]], Awaitable[None]]) -> tuple[int, list[bytes]]:
    """POST `request` to the app as uvicorn would, the client disconnecting once `when`
    (given the body chunks sent so far) returns; the status and the body chunks sent."""
    sent: list[bytes] = []
    return await asgi_post(server, path, request, sent, when), sent


def after_first_chunk(sent: list[bytes]) -> Awaitable[None]:
    return until(lambda: bool(sent))


@pytest.mark.parametrize("path", ROUTES)
def test_a_client_leaving_mid_stream_cancels_the_engine_call_and_frees_the_runner(
        serve: Serve, path: str) -> None:
    # The engine sends one chunk, then is slow: only the client's leaving ends the call.
    script = Script(gate=asyncio.Event(), gate_at=1)

    async def scenario(server: Server) -> None:
        status, sent = await leave(server, path, body(path, "plain", stream=True),
                                   after_first_chunk)
        assert status == 200 and sent
        runner = server.runner
        assert (runner.cancelled, runner.finished) == (1, 0)
        assert await server.loaded() == ["plain:latest"]
        script.gate.set()
        reply = await server.post(path, **body(path, "plain", stream=False))
        assert reply.status_code == 200, reply.text
        assert server.engine.started == [runner] and runner.finished == 1

    serve(scenario, script)


@pytest.mark.parametrize("path", ROUTES)
def test_a_client_leaving_a_non_streaming_request_cancels_the_engine_call(
        serve: Serve, path: str) -> None:
    script = Script(gate=asyncio.Event())  # holds every generation before its first chunk

    async def scenario(server: Server) -> None:
        async def engine_busy(_: list[bytes]) -> None:
            await server.engine_busy()

        status, _ = await leave(server, path, body(path, "plain", stream=False), engine_busy)
        assert status == 499
        runner = server.runner
        assert (runner.cancelled, runner.finished) == (1, 0)
        assert await server.loaded() == ["plain:latest"]
        script.gate.set()
        reply = await server.post(path, **body(path, "plain", stream=False))
        assert reply.status_code == 200, reply.text

    serve(scenario, script)


def test_a_full_queue_is_503_and_a_client_leaving_the_queue_is_dropped(serve: Serve) -> None:
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> None:
        scheduler = server.app.state.pasture.scheduler
        holder = asyncio.create_task(server.post("/api/generate", model="plain", prompt="Hi"))
        await server.engine_busy()
        # At the one-model limit, `native` waits for `plain` to finish: it is queued...
        go = asyncio.Event()
        queued = asyncio.create_task(leave(server, "/api/generate",
                                           {"model": "native", "prompt": "Hi"},
                                           lambda _: go.wait()))
        await until(lambda: scheduler.waiting == 1)
        # ...and fills the queue of one: the next requests are refused, in each shape.
        for path in ROUTES:
            busy = await server.post(path, **body(path, "native", stream=True))
            assert busy.status_code == 503
            assert error_message(path, 503, busy.json()) == QUEUE_FULL
        # The queued client leaves: it is dropped, and its model is never loaded.
        go.set()
        status, _ = await queued
        assert status == 499 and scheduler.waiting == 0
        script.gate.set()
        assert (await holder).status_code == 200
        await asyncio.sleep(0.05)
        assert len(server.engine.started) == 1 and await server.loaded() == ["plain:latest"]
        other = await server.post("/api/generate", model="native", prompt="Hi", stream=False)
        assert other.status_code == 200
        assert await server.loaded() == ["native:latest"]

    serve(scenario, script, MAX_LOADED_MODELS="1", MAX_QUEUE="1")


def test_a_client_leaving_mid_stream_wakes_a_request_queued_behind_it(serve: Serve) -> None:
    script = Script(gate=asyncio.Event(), gate_at=1)  # only leaving ends plain's answer

    async def scenario(server: Server) -> None:
        scheduler = server.app.state.pasture.scheduler
        go = asyncio.Event()
        holder = asyncio.create_task(leave(server, "/api/chat", body("/api/chat", "plain"),
                                           lambda _: go.wait()))
        await server.engine_busy()
        # At the one-model limit, `native` waits for `plain`'s runner to be free.
        queued = asyncio.create_task(server.post("/api/generate", model="native", prompt="Hi",
                                                 stream=False))
        await until(lambda: scheduler.waiting == 1)
        go.set()
        status, _ = await holder
        assert status == 200 and server.runner.cancelled == 1
        script.gate.set()  # native's generation, once it runs, goes straight through
        reply = await asyncio.wait_for(queued, 5)
        assert reply.status_code == 200, reply.text
        assert await server.loaded() == ["native:latest"]

    serve(scenario, script, MAX_LOADED_MODELS="1")
