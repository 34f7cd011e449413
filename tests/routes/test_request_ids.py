"""Every request has an id: the client's sane `X-Request-Id`, else a new one; echoed in
the response, carried by every log record made while it runs, and in the one line logged
when it is done."""

from __future__ import annotations

import logging
import re

import pytest

from pasture.errors import BadRequestError
from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server


def records_of(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "request_id", None) == request_id]


def test_a_sane_request_id_is_echoed_and_a_missing_or_odd_one_replaced(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        mine = await server.client.get("/api/version", headers={"x-request-id": "trace-42"})
        assert mine.headers["x-request-id"] == "trace-42"
        fresh = await server.client.get("/api/version")
        assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
        for odd in ("has space", "x" * 129, "é"):
            reply = await server.client.get("/api/version",
                                            headers={"x-request-id": odd.encode()})
            assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"]), odd
        refused = await server.client.get("/nowhere", headers={"x-request-id": "lost-1"})
        assert refused.status_code == 404 and refused.headers["x-request-id"] == "lost-1"

    serve(scenario)


def test_log_records_carry_the_request_id_and_one_line_sums_the_request_up(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(server: Server) -> None:
        first = await server.client.post("/api/generate", headers={"x-request-id": "one"},
                                         json={"model": "plain", "prompt": "hi",
                                               "stream": False})
        second = await server.client.post("/api/generate", headers={"x-request-id": "two"},
                                          json={"model": "native", "prompt": "hey",
                                                "stream": False})
        assert first.status_code == second.status_code == 200
        return first.json(), second.json()

    caplog.set_level(logging.INFO)
    _, answer = serve(scenario, MAX_LOADED_MODELS="1")
    two = records_of(caplog, "two")
    # the scheduler's record, made on behalf of request "two", carries its id
    assert any(r.getMessage() == "evicting plain:latest to make room" for r in two)
    (summary,) = [r for r in two if r.name == "pasture.request"]
    assert summary.getMessage().startswith("POST /api/generate 200 ")
    assert summary.getMessage().endswith(
        f"model=native:latest prompt_tokens={answer['prompt_eval_count']} "
        f"eval_tokens={answer['eval_count']}")
    assert len([r for r in records_of(caplog, "one") if r.name == "pasture.request"]) == 1


def test_a_failed_request_is_logged_at_warn_with_its_reason(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    """Refused before the answer (400, 404) or failing inside a started stream, a request's
    one line says why, at WARN; a success stays at INFO."""
    script = Script(fail_after=1, error=BadRequestError("the engine gave up"))

    async def scenario(server: Server) -> None:
        for request_id, body in (("bad", {"model": "plain", "prompt": "x", "think": "much"}),
                                 ("lost", {"model": "ghost", "prompt": "x"}),
                                 ("late", {"model": "plain", "prompt": "x"})):
            await server.client.post("/api/generate", headers={"x-request-id": request_id},
                                     json=body)

    caplog.set_level(logging.INFO)
    serve(scenario, script)
    for request_id, status, reason in (("bad", 400, "think"), ("lost", 404, "not found"),
                                       ("late", 200, "the engine gave up")):
        (line,) = [r for r in records_of(caplog, request_id) if r.name == "pasture.request"]
        assert line.levelname == "WARNING", request_id
        message = line.getMessage()
        assert f"/api/generate {status} " in message and 'error="' in message
        assert reason in message.split('error="', 1)[1], message
