"""Header and body-inactivity timeouts for uvicorn's HTTP/1.1 protocol (slowloris).

uvicorn closes a connection that is idle *between* requests (`timeout_keep_alive`), but a
client that trickles its request head a byte at a time, or announces a body and stops
sending it, holds its connection and task forever; a few hundred such sockets starve
everyone else. This subclass of uvicorn's h11 protocol adds two clocks, as Go's
`ReadHeaderTimeout` and nginx's `client_body_timeout` do:

- the request head must be complete within `header_timeout` of the connection opening
  (or, on a kept-alive connection, of the next request's first byte) — a deadline, not an
  idle timer, so one byte every few seconds does not keep it alive;
- while the request body is being read, the client may not go silent for `body_timeout`;
- nor may the body take longer than `body_deadline` plus one second per `body_min_rate`
  bytes received (Apache's mod_reqtimeout `body=…,MinRate=…`): a client trickling a byte
  every few seconds never goes silent, but is cut at the deadline, while a large upload
  at any useful speed earns the time it needs.

Any expiry answers 408 (when something was received to answer) and closes the
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
_CHECK_EVERY = 1.0  # seconds between body checks: how finely server-side pauses are excused
LINGER = 1.0  # seconds a connection stays half-closed after its last reply


def clock(seconds: float) -> float:
    """A timeout as the protocol takes it: 0 (or infinity, as the settings read a negative
    duration) turns that clock off."""
    return seconds if 0 < seconds < math.inf else 0.0


def protocol_with_timeouts(header_timeout: float, body_timeout: float,
                           body_deadline: float = 0.0, body_min_rate: float = 0.0,
                           base: type[TimedH11Protocol] | None = None
                           ) -> type[TimedH11Protocol]:
    """An HTTP protocol class for `uvicorn.run(http=...)` (a subclass of `base`)."""
    return type("TimedH11Protocol", (base or TimedH11Protocol,),
                {"header_timeout": clock(header_timeout), "body_timeout": clock(body_timeout),
                 "body_deadline": clock(body_deadline), "body_min_rate": max(0.0, body_min_rate)})


def raw_reply(status: bytes, content_type: bytes, body: bytes,
              headers: bytes = b"") -> bytes:
    """A whole HTTP/1.1 reply that closes the connection, for the moments h11 cannot
    answer (no request parsed yet, or none to be)."""
    return (b"HTTP/1.1 %s\r\ncontent-type: %s\r\n%scontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, content_type, headers, len(body), body))


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a body-inactivity timer."""

    header_timeout: float = 0.0  # seconds; 0 = off (protocol_with_timeouts sets them)
    body_timeout: float = 0.0
    body_deadline: float = 0.0
    body_min_rate: float = 0.0  # bytes a second that each earn the body more time

    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _last_read: float = 0.0
    _in_body: bool = False
    _body_started: float = 0.0
    _body_bytes: int = 0
    _excused: float = 0.0  # seconds the server itself held the body up
    _checked_at: float = 0.0
    _draining: bool = False  # a last reply is written: what the client sends is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        self._last_read = time.monotonic()
        if self._in_body:
            self._body_bytes += len(data)
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
            if not self._in_body:
                self._start_body_clocks()
        else:
            self._cancel_body()

    def _start_body_clocks(self) -> None:
        self._in_body = True
        now = time.monotonic()
        self._body_started = self._checked_at = now
        self._body_bytes, self._excused = 0, 0.0
        if self.body_timeout > 0 or self.body_deadline > 0:
            self._body_timer = self.loop.call_later(
                min(_CHECK_EVERY, *(c for c in (self.body_timeout, self.body_deadline) if c)),
                self._body_check)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info("closing a connection from %s: no complete request head in %g s",
                 _peer(self.client), self.header_timeout, extra={"throttle": "slow head"})
        if self._last_read:  # part of a request came in: say why it goes unanswered
            # h11 cannot answer a request it has not parsed, so the reply is written raw.
            self.transport.write(raw_reply(b"408 Request Timeout",
                                           b"text/plain; charset=utf-8", _TIMEOUT_REPLY))
        self.close_after_reply()

    def _body_check(self) -> None:
        """Drop the request after `body_timeout` of client silence or past the body's
        deadline; re-arm otherwise."""
        self._body_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        now = time.monotonic()
        if self.flow.read_paused or (self.cycle and self.cycle.waiting_for_100_continue):
            self._last_read = now  # we are the ones holding the client up
            self._excused += now - self._checked_at
        self._checked_at = now
        idle_left = self._last_read + self.body_timeout - now if self.body_timeout else math.inf
        if idle_left <= 0:
            log.info("closing a connection from %s: request body stalled for %g s",
                     _peer(self.client), self.body_timeout, extra={"throttle": "stalled body"})
            self._abandon_request()
            return
        deadline_left = self._body_deadline_at() - now
        if deadline_left <= 0:
            log.info("closing a connection from %s: request body too slow (%d bytes in %.0f s)",
                     _peer(self.client), self._body_bytes, now - self._body_started,
                     extra={"throttle": "slow body"})
            self._abandon_request()
            return
        self._body_timer = self.loop.call_later(min(idle_left, deadline_left, _CHECK_EVERY),
                                                self._body_check)

    def _body_deadline_at(self) -> float:
        """When the body must be in: the deadline, plus a second per `body_min_rate` bytes
        received, plus the time the server held it up."""
        if not self.body_deadline:
            return math.inf
        earned = self._body_bytes / self.body_min_rate if self.body_min_rate else 0.0
        return self._body_started + self.body_deadline + earned + self._excused

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
        self.close_after_reply()

    def close_after_reply(self) -> None:
        """Close so that the client reads the reply just written: closing with its bytes
        unread would send a reset, which can destroy the reply in flight. So half-close,
        drop what it still sends, and close when it does or `LINGER` s later."""
        self._draining = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"
