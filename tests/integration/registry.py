"""A real OCI registry for the tests: Debian's `docker-registry` (CNCF distribution 2.8).

It runs with a config of its own: filesystem storage in a temporary directory and
`127.0.0.1:<free port>`, never the package's default config, which listens on every
interface. `scripts/install_system_deps.sh` installs it. `RecordingProxy` sits between a client and
the registry when a test must see the requests (their `Range` headers) or slow them down.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import _free_port
from tests.loopback import LoopbackServer

REGISTRY_BINARY = "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str  # 127.0.0.1:<port>, the host part of model names on this registry
    process: subprocess.Popen[bytes]
    root: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def start_registry(root: Path) -> Registry:
    """Start `docker-registry serve` on a free loopback port and wait until it answers."""
    binary = shutil.which("docker-registry") or REGISTRY_BINARY
    if not Path(binary).exists():
        raise RuntimeError("docker-registry is not installed: run scripts/install_system_deps.sh")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: false}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    log_path = root / "registry.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - lives as long as the registry
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log_file,
                               stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", process, root, log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("docker-registry exited:\n" + log_path.read_text())
        try:
            if httpx.get(registry.url + "/v2/", timeout=1).status_code == 200:
                return registry
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("docker-registry did not start:\n" + log_path.read_text())


def stop_registry(registry: Registry) -> None:
    registry.process.terminate()
    try:
        registry.process.wait(10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait()


@pytest.fixture(scope="session", name="registry")
def registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One docker-registry for the session, on 127.0.0.1 with temporary storage."""
    running = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield running
    finally:
        stop_registry(running)


@dataclass
class Seen:
    method: str
    path: str
    range: str | None


@dataclass
class RecordingProxy(LoopbackServer):
    """Forwards requests to `upstream`, records them, and can slow response bodies down."""

    upstream: str  # host:port
    delay: float = 0.0  # seconds to wait before each 16 KiB of a response body
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(_proxy_handler(self))


def _proxy_handler(proxy: RecordingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _forward(self) -> None:
            proxy.seen.append(Seen(self.command, self.path, self.headers.get("Range")))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = proxy.upstream
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    for start in range(0, len(data), 16384):
                        if proxy.delay:
                            time.sleep(proxy.delay)
                        self.wfile.write(data[start:start + 16384])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
            upstream.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _forward

    return Handler
