"""The JavaScript client in a real browser: headless Chromium against the shared live server.

A small server on 127.0.0.1 serves `clients/js` (the page `test/browser/index.html` imports
`dist/index.js` as an ES module, as a web app would); Chromium loads the page, which calls
the Pasture server from its own origin (allowed by default, like Ollama's
`http://127.0.0.1:*`) and writes what it got into the DOM, read back with `--dump-dom`.
`scripts/install_system_deps.sh` installs Debian's `chromium`.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import MODEL, RunningServer
from tests.integration.js import JS

# The page's hidden frame waits for the page's calls this long at most.
HOLD_SECONDS = 240
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


class _PageHandler(SimpleHTTPRequestHandler):
    """Static files from clients/js, plus the page's hold (`GET /hold`) and `POST /release`."""

    released: threading.Event

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/hold":
            super().do_GET()
            return
        self.released.wait(HOLD_SECONDS)
        body = b"<!doctype html><title>released</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != "/release":
            self.send_error(404)
            return
        self.released.set()
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def page_server() -> Iterator[str]:
    """`http://127.0.0.1:<port>`, serving clients/js for one page load."""
    handler = type("Handler", (_PageHandler,), {"released": threading.Event()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(JS)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        handler.released.set()
        httpd.shutdown()
        httpd.server_close()


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is not installed: run scripts/install_system_deps.sh"
    return path


def _dump_dom(url: str, profile: Path) -> str:
    done = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=HOLD_SECONDS + 60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _result(dom: str) -> tuple[str, dict[str, Any]]:
    """The page's `#result`: its data-status and its JSON."""
    match = re.search(r'<pre id="result" data-status="(\w+)">(.*?)</pre>', dom, re.DOTALL)
    assert match, dom
    return match[1], json.loads(html.unescape(match[2]))


def test_the_client_runs_in_chromium_against_the_live_server(
        server: RunningServer, page_server: str, tmp_path: Path) -> None:
    query = urlencode({"host": server.url, "model": MODEL})
    status, result = _result(_dump_dom(f"{page_server}/test/browser/index.html?{query}",
                                       tmp_path / "profile"))
    assert status == "done", result
    assert "HeadlessChrome" in result["userAgent"]
    package = json.loads((JS / "package.json").read_text())
    assert result["clientVersion"] == package["version"]
    assert re.match(r"\d+\.\d+\.\d+", result["serverVersion"])
    assert MODEL in result["models"]
    assert result["chat"]["role"] == "assistant" and result["chat"]["done"] is True
    assert result["chat"]["content"]
    # Streamed: NDJSON read through the browser's ReadableStream, ending in the done part.
    assert result["stream"]["parts"] >= 2 and result["stream"]["done"] is True
    assert result["stream"]["content"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", result["blob"]["digest"])
    assert result["blob"]["exists"] is True
    assert result["missing"] == {"isResponseError": True, "status": 404,
                                 "error": "model 'no-such-model:latest' not found"}
