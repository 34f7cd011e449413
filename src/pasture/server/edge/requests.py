"""Every request gets an id, one log line when it is done, and a count in the metrics.

The id is the client's `X-Request-Id` when it sent a sane one (1–128 visible ASCII
characters: it goes into log lines and a response header, so nothing else may pass),
else a fresh one. It is echoed in the response's `X-Request-Id`, and every log record
made while the request runs carries it as `record.request_id` (a context variable read by
the log record factory, so records of any logger, the engine's and the scheduler's
included, carry it; "-" outside requests). When the request is done, one INFO line on
the `pasture.request` logger says what it was: method, path, status, duration, and the
model and token counts of a generation.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasture.server.metrics import Metrics

log = logging.getLogger("pasture.request")

MAX_REQUEST_ID = 128
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_REQUEST_ID)
_HEADER = b"x-request-id"


@dataclass
class RequestInfo:
    """What is known of the request being served; routes add the model and tokens."""

    request_id: str
    model: str | None = None
    prompt_tokens: int | None = None
    eval_tokens: int | None = None
    error: str | None = None  # why it failed, answered or sent in-band in a stream


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "pasture_request", default=None)


def current_request() -> RequestInfo | None:
    """The request this code runs for (None outside one)."""
    return _current.get()


def note_generation(model: str, prompt_tokens: int, eval_tokens: int) -> None:
    """Tell the request's log line which model answered and how many tokens it took."""
    info = _current.get()
    if info is not None:
        info.model = model
        info.prompt_tokens = (info.prompt_tokens or 0) + prompt_tokens
        info.eval_tokens = (info.eval_tokens or 0) + eval_tokens


def note_error(message: str) -> None:
    """Tell the request's log line why it failed (the message the client got)."""
    info = _current.get()
    if info is not None:
        info.error = message


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-Id if sane, else a new one (32 hex digits)."""
    for name, value in headers:
        if name == _HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def install_log_context() -> None:
    """Make every log record carry `request_id` (once per process)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "pasture_request_id", False):
        return

    def with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        info = _current.get()
        record.request_id = info.request_id if info is not None else "-"
        return record

    with_request_id.pasture_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(with_request_id)


class RequestTracking:
    """The outermost ASGI middleware: id, log line and HTTP metrics for every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = RequestInfo(request_id_from(scope["headers"]))
        token = _current.set(info)
        header = (_HEADER, info.request_id.encode("ascii"))
        status = 500  # what the client gets when the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._done(scope, info, status, time.perf_counter() - started)
            _current.reset(token)

    def _done(self, scope: Scope, info: RequestInfo, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"  # bounded label values
        if self.metrics is not None:
            self.metrics.http_request(scope["method"], template, status)
        extra = ""
        if info.model is not None:
            extra = (f" model={info.model} prompt_tokens={info.prompt_tokens} "
                     f"eval_tokens={info.eval_tokens}")
        if status >= 400 or info.error is not None:  # a failure says why, at WARN
            extra += f' error="{printable(info.error or "")}"'
            log.warning("%s %s %d %.3fs%s", scope["method"], printable(scope["path"]),
                        status, seconds, extra)
            return
        log.info("%s %s %d %.3fs%s", scope["method"], printable(scope["path"]), status,
                 seconds, extra)


def printable(text: str, limit: int = 200) -> str:
    """`text` safe for one log line: escapes instead of control characters, bounded."""
    text = text[:limit]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
