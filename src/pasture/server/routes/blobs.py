"""`HEAD`/`POST /api/blobs/:digest`: content-addressed uploads for `create`.

The body is hashed while it streams to a temporary file; only a body that matches its
digest is kept. This is how a client hands the server a model file: the server never
opens a path named in a request.
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
    created = await blobs.write_stream(digest, request.stream())
    return Response(status_code=201 if created else 200)
