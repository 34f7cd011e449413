"""How much memory an RPC worker's devices have free, asked over ggml's RPC protocol.

The protocol (`ggml_rpc/src/ggml-rpc/ggml-rpc.cpp`): a client's first command is HELLO,
answered with the server's version; then each command is one byte, a little-endian
64-bit size and that many bytes, answered with a 64-bit size and the reply. A worker
serves one client at a time, so this client says hello, asks, and disconnects before a
runner connects; a worker that holds a runner does not answer until the runner leaves
(hence the timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

PROTOCOL_MAJOR = 8  # RPC_PROTO_MAJOR_VERSION of the vendored backend
_HELLO, _GET_DEVICE_MEMORY, _DEVICE_COUNT = 14, 11, 15  # enum rpc_cmd
_CAPS = 24  # RPC_CONN_CAPS_SIZE: none offered, so the connection stays plain TCP
MAX_DEVICES = 64  # more than any machine offers: a larger count is not a worker talking


class WorkerUnanswered(Exception):
    """The worker did not answer as ggml's RPC server does (or not in time)."""


@dataclass(frozen=True)
class DeviceMemory:
    free: int
    total: int


async def device_memory(endpoint: str, timeout: float = 3.0) -> list[DeviceMemory]:
    """The free and total memory of each device the worker at `endpoint` offers."""
    host, _, port = endpoint.rpartition(":")
    try:
        return await asyncio.wait_for(_ask(host, int(port)), timeout)
    except TimeoutError:
        raise WorkerUnanswered(f"RPC worker {endpoint} did not answer within {timeout:g} s "
                               "(it serves one runner at a time)") from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise WorkerUnanswered(f"RPC worker {endpoint}: "
                               f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None


async def _ask(host: str, port: int) -> list[DeviceMemory]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        major, minor, patch = struct.unpack_from(
            "<BBB", await _command(reader, writer, _HELLO, bytes(_CAPS), 4 + _CAPS))
        if major != PROTOCOL_MAJOR:
            raise WorkerUnanswered(f"RPC worker {host}:{port} speaks protocol "
                                   f"{major}.{minor}.{patch}, not {PROTOCOL_MAJOR}.x")
        (count,) = struct.unpack("<I", await _command(reader, writer, _DEVICE_COUNT, b"", 4))
        if count > MAX_DEVICES:
            raise WorkerUnanswered(f"RPC worker {host}:{port} claims {count} devices")
        memory = []
        for device in range(count):
            free, total = struct.unpack("<QQ", await _command(
                reader, writer, _GET_DEVICE_MEMORY, struct.pack("<I", device), 16))
            memory.append(DeviceMemory(free, total))
        return memory
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: int,
                   request: bytes, reply_size: int) -> bytes:
    """One command and its reply, which must be `reply_size` bytes."""
    writer.write(struct.pack("<BQ", command, len(request)) + request)
    await writer.drain()
    (size,) = struct.unpack("<Q", await reader.readexactly(8))
    if size != reply_size:
        raise WorkerUnanswered(f"an RPC reply of {size} bytes where {reply_size} were due")
    return await reader.readexactly(size)
