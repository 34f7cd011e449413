"""NDJSON responses whose errors keep their status code until the first line is out.

A route builds an async iterator of wire objects. Its first item is computed before the
response starts, so failures up to then (unknown model, load failure) are ordinary
HTTP errors; a failure after that becomes a final `{"error": ...}` line, as in Ollama.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from pasture.errors import ClientClosedError, PastureError

log = logging.getLogger(__name__)
T = TypeVar("T")

NDJSON = "application/x-ndjson"


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


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body iterator however the response ends.

    When a client disconnects, Starlette abandons the iterator without closing it; left
    to the garbage collector, the generation it drives would go on burning a runner
    slot. Closing it at once cancels the engine request and releases the runner.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


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
    """Stream `items` as NDJSON, raising (for a normal error response) if the first fails.

    With `request`, a client that leaves before the first item is ready cancels the work.
    """
    try:
        first = await unless_disconnected(request, anext(items))
    except BaseException:
        await items.aclose()  # type: ignore[attr-defined]
        raise

    async def lines() -> AsyncIterator[bytes]:
        try:
            yield _line(dump(first))
            async for item in items:
                yield _line(dump(item))
        except Exception as exc:  # after the first line only an error line can be sent
            yield _line(error_body(exc)[1])
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    return ClosingStreamingResponse(lines(), media_type=NDJSON)


def json_response(item: BaseModel | dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(dump(item), status_code=status)


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
