"""`HEAD`/`POST /api/blobs/:digest`: content-addressed uploads for `create`.

The body is hashed while it streams to a temporary file; only a body that matches its
digest is kept. This is how a client hands the server a model file: the server never
opens a path named in a request. A body larger than the free space is refused (507)
from its Content-Length, before any of it is read.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pasture.server.state import state_of

router = APIRouter()


@router.head("/api/blobs/{digest}")
async def blob_exists(digest: str, request: Request) -> Response:
    blobs = state_of(request).store.blobs
    return Response(status_code=200 if blobs.exists(digest) else 404)


@router.post("/api/blobs/{digest}")
async def upload_blob(digest: str, request: Request) -> Response:
    blobs = state_of(request).store.blobs
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else None
    created = await blobs.write_stream(digest, request.stream(), size=size)
    return Response(status_code=201 if created else 200)
