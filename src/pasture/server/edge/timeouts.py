"""Header and body-inactivity timeouts for uvicorn's HTTP/1.1 protocol (slowloris).

uvicorn closes a connection that is idle *between* requests (`timeout_keep_alive`), but a
client that trickles its request head a byte at a time, or announces a body and stops
sending it, holds its connection and task forever; a few hundred such sockets starve
everyone else. This subclass of uvicorn's h11 protocol adds two clocks, as Go's
`ReadHeaderTimeout` and nginx's `client_body_timeout` do:

- the request head must be complete within `header_timeout` of the connection opening
  (or, on a kept-alive connection, of the next request's first byte) — a deadline, not an
  idle timer, so one byte every few seconds does not keep it alive;
- while the request body is being read, the client may not go silent for `body_timeout`.

Either expiry answers 408 (when something was received to answer) and closes the
connection. Nothing is timed once the request is in: a long streamed generation, or a
request waiting in the model queue, is never cut. Time the server itself stalls the
client (reading paused because the app has not consumed the body yet, a pending
`100 Continue`) does not count against it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("pasture")

_TIMEOUT_REPLY = b"request timeout\n"


def protocol_with_timeouts(header_timeout: float,
                           body_timeout: float) -> type[TimedH11Protocol]:
    """An HTTP protocol class for `uvicorn.run(http=...)`; a timeout of 0 (or infinity, as
    the settings read a negative duration) turns that clock off."""
    def limit(seconds: float) -> float:
        return seconds if 0 < seconds < math.inf else 0.0

    return type("TimedH11Protocol", (TimedH11Protocol,),
                {"header_timeout": limit(header_timeout), "body_timeout": limit(body_timeout)})


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a body-inactivity timer."""

    header_timeout: float = 0.0  # seconds; 0 = off (protocol_with_timeouts sets both)
    body_timeout: float = 0.0

    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _last_read: float = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        self._last_read = time.monotonic()
        super().data_received(data)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Start or stop each clock for the phase the request is in now."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._head_timer is None and self.header_timeout > 0:
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)
        else:
            self._cancel_head()
        if state is h11.SEND_BODY:
            if self._body_timer is None and self.body_timeout > 0:
                self._body_timer = self.loop.call_later(self.body_timeout, self._body_check)
        else:
            self._cancel_body()

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info("closing a connection from %s: no complete request head in %g s",
                 _peer(self.client), self.header_timeout)
        if self._last_read:  # part of a request came in: say why it goes unanswered
            # h11 cannot answer a request it has not parsed, so the reply is written raw.
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (len(_TIMEOUT_REPLY), _TIMEOUT_REPLY))
        self.transport.close()

    def _body_check(self) -> None:
        """Fire only after `body_timeout` of client silence; re-arm otherwise."""
        self._body_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        now = time.monotonic()
        if self.flow.read_paused or (self.cycle and self.cycle.waiting_for_100_continue):
            self._last_read = now  # we are the ones holding the client up
        remaining = self._last_read + self.body_timeout - now
        if remaining > 0:
            self._body_timer = self.loop.call_later(remaining, self._body_check)
            return
        log.info("closing a connection from %s: request body stalled for %g s",
                 _peer(self.client), self.body_timeout)
        self._abandon_request()

    def _abandon_request(self) -> None:
        """Answer 408 if no response has started, close, and let the app see a disconnect."""
        cycle = self.cycle
        if self.conn.our_state is h11.SEND_RESPONSE and not (cycle and cycle.response_started):
            headers = [(b"content-type", b"text/plain; charset=utf-8"),
                       (b"content-length", b"%d" % len(_TIMEOUT_REPLY)),
                       (b"connection", b"close")]
            self.transport.write(self.conn.send(h11.Response(
                status_code=408, headers=headers, reason=b"Request Timeout")))
            self.transport.write(self.conn.send(h11.Data(data=_TIMEOUT_REPLY)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        if cycle is not None:  # the app's receive() returns http.disconnect; its sends are dropped
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"
