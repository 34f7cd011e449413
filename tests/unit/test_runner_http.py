"""The runner link's HTTP client against a real socket server speaking llama-server's shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from pasture.runner.http import HTTPError, RunnerHTTP

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_events_are_decoded_across_chunk_boundaries() -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = sse({"content": "a"}) + sse({"content": "b", "stop": True})
        writer.write(HEAD + chunk(stream[:7]) + chunk(stream[7:30]) + chunk(stream[30:])
                     + b"0\r\n\r\n")

    async def scenario() -> list[dict]:
        server, url = await serve(handler)
        async with server:
            return [e async for e in RunnerHTTP(url).events("/completion", {"prompt": "x"})]

    assert asyncio.run(scenario()) == [{"content": "a"}, {"content": "b", "stop": True}]


def test_a_connection_dropped_mid_stream_is_an_error_not_an_end() -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(sse({"content": "a"})))  # no terminating chunk

    async def scenario() -> list[dict]:
        server, url = await serve(handler)
        async with server:
            return [e async for e in RunnerHTTP(url).events("/completion", {})]

    with pytest.raises(ConnectionResetError):
        asyncio.run(scenario())


def test_json_replies_and_error_statuses() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = json.dumps({"error": {"message": "bad"}}).encode()
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    async def scenario() -> None:
        server, url = await serve(handler)
        async with server:
            await RunnerHTTP(url).post("/tokenize", {"content": "x"})

    with pytest.raises(HTTPError) as caught:
        asyncio.run(scenario())
    assert caught.value.status == 400 and b"bad" in caught.value.body
