"""`GET /api/cluster/blobs/:digest` (internal, cluster mode only): a blob for a node that
lacks it (`pasture.cluster.fetch`).

Not for clients: it answers only the key this server handed its nodes' agents over Ray
(random per start; the edge lets this path past the API keys, which nodes do not hold),
and 404 on a server without PASTURE_CLUSTER. The digest is validated before it names a
file and the blob is opened without following links, as every store read is. A `Range`
of `bytes=N-` resumes an interrupted fetch; the node verifies the digest itself.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
from collections.abc import AsyncIterator
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pasture.errors import NotFoundError, PastureError
from pasture.server.state import state_of

router = APIRouter()

_CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d+)-")


class ClusterKeyError(PastureError):
    """A fetch without the key the nodes were given (401)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("unauthorized: this endpoint is for the cluster's nodes")


@router.get("/api/cluster/blobs/{digest}")
async def cluster_blob(digest: str, request: Request) -> Response:
    state = state_of(request)
    if state.cluster is None:
        raise NotFoundError("not found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = state.cluster.blob_source.key.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("latin-1"), expected):
        raise ClusterKeyError()
    try:
        blob = await asyncio.to_thread(state.store.blobs.open, digest)  # validates digest
    except FileNotFoundError:
        raise NotFoundError(f'blob "{digest}" not found') from None
    size = os.fstat(blob.fileno()).st_size
    wanted = _RANGE.fullmatch(request.headers.get("range", "").strip())
    start = int(wanted[1]) if wanted else 0
    if start >= size and start:
        blob.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers = {"Content-Length": str(size - start), "Accept-Ranges": "bytes"}
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    return StreamingResponse(_chunks(blob, start), status_code=206 if wanted else 200,
                             headers=headers, media_type="application/octet-stream")


async def _chunks(blob: BinaryIO, start: int) -> AsyncIterator[bytes]:
    """The file from `start`, read in a thread a chunk at a time; closed at the end or
    when the node goes away."""
    try:
        await asyncio.to_thread(blob.seek, start)
        while chunk := await asyncio.to_thread(blob.read, _CHUNK):
            yield chunk
    finally:
        blob.close()
