"""A runner that dies mid-answer costs that answer only: the server stays up."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx

from tests.integration.conftest import MODEL, RunningServer


def test_runner_killed_mid_stream_ends_with_an_error_line(
    server: RunningServer, api: httpx.Client
) -> None:
    body = {"model": MODEL, "prompt": "Write a long story about a dragon.",
            "options": {"num_predict": 2000}}
    lines = []
    with api.stream("POST", "/api/generate", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                continue
            lines.append(json.loads(line))
            if len(lines) == 5:
                (runner,) = server.children()
                os.kill(runner, signal.SIGKILL)
    assert "error" in lines[-1], lines[-1]
    assert "runner" in lines[-1]["error"]
    assert not any(line.get("done") for line in lines)

    # The server is still up, and the next request starts a fresh runner.
    assert api.get("/").status_code == 200
    reply = api.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False,
                                            "options": {"num_predict": 4}})
    assert reply.status_code == 200 and reply.json()["done"] is True
    assert runner not in server.children()


def test_runner_killed_while_idle_is_replaced(server: RunningServer, api: httpx.Client) -> None:
    api.post("/api/generate", json={"model": MODEL})
    (runner,) = server.children()
    os.kill(runner, signal.SIGKILL)
    time.sleep(0.2)
    reply = api.post("/api/chat", json={"model": MODEL, "stream": False,
                                        "messages": [{"role": "user", "content": "Hi"}],
                                        "options": {"num_predict": 4}})
    assert reply.status_code == 200, reply.text
    assert runner not in server.children() and len(server.children()) == 1


def cpu_ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_client_disconnect_stops_the_generation(server: RunningServer) -> None:
    # A raw greedy story continuation runs without an end of text (checked here for 512
    # tokens), so 3,000 tokens take at least 20 s on any machine this runs on.
    body = {"model": MODEL, "raw": True, "options": {"num_predict": 3000, "temperature": 0},
            "prompt": "Once upon a time, in an old lighthouse by a stormy sea, there lived"}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        with client.stream("POST", "/api/generate", json=body) as response:
            for count, _ in enumerate(response.iter_lines()):
                if count == 3:
                    break
    (runner,) = server.children()
    # A cancelled generation goes idle at once; poll rather than sample once, so that one
    # slow decode step on a loaded machine cannot fool the test.
    deadline = time.monotonic() + 6
    while True:
        before = cpu_ticks(runner)
        time.sleep(0.5)
        busy = cpu_ticks(runner) - before
        if busy < 10:
            break
        assert time.monotonic() < deadline, f"runner still busy ({busy} ticks / 0.5 s)"
