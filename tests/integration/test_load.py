"""200 concurrent clients against a queue of 32 on a live server: each streaming
generation gets a 200 or Ollama's 503, never a 500 or a hang, the server's memory does not
grow with each burst, and endpoints under `hey` answer every request. (bench/load_test.py
runs the long version: thousands of requests, with figures.)"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.load_test import BUSY, hey, rss_mib
from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

CLIENTS, MAX_QUEUE = 200, 32
# The burst's load options differ from the long holder's (num_ctx), so its requests wait
# in the queue until the holder is done: the queue fills however fast the machine is.
BURST = {"model": "smol", "raw": True, "prompt": "The sky is",
         "options": {"num_predict": 1, "temperature": 0}}
HOLDER = {"model": "smol", "raw": True, "prompt": "Once upon a time, in an old lighthouse,",
          "options": {"num_predict": 3000, "temperature": 0, "num_ctx": 1024}}
HANG = 300  # seconds without a byte from the server: a hang, not a slow machine


@pytest.fixture(scope="module")
def queued_server(tmp_path_factory: pytest.TempPathFactory,
                  smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("load")
    # One engine thread: on a shared 2-core machine ggml's spinning barriers make more
    # threads much slower, and this test is about the queue, not decode speed.
    server = start_server(root / "models", root / "log", PASTURE_MAX_QUEUE=str(MAX_QUEUE),
                          PASTURE_NUM_THREADS="1")
    import_model(server.url, smollm2_gguf, "smol")
    yield server
    stop_server(server)


def hold_model(url: str, streaming: threading.Event, release: threading.Event) -> None:
    """Keep the model busy with other load options until `release` is set."""
    with httpx.stream("POST", url + "/api/generate", json=HOLDER, timeout=HANG) as reply:
        for _ in reply.iter_lines():
            streaming.set()
            if release.is_set():
                return
    raise AssertionError("the long generation ended before it was released")


async def burst(url: str, release: threading.Event) -> Counter[int]:
    """CLIENTS concurrent streaming generations; `release` is set once every client
    beyond the queue has its answer, letting the queued ones run."""
    answered = 0

    async def generate(client: httpx.AsyncClient) -> int:
        nonlocal answered
        async with client.stream("POST", "/api/generate", json=BURST) as reply:
            chunks = [json.loads(line) async for line in reply.aiter_lines()]
        if reply.status_code == 503:
            assert chunks == [BUSY]
            answered += 1
            if answered == CLIENTS - MAX_QUEUE:
                release.set()
        elif reply.status_code == 200:
            assert chunks[-1]["done"] and not any("error" in c for c in chunks), chunks
        return reply.status_code

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=HANG, limits=limits) as client:
        return Counter(await asyncio.gather(*(generate(client) for _ in range(CLIENTS))))


def run_burst(url: str) -> Counter[int]:
    streaming, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_model, args=(url, streaming, release))
    holder.start()
    try:
        assert streaming.wait(HANG)
        return asyncio.run(burst(url, release))
    finally:
        release.set()
        holder.join()


def test_a_full_queue_answers_503_and_the_rest_succeed(queued_server: RunningServer) -> None:
    statuses = run_burst(queued_server.url)
    assert statuses == {200: MAX_QUEUE, 503: CLIENTS - MAX_QUEUE}
    after_first = rss_mib(queued_server.process.pid)
    statuses = run_burst(queued_server.url)
    assert statuses == {200: MAX_QUEUE, 503: CLIENTS - MAX_QUEUE}
    # The first burst sized the server's buffers; another must not keep adding to them.
    assert rss_mib(queued_server.process.pid) - after_first < 50
    assert "Traceback" not in queued_server.log()


def test_endpoints_answer_every_request_under_hey(queued_server: RunningServer) -> None:
    for path in ("/api/version", "/api/tags"):
        phase = hey(queued_server.url, "GET", path, None, requests=1000, clients=CLIENTS,
                    hang=HANG)
        assert phase.outcomes == {"200": 1000}, phase.summary()
