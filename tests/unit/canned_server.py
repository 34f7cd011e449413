"""A tiny HTTP server with canned, Ollama-shaped replies, for client-side unit tests.

It exists only to test what the client does with bytes on the wire (NDJSON parsing,
error mapping, headers, blob upload skipping); it knows nothing of models. The real
server is covered by the integration tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer


@dataclass
class Reply:
    """A canned answer: a JSON body, NDJSON lines (streamed one by one), or raw bytes."""

    status: int = 200
    body: Any = None
    lines: list[Any] | None = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # more headers (a redirect's location)


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CannedServer(LoopbackServer):
    """Serve `routes[(method, path)]` on a free loopback port, recording every request."""

    # A list of replies is played in order, its last one repeating.
    routes: dict[tuple[str, str], Reply | list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, for /api/blobs

    def __post_init__(self) -> None:
        super().__init__(_handler_for(self), quiet=True)

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]


def _handler_for(server: CannedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _read_body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                return self._read_chunked()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _read_chunked(self) -> bytes:
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()

        def _handle(self) -> None:
            body = self._read_body()
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                        body)
            server.seen.append(seen)
            canned = (self.command, self.path) in server.routes
            if self.path.startswith("/api/blobs/") and not canned:
                self._blob(seen)
                return
            reply = server.routes.get((self.command, self.path))
            if isinstance(reply, list):
                reply = reply.pop(0) if len(reply) > 1 else reply[0]
            if reply is None:
                self._send(Reply(404, {"error": f"no route {self.command} {self.path}"}))
            else:
                self._send(reply)

        def _blob(self, seen: Seen) -> None:
            digest = self.path.removeprefix("/api/blobs/")
            if self.command == "HEAD":
                self._send(Reply(200 if digest in server.blobs else 404, raw=b""))
                return
            actual = "sha256:" + hashlib.sha256(seen.body).hexdigest()
            if actual != digest:
                message = f"digest mismatch, expected {digest}, got {actual}"
                self._send(Reply(400, {"error": message}))
                return
            server.blobs[digest] = len(seen.body)
            self._send(Reply(201, raw=b""))

        def _send(self, reply: Reply) -> None:
            if reply.lines is not None:
                self.send_response(reply.status)
                self.send_header("content-type", "application/x-ndjson")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for line in reply.lines:
                    text = line if isinstance(line, str) else json.dumps(line)
                    chunk = (text + "\n").encode()
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                return
            data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_HEAD = _handle

    return Handler
