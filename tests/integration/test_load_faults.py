"""A runner that hangs or dies while loading costs that request only: the server stays up.

The faults are real processes in real states. The test catches the runner the moment the
server spawns it (from /proc/<server>/task/*/children, long before it can load even a tiny
model) and either stops it with SIGSTOP, a hang no timeout inside the runner can end, or
kills it with SIGKILL, which is what the kernel's OOM killer sends. The server must answer
with an error, get rid of the stopped process once PASTURE_LOAD_TIMEOUT passes, and load
the model normally for the next request.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.ggufs import write_tiny_llama
from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

LOAD_TIMEOUT = 8  # seconds: many times what the tiny model needs, and what a hang costs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("load-faults")
    running = start_server(root / "models", root / "server.log",
                           PASTURE_LOAD_TIMEOUT=str(LOAD_TIMEOUT))
    try:
        import_model(running.url, write_tiny_llama(root / "tiny.gguf"), "tiny")
        yield running
    finally:
        stop_server(running)


def spawned(pid: int) -> set[int]:
    """The live children of `pid`, as the kernel lists them per thread."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(child) for child in (task / "children").read_text().split())
    return found


def generate(server: RunningServer) -> httpx.Response:
    return httpx.post(f"{server.url}/api/generate", timeout=LOAD_TIMEOUT + 60, json={
        "model": "tiny", "prompt": "hi", "stream": False, "options": {"num_predict": 2}})


def load_with_fault(server: RunningServer, fault: signal.Signals) -> tuple[httpx.Response, int]:
    """Send a request that loads the model, hit its new runner with `fault` at once; returns
    the answer and the runner's pid."""
    pid = server.process.pid
    before = spawned(pid)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(generate, server)
        deadline = time.monotonic() + 30
        while not (new := spawned(pid) - before):
            assert time.monotonic() < deadline and not answer.done(), "no runner was started"
        (runner,) = new
        # Wait for the exec: a child stopped between fork and exec would block the
        # server's own spawn call, which is not the fault under test.
        while b"pasture.runner.main" not in Path(f"/proc/{runner}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the runner did not start"
        os.kill(runner, fault)
        assert httpx.get(f"{server.url}/api/tags").status_code == 200  # not blocked meanwhile
        return answer.result(), runner


def assert_recovers(server: RunningServer, broken_runner: int) -> None:
    """The broken runner is gone (killed and reaped), and the next request loads anew."""
    assert not Path(f"/proc/{broken_runner}").exists()
    assert httpx.get(f"{server.url}/").status_code == 200
    reply = generate(server)
    assert reply.status_code == 200 and reply.json()["done"] is True, reply.text
    assert spawned(server.process.pid) - {broken_runner}


@pytest.fixture(autouse=True)
def unloaded(server: RunningServer) -> Iterator[None]:
    """Each test starts with no runner, so its request has to load one."""
    yield
    httpx.post(f"{server.url}/api/generate", json={"model": "tiny", "keep_alive": 0})


def test_runner_hung_while_loading_is_killed_at_the_load_timeout(
        server: RunningServer) -> None:
    reply, runner = load_with_fault(server, signal.SIGSTOP)
    assert (reply.status_code, reply.json()) == (
        500, {"error": "timed out waiting for the model to load"})
    assert_recovers(server, runner)


def test_runner_killed_while_loading_is_an_error_not_a_hang(server: RunningServer) -> None:
    """SIGKILL, as the OOM killer does it: reported at once, named, without a path."""
    reply, runner = load_with_fault(server, signal.SIGKILL)
    assert reply.status_code == 500
    error = reply.json()["error"]
    assert error.startswith("the engine could not load this model") and "SIGKILL" in error
    assert "/" not in error
    assert_recovers(server, runner)
