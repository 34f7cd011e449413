"""Uploading local files as blobs, shared by both clients.

The server never opens a path named in a request: the client hashes each file, asks
`HEAD /api/blobs/<digest>` whether the server has it, and only if not streams it with
`POST /api/blobs/<digest>`, chunk by chunk from disk, so a multi-gigabyte model is never
held in memory. Progress is reported through a callback so a CLI can draw bars.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

CHUNK_SIZE = 1 << 20

BlobStatus = Literal["hashing", "exists", "uploading", "uploaded"]


@dataclass(frozen=True)
class BlobProgress:
    """One step of getting a local file to the server.

    `hashing` (digest not known yet), then either `exists` (the server already has it)
    or `uploading` (repeated as bytes go out) followed by `uploaded`.
    """

    status: BlobStatus
    path: Path
    total: int
    completed: int = 0
    digest: str | None = None


ProgressCallback = Callable[[BlobProgress], None]


def upload_headers(size: int) -> dict[str, str]:
    # An explicit length keeps httpx from switching to chunked transfer encoding.
    return {"content-type": "application/octet-stream", "content-length": str(size)}


def report(progress: ProgressCallback | None, status: BlobStatus, path: Path, total: int,
           completed: int = 0, digest: str | None = None) -> None:
    """Send one progress event, if anyone listens."""
    if progress is not None:
        progress(BlobProgress(status, path, total, completed, digest))


def read_chunks(file: BinaryIO, path: Path, total: int, digest: str,
                progress: ProgressCallback | None) -> Iterator[bytes]:
    """The file's content in chunks, reporting bytes sent (sync upload body)."""
    sent = 0
    while chunk := file.read(CHUNK_SIZE):
        sent += len(chunk)
        yield chunk
        report(progress, "uploading", path, total, sent, digest)


async def aread_chunks(path: Path, total: int, digest: str,
                       progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    """The file's content in chunks, read in a worker thread (async upload body)."""
    import anyio  # here, so the blocking client (and `pasture list`) never loads it

    sent = 0
    async with await anyio.open_file(path, "rb") as file:
        while chunk := await file.read(CHUNK_SIZE):
            sent += len(chunk)
            yield chunk
            report(progress, "uploading", path, total, sent, digest)
