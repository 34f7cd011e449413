"""A model's layers split over two `pasture worker`s and this machine (ggml's RPC backend).

Two real workers on loopback ports and one real server whose runner attaches them
(`PASTURE_RPC_SERVERS`, an even `PASTURE_RPC_SPLIT`): the split model answers greedy
requests with the same text as the unsplit one, `/api/ps` and `pasture ps` show the split,
and a worker killed mid-answer ends that answer with an error line while the server goes
on without the worker, then with it again once it is back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pasture.rpc import library
from tests.integration.conftest import (
    MODEL,
    REPO,
    RunningServer,
    _free_port,
    import_model,
    start_server,
    stop_server,
)

CACHE = Path.home() / ".cache" / "pasture"
GREEDY = {"temperature": 0, "seed": 7, "num_predict": 24}
PROMPT = "The three primary colours are"


class Worker:
    """One `pasture worker` process on a loopback port."""

    def __init__(self, engines: Path, log: Path, threads: int = 1) -> None:
        self.engines, self.log, self.port = engines, log, _free_port()
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "PASTURE_ENGINES": str(self.engines),
               "PYTHONPATH": str(REPO / "src")}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pasture", "worker", "--port", str(self.port),
                 "--threads", str(self.threads), "--no-cache"], env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("worker did not listen:\n" + self.log.read_text())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An engines folder holding the RPC library, built once per machine (~10 s)."""
    built = library.build(CACHE)
    folder = tmp_path_factory.mktemp("rpc") / "engines"
    target = library.library_path(folder)
    target.parent.mkdir(parents=True)
    shutil.copyfile(built, target)
    return folder


@pytest.fixture(scope="module")
def workers(engines: Path) -> Iterator[list[Worker]]:
    started = [Worker(engines, engines.parent / f"worker{i}.log") for i in range(2)]
    try:
        for worker in started:
            worker.start()
        yield started
    finally:
        for worker in started:
            worker.kill()


@pytest.fixture(scope="module")
def split_server(engines: Path, workers: list[Worker], smollm2_gguf: Path
                 ) -> Iterator[RunningServer]:
    running = start_server(  # its engines folder is `engines`, beside its models
        engines.parent / "models", engines.parent / "server.log",
        PASTURE_RPC_SERVERS=",".join(w.endpoint for w in workers), PASTURE_RPC_SPLIT="1,1,1",
        PASTURE_NUM_THREADS="1")
    try:
        import_model(running.url, smollm2_gguf, MODEL)
        yield running
    finally:
        stop_server(running)


def generate(url: str) -> str:
    reply = httpx.post(url + "/api/generate", timeout=120, json={
        "model": MODEL, "prompt": PROMPT, "raw": True, "stream": False, "options": GREEDY})
    assert reply.status_code == 200, reply.text
    return reply.json()["response"]


def test_split_model_answers_like_the_unsplit_one(
        server: RunningServer, split_server: RunningServer, workers: list[Worker]) -> None:
    unsplit = generate(server.url)
    assert generate(split_server.url) == unsplit
    (model,) = httpx.get(split_server.url + "/api/ps").json()["models"]
    # SmolLM2's 31 layers (30 blocks and the output), an even split: 11 / 10 / 10.
    assert model["split"] == (f"{workers[0].endpoint} 35% / {workers[1].endpoint} 32% "
                              "/ local 32%")
    assert model["size_vram"] == 0  # the workers' memory is not this machine's GPU
    for worker in workers:  # each worker served the runner
        assert "Accepted client connection" in worker.log.read_text()
    table = subprocess.run([sys.executable, "-m", "pasture", "ps"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src"),
                                           "PASTURE_HOST": split_server.url}, check=True)
    assert "SPLIT" in table.stdout and model["split"] in table.stdout


def test_worker_killed_mid_stream_ends_the_answer_and_the_server_goes_on(
        split_server: RunningServer, workers: list[Worker]) -> None:
    body = {"model": MODEL, "prompt": "Write a long story about a dragon.",
            "options": {"num_predict": 2000}}
    lines = []
    with httpx.Client(base_url=split_server.url, timeout=120) as api:
        with api.stream("POST", "/api/generate", json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line:
                    lines.append(json.loads(line))
                if len(lines) == 5:
                    workers[1].kill()
        assert "error" in lines[-1], lines[-1]
        assert "RPC workers" in lines[-1]["error"] and workers[1].endpoint in lines[-1]["error"]
        assert not any(line.get("done") for line in lines)

        # Up, and the next request loads the model again on the worker still there.
        again = api.post("/api/generate", json={**body, "stream": False,
                                                "options": {"num_predict": 4}})
        assert again.status_code == 200 and again.json()["done"] is True
        (model,) = api.get("/api/ps").json()["models"]
        assert model["split"] == f"{workers[0].endpoint} 52% / local 48%"  # 16 / 15

        # Once the worker is back, the next load takes it again.
        workers[1].start()
        api.post("/api/generate", json={"model": MODEL, "keep_alive": 0})
        assert api.post("/api/generate", json={**body, "stream": False,
                                               "options": {"num_predict": 4}}).status_code == 200
        (model,) = api.get("/api/ps").json()["models"]
        assert workers[1].endpoint in model["split"]


def test_a_listener_that_is_no_worker_fails_the_load_clearly(
        engines: Path, smollm2_gguf: Path, tmp_path: Path) -> None:
    """Something else on the worker's port (here: a socket that hangs up at once) makes
    ggml's handshake fail, which aborts the runner: the load fails with the worker named,
    and the server stays up. With fixed shares only a connection is checked before the
    load (without, the memory query leaves such a listener out: test_rpc_memory.py)."""
    (tmp_path / "engines").symlink_to(engines)
    with socket.socket() as impostor:
        impostor.bind(("127.0.0.1", 0))
        impostor.listen()
        endpoint = f"127.0.0.1:{impostor.getsockname()[1]}"
        hang_up = threading.Thread(target=lambda: [impostor.accept()[0].close()
                                                   for _ in range(2)], daemon=True)
        hang_up.start()
        running = start_server(tmp_path / "models", tmp_path / "server.log",
                               PASTURE_RPC_SERVERS=endpoint, PASTURE_RPC_SPLIT="1,1")
        try:
            import_model(running.url, smollm2_gguf, MODEL)
            reply = httpx.post(running.url + "/api/generate", timeout=120, json={
                "model": MODEL, "prompt": "Hi", "stream": False})
            assert reply.status_code == 500
            assert reply.json()["error"] == (
                f"the model could not be split over its RPC workers ({endpoint}): Remote RPC "
                "server crashed or returned malformed response (each must be a running "
                "`pasture worker` of this Pasture version)")
            assert httpx.get(running.url + "/api/version").status_code == 200
        finally:
            stop_server(running)
