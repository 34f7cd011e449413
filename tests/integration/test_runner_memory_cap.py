"""A runaway runner is killed by its memory cap, and says so (issue #15, item 1).

The trigger is real: a JSON schema demanding a billion items makes llama.cpp's grammar
grow by hundreds of MB a second (measured: 88 MiB once loaded, 2.3 GB six seconds later,
still growing after the client left). It is sent to the runner directly, through its
public interface, so that the server's own schema bounds cannot refuse it first.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from pasture.runner import LoadSpec, ProcessRunner, RunnerCrashed
from pasture.runner.base import CompletionRequest
from pasture.runner.watchdog import anonymous_memory
from tests.integration.conftest import MODEL, import_model, start_server, stop_server

LIMIT = 512 << 20
RUNAWAY = {"type": "array", "minItems": 1_000_000_000, "items": {"type": "integer"}}


def test_a_runaway_request_kills_only_its_runner_with_a_clear_error(
        smollm2_gguf: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        runner = await ProcessRunner.start(LoadSpec(str(smollm2_gguf), 2048, pooling="last"),
                                           memory_limit=LIMIT)
        try:
            loaded = anonymous_memory(runner.pid)
            assert loaded is not None and loaded < LIMIT // 2  # the cap leaves it room
            request = CompletionRequest("Numbers:", {"num_predict": 8}, json_schema=RUNAWAY)
            with pytest.raises(RunnerCrashed) as failure:
                async for _ in runner.complete(request):
                    pass
            assert str(failure.value) == \
                "model runner exceeded its memory limit (512 MiB) and was stopped"
            assert not runner.alive
            with pytest.raises(RunnerCrashed, match="exceeded its memory limit"):
                await runner.tokenize("the next request")
        finally:
            await runner.close()

    with caplog.at_level(logging.ERROR, logger="pasture.runner.process"):
        asyncio.run(scenario())
    assert any("over its memory limit of 512 MiB" in record.getMessage()
               for record in caplog.records)


def test_the_memory_limit_setting_reaches_every_runner(
        smollm2_gguf: Path, tmp_path: Path) -> None:
    # A cap below what the model holds once loaded stops the runner on the watchdog's
    # first reading: the request it was serving gets the reason.
    server = start_server(tmp_path / "models", tmp_path / "server.log",
                          PASTURE_RUNNER_MEMORY_LIMIT="16MiB")
    try:
        import_model(server.url, smollm2_gguf, MODEL)
        with httpx.Client(base_url=server.url, timeout=120) as api:
            reply = api.post("/api/generate", json={
                "model": MODEL, "prompt": "Tell me a long story.", "stream": False,
                "options": {"num_predict": 500}})
            assert reply.status_code == 500
            assert reply.json() == {"error": "model runner exceeded its memory limit "
                                             "(16 MiB) and was stopped"}
            assert api.get("/api/version").status_code == 200
        assert "over its memory limit of 16 MiB (PASTURE_RUNNER_MEMORY_LIMIT)" in server.log()
    finally:
        stop_server(server)
