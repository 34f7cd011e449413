"""`POST /api/verify`, beyond Ollama: check stored blobs, and repair them from a registry.

It streams like a pull (see pasture.store.verify for why it is a server endpoint); an
unknown model is a 404 before any output. A model whose blobs were repaired is unloaded,
so the next request maps the repaired file rather than the damaged one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import VerifyRequest, VerifyResponse
from pasture.server.state import ServerState, state_of
from pasture.server.streaming import json_response, ndjson_response
from pasture.store.verify import verify_models

router = APIRouter()


@router.post("/api/verify")
async def verify(body: VerifyRequest, request: Request) -> Response:
    state = state_of(request)
    progress = _unloading_repaired(state, verify_models(
        state.store, body.models or [], repair=body.repair, insecure=bool(body.insecure)))
    if body.stream:
        return await ndjson_response(progress, request)
    lines = [line async for line in progress]
    return json_response(lines[-1])


async def _unloading_repaired(state: ServerState, lines: AsyncIterator[VerifyResponse]
                              ) -> AsyncIterator[VerifyResponse]:
    async for line in lines:
        for check in line.models or []:
            if check.state == "repaired":
                await state.scheduler.unload(check.model)
        yield line
