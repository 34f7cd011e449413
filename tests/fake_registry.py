"""A tiny registry that answers what a test tells it to, for faults a real one never makes.

Debian's `docker-registry` (tests/integration/registry.py) is the reference for the
protocol; this server plays a hostile or broken registry: manifests with traversal
digests, blobs that do not match their digest, oversized bodies, token realms on another
host, ignored or wrong byte ranges. It records every request so tests can prove what was
(and was not) sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    ranges: bool = False  # answer `Range` requests with 206 slices of `body`
    send_length: bool = True  # False: no Content-Length, the body ends when the socket closes
    chunk_delay: float = 0.0  # seconds between 64 KiB chunks of the body


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


class FakeRegistry(LoopbackServer):
    """`with FakeRegistry() as reg: reg.route("GET", "/v2/…", Route(…))`."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route | Callable[[Recorded], Route]] = {}
        self.requests: list[Recorded] = []
        self.cut_off = 0  # bodies whose client hung up before the end
        super().__init__(_handler_for(self))

    def route(self, method: str, path: str, route: Route | Callable[[Recorded], Route]) -> None:
        self.routes[(method, path)] = route

    def serve_model(self, repository: str, tag: str, manifest: dict[str, Any] | bytes,
                    blobs: dict[str, bytes], **blob_options: Any) -> bytes:
        """Serve a manifest and blobs (by digest) the way a registry does; returns the
        manifest bytes."""
        raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        self.route("GET", f"/v2/{repository}/manifests/{tag}",
                   Route(body=raw, headers={"Content-Type": MANIFEST_TYPE}))
        for digest, data in blobs.items():
            self.route("GET", f"/v2/{repository}/blobs/{digest}",
                       Route(body=data, **{"ranges": True, **blob_options}))
        return raw


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_for(config: bytes, *layers: bytes) -> dict[str, Any]:
    """A schema-2 manifest for a config blob and model layers."""
    return {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.ollama.image.model",
                    "digest": sha256(layer), "size": len(layer)} for layer in layers],
    }


_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")


def _handler_for(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            recorded = Recorded(self.command, self.path, dict(self.headers.items()))
            registry.requests.append(recorded)
            found = registry.routes.get((self.command, path))
            if found is None and self.command == "HEAD":
                found = registry.routes.get(("GET", path))
            route = found(recorded) if callable(found) else found
            if route is None:
                route = Route(404, b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}')
            status, body, headers = route.status, route.body, dict(route.headers)
            wanted = _RANGE_RE.fullmatch(self.headers.get("Range", ""))
            if route.ranges and wanted and status == 200:
                first = int(wanted.group(1))
                last = int(wanted.group(2)) if wanted.group(2) else len(body) - 1
                last = min(last, len(body) - 1)
                headers["Content-Range"] = f"bytes {first}-{last}/{len(route.body)}"
                status, body = 206, body[first:last + 1]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if route.send_length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            for start in range(0, len(body), 65536):
                if route.chunk_delay:
                    time.sleep(route.chunk_delay)
                try:
                    self.wfile.write(body[start:start + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    registry.cut_off += 1
                    return

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _serve

    return Handler
