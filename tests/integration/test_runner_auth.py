"""The runner's own HTTP port answers only Pasture (issue #15, item 11).

Each runner's llama-server listens on a loopback port; without a key any local process
could drive the engine there, around `PASTURE_API_KEYS`. Each runner start gets a random
key that only the parent knows.
"""

from __future__ import annotations

import re

import httpx

from tests.integration.conftest import MODEL, RunningServer


def runner_address(server: RunningServer) -> str:
    """The engine port of a runner still running, from the server's log."""
    started = re.findall(r"runner pid (\d+) serving .* on (http://127\.0\.0\.1:\d+)",
                         server.log())
    running = [address for pid, address in started if int(pid) in server.children()]
    assert running, server.log()[-2000:]
    return running[-1]


ENGINE_ENDPOINTS = [
    ("GET", "/props"), ("GET", "/slots"), ("POST", "/completion"), ("POST", "/tokenize"),
    ("POST", "/v1/embeddings"), ("GET", "/v1/models"), ("GET", "/metrics"),
]


def test_the_engine_port_refuses_requests_without_the_runners_key(
        server: RunningServer, api: httpx.Client) -> None:
    loaded = api.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False,
                                             "options": {"num_predict": 2}})
    assert loaded.status_code == 200, loaded.text  # Pasture's own requests carry the key
    address = runner_address(server)
    body = {"prompt": "Hi", "n_predict": 2, "content": "Hi", "input": "Hi"}
    answered = {}
    for method, path in ENGINE_ENDPOINTS:
        for authorization in (None, "Bearer guessed", "Bearer"):
            headers = {"Authorization": authorization} if authorization else {}
            reply = httpx.request(method, address + path, headers=headers, timeout=30,
                                  json=body if method == "POST" else None)
            answered[(path, authorization)] = reply.status_code
            assert "slots" not in reply.text and "model" not in reply.text.lower(), reply.text
    assert set(answered.values()) == {401}, answered
    again = api.post("/api/embed", json={"model": MODEL, "input": "still served"})
    assert again.status_code == 200, again.text
