"""The network edge: Host and Origin checks, API keys and body limits, on a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import MODEL, RunningServer, start_server, stop_server


@pytest.mark.parametrize("host", ["localhost:11434", "127.0.0.1", "[::1]:80", "myapp.localhost",
                                  "192.168.1.20:11434", "printer.local", ""])
def test_local_host_headers_are_served(api: httpx.Client, host: str) -> None:
    assert api.get("/api/version", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "evil.com:11434", "8.8.8.8"])
def test_foreign_host_headers_are_refused_against_dns_rebinding(api: httpx.Client,
                                                                 host: str) -> None:
    response = api.post("/api/delete", headers={"host": host}, json={"model": MODEL})
    assert response.status_code == 403
    assert MODEL in [m["name"] for m in api.get("/api/tags").json()["models"]]


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://127.0.0.1",
                                    "app://obsidian.md", "vscode-webview://abc"])
def test_allowed_origins_get_cors_headers(api: httpx.Client, origin: str) -> None:
    response = api.get("/api/tags", headers={"origin": origin})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    preflight = api.options("/api/chat", headers={
        "origin": origin, "access-control-request-method": "POST"})
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_disallowed_origin_is_refused_and_not_executed(api: httpx.Client) -> None:
    api.post("/api/copy", json={"source": MODEL, "destination": "cors-victim"})
    response = api.request("DELETE", "/api/delete", json={"model": "cors-victim"},
                           headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert "cors-victim:latest" in [m["name"] for m in api.get("/api/tags").json()["models"]]
    api.request("DELETE", "/api/delete", json={"model": "cors-victim"})


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("keyed")
    keys = root / "keys"
    keys.write_text("# one key a line\nsecond-key\n")
    server = start_server(root / "models", root / "log", PASTURE_API_KEYS="first-key",
                          PASTURE_API_KEYS_FILE=str(keys), PASTURE_MAX_BODY="4KiB",
                          PASTURE_MAX_BLOB="1KiB")
    yield server
    stop_server(server)


def test_api_keys_are_required_except_for_the_root(keyed_server: RunningServer) -> None:
    url = keyed_server.url
    assert httpx.get(url + "/").status_code == 200
    assert httpx.get(url + "/api/tags").status_code == 401
    assert httpx.get(url + "/api/tags", headers={"authorization": "Bearer wrong"}).status_code \
        == 401
    for key in ("first-key", "second-key"):
        response = httpx.get(url + "/api/tags", headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200


def test_a_key_with_bytes_outside_ascii_is_401_not_500(keyed_server: RunningServer) -> None:
    for key in (b"Bearer \xff\xfe", "Bearer clé".encode(), b"Bearer first-key\xe9"):
        response = httpx.get(keyed_server.url + "/api/tags", headers={"authorization": key})
        assert response.status_code == 401 and response.json() == {"error": "unauthorized"}


def test_client_sends_the_api_key_from_the_environment(keyed_server: RunningServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pasture.client import Client, ResponseError

    monkeypatch.setenv("PASTURE_API_KEY", "second-key")
    assert Client(host=keyed_server.url).list().models == []
    monkeypatch.setenv("PASTURE_API_KEY", "nope")
    with pytest.raises(ResponseError) as caught:
        Client(host=keyed_server.url).list()
    assert caught.value.status_code == 401


def test_oversized_bodies_are_refused_with_413(keyed_server: RunningServer) -> None:
    auth = {"authorization": "Bearer first-key"}
    big = {"model": "m", "prompt": "x" * 10_000}
    response = httpx.post(keyed_server.url + "/api/generate", json=big, headers=auth)
    assert response.status_code == 413 and "too large" in response.json()["error"]

    def chunked():  # no Content-Length: the limit applies while the body streams in
        for _ in range(10):
            yield b"x" * 500

    blob = "sha256:" + "a" * 64
    response = httpx.post(keyed_server.url + f"/api/blobs/{blob}", content=chunked(),
                          headers=auth)
    assert response.status_code == 413
    assert httpx.head(keyed_server.url + f"/api/blobs/{blob}", headers=auth).status_code == 404
