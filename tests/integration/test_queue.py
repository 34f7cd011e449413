"""The queue in front of a real model's slots, on a live server: with one slot and a queue
of two, eight requests at once give three answers and five immediate 503s, and `/api/ps`
shows the two waiting while they run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

MODEL = "smollm2:135m"


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory,
                    smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("queue")
    server = start_server(root / "models", root / "log", PASTURE_NUM_PARALLEL="1",
                          PASTURE_MAX_QUEUE="2", PASTURE_NUM_THREADS="2")
    import_model(server.url, smollm2_gguf, MODEL)
    yield server
    stop_server(server)


def test_eight_requests_on_one_slot_and_a_queue_of_two(one_slot_server: RunningServer) -> None:
    url = one_slot_server.url
    httpx.post(url + "/api/generate", json={"model": MODEL}, timeout=120)  # loaded first
    seen: list[tuple[int, int]] = []  # (running, waiting) from /api/ps while they run
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set():
                (model,) = client.get(url + "/api/ps").json()["models"]
                seen.append((model["running"], model["waiting"]))
                done.wait(0.05)

    def ask(n: int) -> httpx.Response:
        return httpx.post(url + "/api/generate", timeout=120, json={
            "model": MODEL, "prompt": f"Story {n}: once upon a time", "raw": True,
            "stream": False, "options": {"num_predict": 48, "temperature": 0}})

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(ask, range(8)))
    finally:
        done.set()
        watcher.join()
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] * 3 + [503] * 5, statuses
    for reply in replies:
        if reply.status_code == 503:
            assert reply.headers["retry-after"] == "1"
            assert "maximum pending requests exceeded" in reply.json()["error"]
        else:
            assert reply.json()["eval_count"] == 48
    assert (1, 2) in seen and all(running <= 1 and waiting <= 2 for running, waiting in seen)
