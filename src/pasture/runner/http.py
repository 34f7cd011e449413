"""A small HTTP/1.1 client for the one peer we fully control: our runner's llama-server.

Every generated token crosses this link, and on a small machine the parent's CPU time
per token is taken straight from the engine's threads. A general client (httpx over
anyio) spent about twice the CPU per token of this plain asyncio stream reader, so the
hot path uses this; it speaks only what llama-server answers: a JSON body, or a chunked
stream of server-sent events. One connection per request, closed at the end — closing
it early is also how a generation is cancelled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

_MAX_HEADER = 64 * 1024


class HTTPError(Exception):
    """llama-server answered with a non-200 status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class RunnerHTTP:
    """POSTs JSON to `http://host:port` and reads JSON or server-sent-event replies;
    `api_key`, when given, goes with every request as `Authorization: Bearer`."""

    def __init__(self, address: str, api_key: str | None = None) -> None:
        host, _, port = address.removeprefix("http://").rstrip("/").rpartition(":")
        self.host, self.port = host, int(port)
        self._authorization = f"Authorization: Bearer {api_key}\r\n" if api_key else ""

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST and return the decoded JSON reply."""
        reader, writer = await self._send(path, body)
        try:
            status, headers = await _read_head(reader)
            data = b"".join([part async for part in _body_parts(reader, headers)])
        finally:
            writer.close()
        if status != 200:
            raise HTTPError(status, data)
        return json.loads(data)

    async def events(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST and yield each `data:` event of the streamed reply, decoded."""
        reader, writer = await self._send(path, body)
        try:
            status, headers = await _read_head(reader)
            if status != 200:
                raise HTTPError(status, b"".join([p async for p in _body_parts(reader, headers)]))
            pending = b""
            async for part in _body_parts(reader, headers):
                pending += part
                *complete, pending = pending.split(b"\n\n")
                for event in complete:
                    if event.startswith(b"data: "):
                        yield json.loads(event[6:])
        finally:
            writer.close()

    async def _send(self, path: str, body: dict[str, Any]
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        payload = json.dumps(body).encode()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"{self._authorization}Connection: close\r\n\r\n".encode() + payload
        )
        await writer.drain()
        return reader, writer


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _MAX_HEADER:
        raise ValueError("response header too large")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _body_parts(reader: asyncio.StreamReader, headers: dict[str, str]
                      ) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive: chunked, sized, or until the peer closes."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            line = await reader.readline()
            if not line:  # the peer closed before the last chunk: it died mid-reply
                raise ConnectionResetError("runner closed the connection mid-reply")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)  # the CRLF after each chunk
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while part := await reader.read(65536):
            yield part
