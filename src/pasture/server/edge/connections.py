"""A cap on open client connections, under the process's open-file limit.

Every connection holds a file descriptor until it closes. Without a cap, a thousand slow
clients exhaust the descriptors (1024 by default on Linux): `accept` fails with EMFILE,
nobody else gets in, and model files and runner pipes cannot be opened either. So:

- at start the soft open-file limit is raised to the hard one, as Go (and so Ollama) does;
- the cap (`PASTURE_MAX_CONNECTIONS`) is lowered to leave half the descriptors to the work
  each connection causes (a runner connection, a blob) and a reserve for the server;
- a connection over the cap is answered at once with a 503 and closed: it never reaches
  the HTTP parser, and is not counted, so refusals cannot pile up.
"""

from __future__ import annotations

import asyncio
import logging
import resource

from pasture.server.edge.timeouts import TimedH11Protocol, raw_reply

log = logging.getLogger("pasture")

FD_RESERVE = 64  # descriptors kept for the server itself (logs, store, listening socket)


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY:
        return soft if hard != soft else 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, fd_limit: int) -> int:
    """The connection cap that fits `fd_limit` descriptors: at most `wanted`, at least 1."""
    return max(1, min(wanted, (fd_limit - FD_RESERVE) // 2))


def refusal(limit: int) -> bytes:
    """The raw reply to a connection over the cap (no request has been parsed to answer)."""
    body = (b'{"error":"server busy: too many open connections (limit %d), '
            b'try again later"}' % limit)
    return raw_reply(b"503 Service Unavailable", b"application/json", body,
                     b"retry-after: 1\r\n")


class CappedH11Protocol(TimedH11Protocol):
    """The timed protocol, refusing connections beyond `max_connections` (0 = no cap)."""

    max_connections: int = 0
    _refused: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self.max_connections and len(self.server_state.connections) >= self.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport
        peer = transport.get_extra_info("peername")
        log.warning("refusing a connection from %s: %d connections open, the limit",
                    peer[0] if peer else "an unknown peer", self.max_connections,
                    extra={"throttle": "connection cap"})
        transport.write(refusal(self.max_connections))
        self.close_after_reply()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._refused:
            super().connection_lost(exc)


def protocol_class(max_connections: int) -> type[CappedH11Protocol]:
    """A CappedH11Protocol subclass with its cap set (see `protocol_with_timeouts`)."""
    return type("CappedH11Protocol", (CappedH11Protocol,), {"max_connections": max_connections})
