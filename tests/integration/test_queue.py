"""The request queue on a live server: overflow answers 503, a client that leaves while
queued is dropped (its model is never loaded)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

LONG = {"raw": True, "prompt": "Once upon a time, in an old lighthouse by a stormy sea,",
        "options": {"num_predict": 3000, "temperature": 0}}


@pytest.fixture(scope="module")
def one_model_server(tmp_path_factory: pytest.TempPathFactory,
                     smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("queue")
    server = start_server(root / "models", root / "log", PASTURE_MAX_LOADED_MODELS="1",
                          PASTURE_MAX_QUEUE="1")
    import_model(server.url, smollm2_gguf, "first")
    for name in ("second", "third"):
        httpx.post(server.url + "/api/copy", json={"source": "first", "destination": name})
    yield server
    stop_server(server)


def hold_first_model(url: str, started: threading.Event, stop: threading.Event) -> None:
    """Keep `first` busy with a long generation until `stop` is set."""
    with httpx.Client(base_url=url, timeout=120) as client, \
            client.stream("POST", "/api/generate", json={"model": "first", **LONG}) as reply:
        for _ in reply.iter_lines():
            started.set()
            if stop.is_set():
                break


def test_overflow_is_503_and_a_client_leaving_the_queue_is_dropped(
        one_model_server: RunningServer) -> None:
    url = one_model_server.url
    started, stop = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_first_model, args=(url, started, stop))
    holder.start()
    try:
        assert started.wait(60)
        # `second` cannot load while `first` is busy at the one-model limit: it queues...
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/api/generate", json={"model": "second", "prompt": "Hi"},
                       timeout=httpx.Timeout(60, read=2))
        # ...and while one request waits, the queue (of 1) is full.
        blocker = threading.Thread(target=_queue_one, args=(url,))
        blocker.start()
        time.sleep(1)
        busy = httpx.post(url + "/api/generate", json={"model": "third", "prompt": "Hi"},
                          timeout=30)
        assert busy.status_code == 503
        assert busy.json()["error"] == ("server busy, please try again.  "
                                        "maximum pending requests exceeded")
        blocker.join()
    finally:
        stop.set()
        holder.join()
    time.sleep(2)
    # The clients that left while queued were dropped: `second` and `third` never loaded.
    loaded = [m["name"] for m in httpx.get(url + "/api/ps").json()["models"]]
    assert "second:latest" not in loaded and "third:latest" not in loaded
    assert "placing second" not in one_model_server.log()


def _queue_one(url: str) -> None:
    """A client that waits in the queue for `second`, then gives up."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/api/generate", json={"model": "second", "prompt": "Hi"},
                   timeout=httpx.Timeout(60, read=3))
