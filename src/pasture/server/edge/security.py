"""The network edge: who may talk to the server, from where, and with how much.

Three checks run before any route, as one ASGI middleware (cheap, and in a fixed order):

1. Host (against DNS rebinding): when the server listens on a loopback address, a
   request whose Host is not a local name or address is refused with 403 — a web page
   whose domain was re-pointed at 127.0.0.1 cannot reach the API.
2. Origin (CORS): a browser request from an origin not on the allow-list is refused
   with 403 and never executed — not merely answered without CORS headers. Allowed
   origins get the CORS headers and their preflight requests are answered here. A page
   this server served itself (the chat page at `/ui`, opened at this machine's address
   from another device) is same-origin and allowed too.
3. API keys (beyond Ollama): when keys are configured, every request but `GET /` and the
   chat page's static files (`GET /ui/…`, which then asks the user for a key) must carry
   `Authorization: Bearer <key>`; otherwise 401. The cluster's internal blob endpoint
   (`/api/cluster/`) checks a key of its own, the one its nodes were given.

Request bodies over the configured size are refused with 413 as they stream in.
"""

from __future__ import annotations

import fnmatch
import hmac
import ipaddress
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasture.errors import PayloadTooLargeError
from pasture.server.error_shapes import shaped_error

# Ollama's built-in origins; PASTURE_ORIGINS adds to them.
DEFAULT_ORIGINS = (
    *(f"{scheme}://{host}{port}" for scheme in ("http", "https")
      for host in ("localhost", "127.0.0.1", "0.0.0.0") for port in ("", ":*")),
    "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
)
_CORS_HEADERS = ("Authorization, Content-Type, User-Agent, Accept, X-Requested-With, "
                 "OpenAI-Beta, x-stainless-arch, x-stainless-async, x-stainless-lang, "
                 "x-stainless-os, x-stainless-package-version, x-stainless-retry-count, "
                 "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, "
                 "anthropic-version, anthropic-beta, x-api-key")
_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


@dataclass(frozen=True)
class EdgePolicy:
    """What the edge allows; built once from Settings."""

    check_host: bool  # only when listening on loopback, as Ollama
    origins: tuple[str, ...] = DEFAULT_ORIGINS
    api_keys: frozenset[str] = frozenset()
    max_body: int = 1 << 20  # JSON requests
    max_blob: int = 1 << 40  # uploads to /api/blobs
    local_names: frozenset[str] = field(default_factory=frozenset)


def machine_names() -> frozenset[str]:
    """This machine's own host names and addresses: a Host naming them is local."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            names.add(str(info[4][0]).lower())
    except OSError:
        pass
    return frozenset(names)


def host_is_local(host_header: str, local_names: Iterable[str] = ()) -> bool:
    """Ollama's allow-list: empty, localhost, *.localhost/.local/.internal, loopback,
    private or unspecified IP literals, and this machine's own names."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:port
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host in ("", "localhost") or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in local_names
    return address.is_loopback or address.is_private or address.is_unspecified


def is_loopback(host: str) -> bool:
    """True for a listen address only this machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _public(method: str, path: str) -> bool:
    """What anyone may read without a key: the liveness answer and the chat page's files
    (no data in them; the page's API calls carry the key the user types)."""
    return method in ("GET", "HEAD") and (path in ("/", "/ui") or path.startswith("/ui/"))


def origin_allowed(origin: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(origin.lower(), p.lower()) for p in patterns)


def same_origin(origin: str, scheme: str, host_header: str,
                local_names: Iterable[str] = ()) -> bool:
    """True for a request from a page this server served: the Origin is this very scheme
    and Host, and that host is an IP address or one of this machine's own names. A DNS
    rebinding page is same-origin too, but under the attacker's domain name, which is
    neither, so it stays refused."""
    host = host_header.strip().lower()
    if not host or origin.lower() != f"{scheme}://{host}":
        return False
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name in local_names
    return True


def _error(send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] = (),
           path: str = ""):
    body = json.dumps(shaped_error(path, status, message)).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *extra]

    async def respond() -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return respond()


class EdgeGuard:
    """The ASGI middleware applying an EdgePolicy (see the module docstring)."""

    def __init__(self, app: ASGIApp, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        policy = self.policy
        if policy.check_host and not host_is_local(headers.get("host", ""), policy.local_names):
            await _error(send, 403, "forbidden: host not allowed", path=scope["path"])
            return
        cors: list[tuple[bytes, bytes]] = []
        origin = headers.get("origin")
        if origin is not None:
            if not (origin_allowed(origin, policy.origins)
                    or same_origin(origin, scope["scheme"], headers.get("host", ""),
                                   policy.local_names)):
                await _error(send, 403, "forbidden: origin not allowed", path=scope["path"])
                return
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"vary", b"Origin")]
            if scope["method"] == "OPTIONS":
                await self._preflight(send, cors)
                return
        if policy.api_keys and not _public(scope["method"], scope["path"]) \
                and not scope["path"].startswith("/api/cluster/"):
            if not self._authorized(headers.get("authorization", "")):
                await _error(send, 401, "unauthorized", cors, scope["path"])
                return
        await self._forward(scope, receive, send, headers, cors)

    def _authorized(self, header: str) -> bool:
        """Compared as bytes: `compare_digest` refuses str with characters outside ASCII,
        and a header may carry any byte (it was decoded as latin-1 above)."""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return False
        given = key.strip().encode("latin-1")
        return any(hmac.compare_digest(given, k.encode()) for k in self.policy.api_keys)

    @staticmethod
    async def _preflight(send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": [
            *cors, (b"access-control-allow-methods", _CORS_METHODS.encode()),
            (b"access-control-allow-headers", _CORS_HEADERS.encode()),
            (b"access-control-max-age", b"600")]})
        await send({"type": "http.response.body", "body": b""})

    async def _forward(self, scope: Scope, receive: Receive, send: Send,
                       headers: dict[str, str], cors: list[tuple[bytes, bytes]]) -> None:
        limit = self.policy.max_blob if scope["path"].startswith("/api/blobs/") \
            else self.policy.max_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _error(send, 413, PayloadTooLargeError(limit).message, cors, scope["path"])
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # the app's error handlers answer 413
                    raise PayloadTooLargeError(limit)
            return message

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors:
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, limited_receive, send_with_cors)
