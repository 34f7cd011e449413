"""Streamed answers, in two framings: NDJSON (Ollama's) and server-sent events (OpenAI's
and Anthropic's). One contract for both:

- the first item is computed before the response starts, so failures up to then
  (unknown model, failed load) are ordinary HTTP errors with their status; a client that
  leaves meanwhile cancels the work (`unless_disconnected`);
- a failure after that is reported in-band, in the framing's error shape: a final
  `{"error": ...}` line for NDJSON, as in Ollama, or the family's error event for SSE;
- however the response ends, client disconnect included, the item iterator is closed at
  once, which cancels the engine request and frees the runner's slot.

Whole JSON answers go out here too: `json_response`, and `spliced_json` for an answer
holding thousands of vectors, encoded one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic_core
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from pasture.errors import ClientClosedError, PastureError
from pasture.server.edge.requests import note_error

log = logging.getLogger(__name__)
T = TypeVar("T")

NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"


def dump(item: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", exclude_none=True, by_alias=True)
    return item


def error_body(exc: BaseException) -> tuple[int, dict[str, str]]:
    """Status and body for an error; unexpected exceptions are logged, never shown."""
    if isinstance(exc, PastureError):
        return exc.status, {"error": exc.message}
    log.exception("unexpected error", exc_info=exc)
    return 500, {"error": "internal server error"}


@dataclass(frozen=True)
class Framing:
    """How items become bytes on the wire, and how a late failure is told."""

    media_type: str
    frame: Callable[[Any], bytes]
    error: Callable[[int, str], bytes]  # (status, message) → the in-band error frame
    headers: dict[str, str] = field(default_factory=dict)


def json_line(obj: BaseModel | dict[str, Any]) -> bytes:
    return json.dumps(dump(obj), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


NDJSON_FRAMING = Framing(NDJSON, json_line, lambda status, message: json_line({"error": message}))


def event(data: dict[str, Any] | str, name: str | None = None) -> bytes:
    """One SSE frame: an optional `event:` line and one `data:` line."""
    payload = data if isinstance(data, str) else json.dumps(
        data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


def sse_framing(error_frame: Callable[[int, str], bytes]) -> Framing:
    """SSE whose items are frames already (`event(...)`); `error_frame` is the family's."""
    return Framing(EVENT_STREAM, lambda frame: frame, error_frame,
                   {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body iterator however the response ends.

    When a client disconnects, Starlette abandons the iterator without closing it; left
    to the garbage collector, the generation it drives would go on burning a runner
    slot. Closing it at once cancels the engine request and releases the runner.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


async def stream(items: AsyncIterator[Any], framing: Framing,
                 request: Request | None = None) -> StreamingResponse:
    """Stream `items` in `framing`, raising (for a normal error response) if the first
    fails; with `request`, a client that leaves before it is ready cancels the work."""
    try:
        first = await unless_disconnected(request, anext(items))
    except BaseException:
        await items.aclose()  # type: ignore[attr-defined]
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield framing.frame(first)
            async for item in items:
                yield framing.frame(item)
        except Exception as exc:  # the status is sent: report the failure in-band
            status, error = error_body(exc)
            note_error(error["error"])
            yield framing.error(status, error["error"])
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    return ClosingStreamingResponse(body(), media_type=framing.media_type,
                                    headers=framing.headers)


async def unless_disconnected(request: Request | None, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`, but give up as soon as the client disconnects.

    A request waiting in the queue or for a model to load has sent nothing yet, so no
    write can fail to tell us the client left; without this it would still load the
    model and generate an answer nobody reads. Ollama answers such requests 499.
    """
    work = asyncio.ensure_future(awaitable)
    if request is None:
        return await work
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not work.done():
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        raise ClientClosedError()
    return work.result()


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body has been read: only that can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def ndjson_response(items: AsyncIterator[BaseModel | dict[str, Any]],
                          request: Request | None = None) -> StreamingResponse:
    """Stream `items` as NDJSON (Ollama's streaming)."""
    return await stream(items, NDJSON_FRAMING, request)


def json_response(item: BaseModel | dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(dump(item), status_code=status)


def spliced_json(shell: BaseModel, key: str, items: Iterable[BaseModel | list[float]]
                 ) -> Response:
    """`shell` as a JSON response with its empty list `key` filled with `items`, encoded
    one item at a time.

    Run in a thread, this lets the event loop in between items; encoding a thousand
    576-float vectors in one call held the GIL (and stalled every other client) for
    0.5 s with `json.dumps`, 0.06 s with pydantic, growing with the vectors.
    """
    text = shell.model_dump_json(exclude_none=True, by_alias=True).encode()
    empty = f'"{key}":[]'.encode()
    end = text.index(empty) + len(empty) - 1  # at the list's closing bracket
    parts = [text[:end]]
    for index, item in enumerate(items):
        if index:
            parts.append(b",")
        parts.append(item.model_dump_json(exclude_none=True, by_alias=True).encode()
                     if isinstance(item, BaseModel)
                     else pydantic_core.to_json(item, inf_nan_mode="null"))
    parts.append(text[end:])
    return Response(b"".join(parts), media_type="application/json")
