"""Server-sent-event responses whose errors keep their status until the first event is out.

The same contract as `streaming.ndjson_response`: the first frame is computed before the
response starts, so an unknown model or a failed load is an ordinary HTTP error in the
API family's shape; a failure after that becomes a final error event, since the status
line has already been sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from pasture.server.streaming import error_body

EVENT_STREAM = "text/event-stream"


def event(data: dict[str, Any] | str, name: str | None = None) -> bytes:
    """One SSE frame: an optional `event:` line and one `data:` line."""
    payload = data if isinstance(data, str) else json.dumps(
        data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


async def sse_response(frames: AsyncIterator[bytes],
                       error_frame: Callable[[int, str], bytes]) -> StreamingResponse:
    """Stream `frames`; `error_frame(status, message)` renders a failure after the start."""
    first = await anext(frames)

    async def body() -> AsyncIterator[bytes]:
        yield first
        try:
            async for frame in frames:
                yield frame
        except Exception as exc:  # the status is sent: report the failure in-band
            status, error = error_body(exc)
            yield error_frame(status, error["error"])
        finally:  # also on client disconnect: ends the generation and frees its runner
            await frames.aclose()  # type: ignore[attr-defined]

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=EVENT_STREAM, headers=headers)
