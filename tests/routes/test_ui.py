"""The chat page's static files at `/ui`: content types, caching, the Content-Security-Policy,
no way out of the UI folder, and API-key mode (the page loads, the API still needs the key).

The browser side (the page really chatting) is tests/integration/test_ui_browser.py.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pasture.server.app import create_app
from pasture.server.routes.ui import CONTENT_SECURITY_POLICY, assets
from tests.fake_runner import FakeEngine
from tests.routes.conftest import BASE_URL, settings_for

REPO = Path(__file__).resolve().parents[2]


def _app(tmp_path: Path, **env: str) -> FastAPI:
    return create_app(settings_for(tmp_path / "models", **env), start_runner=FakeEngine())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from _client(_app(tmp_path))


def _client(app: FastAPI) -> Iterator[httpx.Client]:
    """A sync client over the ASGI app (httpx runs it in a portal thread)."""
    transport = _SyncASGI(app)
    with httpx.Client(transport=transport, base_url=BASE_URL) as client:
        yield client


class _SyncASGI(httpx.BaseTransport):
    """httpx's ASGITransport is async-only: this runs each request in its own event loop."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        return asyncio.run(send())


def _asset_names(page: str) -> tuple[str, str]:
    script = re.search(r'<script type="module" src="\./(app-[0-9a-f]{12}\.js)"', page)
    style = re.search(r'<link rel="stylesheet" href="\./(style-[0-9a-f]{12}\.css)"', page)
    assert script and style, page
    return script[1], style[1]


def test_ui_redirects_to_the_folder_and_root_still_answers_as_ollama(
        client: httpx.Client) -> None:
    redirect = client.get("/ui")
    assert redirect.status_code == 308 and redirect.headers["location"] == "ui/"
    root = client.get("/")
    assert root.status_code == 200 and root.text == "Ollama is running"


def test_the_page_and_its_assets_have_their_content_types_and_cache_rules(
        client: httpx.Client) -> None:
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"  # a new build shows on the next load
    for testid in ("model-select", "prompt", "send", "stop", "pull-name", "pull-start",
                   "pull-progress", "new-chat", "settings-system", "settings-temperature"):
        assert f'data-testid="{testid}"' in page.text
    script, style = _asset_names(page.text)
    for name, kind in ((script, "text/javascript; charset=utf-8"),
                       (style, "text/css; charset=utf-8")):
        reply = client.get(f"/ui/{name}")
        assert reply.status_code == 200 and reply.headers["content-type"] == kind
        assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/index.html").text == page.text


def test_every_answer_carries_a_strict_csp_without_inline_code(client: httpx.Client) -> None:
    page = client.get("/ui/")
    csp = page.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"  # answers and keys go nowhere else
    assert "unsafe" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    # The page itself obeys it: no inline script, style attribute or event handler.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text)


def test_etags_answer_304_and_gzip_is_offered(client: httpx.Client) -> None:
    page = client.get("/ui/")
    script, _ = _asset_names(page.text)
    first = client.get(f"/ui/{script}", headers={"accept-encoding": "identity"})
    again = client.get(f"/ui/{script}", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    packed = client.get(f"/ui/{script}", headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == first.content  # httpx decoded it
    assert len(gzip.compress(first.content)) < len(first.content) // 2


async def _raw_get(app: FastAPI, path: str) -> tuple[int, bytes]:
    """GET with `path` exactly as given: httpx would normalise the `..` away."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 11434), "headers": [(b"host", b"127.0.0.1:11434")]}
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize("path", [
    "/ui/../routes/ui.py", "/ui/../../server/app.py", "/ui/%2e%2e/routes/ui.py",
    "/ui/..%2Froutes%2Fui.py", "/ui/..\\routes\\ui.py", "/ui//etc/passwd",
    "/ui/static/ui/index.html", "/ui/./index.html", "/ui/index.html/", "/ui/INDEX.HTML",
    "/ui/%00index.html",
])
def test_no_path_leaves_the_ui_folder(tmp_path: Path, path: str) -> None:
    status, body = asyncio.run(_raw_get(_app(tmp_path), path))
    assert status == 404, (path, body[:200])
    assert b"import" not in body and b"root:" not in body


def test_only_the_built_files_are_served(client: httpx.Client) -> None:
    folder = resources.files("pasture.server").joinpath("static", "ui")
    assert sorted(assets()) == sorted(e.name for e in folder.iterdir() if e.is_file())
    for name in ("app.js", "style.css", "main.js", "../../../pyproject.toml"):
        assert client.get(f"/ui/{name}").status_code == 404


def test_the_page_ships_in_the_package_and_names_only_files_it_has() -> None:
    """A pip install has the page: pyproject's package data covers the folder, and every
    asset index.html names is there (a stale build would name a missing file)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "static/ui/*" in config["tool"]["setuptools"]["package-data"]["pasture.server"]
    page = assets()["index.html"].body.decode()
    for name in _asset_names(page):
        assert name in assets()


def test_with_api_keys_the_page_loads_but_the_api_needs_the_key(tmp_path: Path) -> None:
    for client in _client(_app(tmp_path, PASTURE_API_KEYS="ui-key")):
        page = client.get("/ui/")
        assert page.status_code == 200
        script, style = _asset_names(page.text)
        assert client.get(f"/ui/{script}").status_code == 200
        assert client.get("/ui").status_code == 308
        assert client.get("/api/tags").status_code == 401
        assert client.get("/api/tags", headers={"authorization": "Bearer ui-key"}) \
            .status_code == 200
        # Only reading the page is open: other methods on /ui still need the key.
        assert client.post("/ui/", content=b"x").status_code == 401
        assert client.get("/uix").status_code == 401


@pytest.mark.parametrize(("host", "origin", "status"), [
    # The page opened from another device at this machine's address: same-origin, served.
    ("192.168.1.20:11434", "http://192.168.1.20:11434", 404),
    ("[fd00::20]:11434", "http://[fd00::20]:11434", 404),
    # A DNS-rebinding page is same-origin under its own name, which is not this machine's.
    ("evil.example:11434", "http://evil.example:11434", 403),
    ("192.168.1.21:11434", "http://192.168.1.20:11434", 403),  # another origin
    ("192.168.1.20:11434", "https://192.168.1.20:11434", 403),  # another scheme
])
def test_the_page_works_from_another_device_but_rebinding_does_not(
        tmp_path: Path, host: str, origin: str, status: int) -> None:
    """Listening on all interfaces (no Host check), a POST from the page carries its Origin:
    allowed when it names this server itself by address, refused under a foreign name."""
    for client in _client(_app(tmp_path, PASTURE_HOST="0.0.0.0:11434")):
        reply = client.post("/api/show", json={"model": "absent"},
                            headers={"host": host, "origin": origin})
        assert reply.status_code == status, reply.text
