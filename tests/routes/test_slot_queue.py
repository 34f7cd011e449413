"""The queue in front of a loaded model's slots: with every slot busy a request waits,
first come first served; `/api/ps` shows how many run and wait; `PASTURE_MAX_QUEUE`
bounds the waiting (503 with Retry-After, at once, in each family's shape), a client that
leaves while waiting spends no slot, and `PASTURE_QUEUE_TIMEOUT` ends a wait with a 503.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server, asgi_post, until
from tests.routes.families import ROUTES, body, error_message
from tests.routes.test_disconnect_and_queue import QUEUE_FULL, leave


async def ps(server: Server) -> dict[str, Any]:
    (model,) = (await server.client.get("/api/ps")).json()["models"]
    return model


def test_requests_beyond_the_slots_wait_their_turn_in_arrival_order(serve: Serve) -> None:
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> None:
        asks = [asyncio.create_task(server.post("/api/generate", model="plain", stream=False,
                                                prompt="ask 0"))]
        await server.engine_busy()
        for n in range(1, 4):  # each arrives after the one before is queued
            asks.append(asyncio.create_task(server.post(
                "/api/generate", model="plain", prompt=f"ask {n}", stream=False)))
            await until(lambda n=n: server.app.state.pasture.scheduler.waiting == n)
        model = await ps(server)
        assert (model["running"], model["waiting"]) == (1, 3)
        assert len(server.runner.requests) == 1  # the engine sees one request at a time
        script.gate.set()
        replies = await asyncio.gather(*asks)
        assert [reply.status_code for reply in replies] == [200] * 4
        asked = ["".join(map(chr, r.prompt)) if isinstance(r.prompt, list) else r.prompt
                 for r in server.runner.requests]
        assert [text.split("ask ")[1][0] for text in asked] == ["0", "1", "2", "3"]
        model = await ps(server)
        assert (model["running"], model["waiting"]) == (0, 0)

    serve(scenario, script)


def test_a_full_slot_queue_is_503_with_retry_after_in_each_familys_shape(
        serve: Serve) -> None:
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> None:
        scheduler = server.app.state.pasture.scheduler
        def ask() -> asyncio.Task[Any]:
            return asyncio.create_task(server.post("/api/chat", **body("/api/chat", "plain",
                                                                      stream=False)))

        held = [ask()]
        await server.engine_busy()
        held += [ask(), ask()]  # one runs, two wait: the queue of two is full
        await until(lambda: scheduler.waiting == 2)
        for path in ROUTES:
            busy = await server.post(path, **body(path, "plain", stream=True))
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "1"
            assert error_message(path, 503, busy.json()) == QUEUE_FULL
        script.gate.set()
        assert [(await reply).status_code for reply in held] == [200, 200, 200]

    serve(scenario, script, MAX_QUEUE="2")


def test_a_client_leaving_the_slot_queue_spends_no_slot(serve: Serve) -> None:
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> None:
        scheduler = server.app.state.pasture.scheduler
        first = asyncio.create_task(server.post("/api/generate", model="plain",
                                                prompt="first", stream=False))
        await server.engine_busy()
        go = asyncio.Event()
        leaving = asyncio.create_task(leave(server, "/api/generate",
                                            {"model": "plain", "prompt": "leaving"},
                                            lambda _: go.wait()))
        await until(lambda: scheduler.waiting == 1)
        last = asyncio.create_task(server.post("/api/generate", model="plain",
                                               prompt="last", stream=False))
        await until(lambda: scheduler.waiting == 2)
        go.set()
        status, _ = await leaving
        assert status == 499
        model = await ps(server)
        assert (model["running"], model["waiting"]) == (1, 1)
        script.gate.set()
        assert (await first).status_code == 200 and (await last).status_code == 200
        asked = ["".join(map(chr, r.prompt)) if isinstance(r.prompt, list) else r.prompt
                 for r in server.runner.requests]
        assert len(asked) == 2 and "first" in asked[0] and "last" in asked[1]
        assert (await ps(server))["running"] == 0

    serve(scenario, script)


def test_a_wait_past_the_queue_timeout_is_a_503(serve: Serve) -> None:
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> None:
        first = asyncio.create_task(server.post("/v1/chat/completions",
                                                **body("/v1/chat/completions", "plain")))
        await server.engine_busy()
        late = await server.post("/v1/messages", **body("/v1/messages", "plain"))
        assert late.status_code == 503 and late.headers["retry-after"] == "1"
        assert error_message("/v1/messages", 503, late.json()) == (
            "server busy, please try again.  waited in the queue for 0.2 s "
            "(PASTURE_QUEUE_TIMEOUT)")
        assert (await ps(server))["waiting"] == 0
        script.gate.set()
        assert (await first).status_code == 200
        assert len(server.runner.requests) == 1

    serve(scenario, script, QUEUE_TIMEOUT="200ms")


async def call(server: Server, path: str, request: dict[str, Any], sent: list[bytes],
               headers: list[tuple[bytes, bytes]], leave_when: asyncio.Event) -> int:
    """POST to the app, the body chunks collected in `sent` as they go out; the client
    leaves when `leave_when` is set. Returns the status."""
    async def leave(_: list[bytes]) -> None:
        await leave_when.wait()

    return await asgi_post(server, path, request, sent, leave, headers)


def lines(sent: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in b"".join(sent).splitlines() if line]


def test_a_client_that_asks_hears_its_place_in_the_queue_before_its_answer(
        serve: Serve) -> None:
    script = Script(gate=asyncio.Event())
    report = [(b"x-pasture-queue", b"report")]

    async def scenario(server: Server) -> None:
        scheduler = server.app.state.pasture.scheduler
        first = asyncio.create_task(server.post("/api/chat", **body("/api/chat", "plain",
                                                                    stream=False)))
        await server.engine_busy()
        streams: dict[str, list[bytes]] = {"second": [], "third": [], "quiet": []}
        leave_second, stay = asyncio.Event(), asyncio.Event()
        second = asyncio.create_task(call(server, "/api/chat", body("/api/chat", "plain"),
                                          streams["second"], report, leave_second))
        await until(lambda: scheduler.waiting == 1)
        third = asyncio.create_task(call(server, "/api/chat", body("/api/chat", "plain"),
                                         streams["third"], report, stay))
        await until(lambda: scheduler.waiting == 2)
        quiet = asyncio.create_task(call(server, "/api/chat", body("/api/chat", "plain"),
                                         streams["quiet"], [], stay))
        await until(lambda: scheduler.waiting == 3)
        await until(lambda: len(lines(streams["third"])) == 1)
        assert lines(streams["second"]) == [{"status": "queued", "position": 1}]
        assert lines(streams["third"]) == [{"status": "queued", "position": 2}]
        assert streams["quiet"] == []  # a client that did not ask sees nothing new
        leave_second.set()  # the second leaves the queue: the third moves up
        assert await second == 200
        await until(lambda: len(lines(streams["third"])) == 2)
        assert lines(streams["third"])[1] == {"status": "queued", "position": 1}
        script.gate.set()
        assert (await first).status_code == 200
        assert await third == 200 and await quiet == 200
        third_lines = lines(streams["third"])
        assert third_lines[2]["message"]["content"] == "Hello" and third_lines[-1]["done"]
        assert all("status" not in line for line in lines(streams["quiet"]))
        assert len(server.runner.requests) == 3  # first, third, quiet: the second left

    serve(scenario, script)
