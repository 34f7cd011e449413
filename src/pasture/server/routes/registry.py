"""`POST /api/pull` and `POST /api/push`: models to and from an OCI registry.

A streamed pull sends `pulling manifest` before it asks the registry anything, as
Ollama's does, so every registry failure (an unknown model, an unreachable or unsafe
registry) ends a 200 stream with an `{"error": …}` line, which Ollama's clients raise. A
pull that is not streamed answers the failure's own status (404, 400, 502). A plain-http
registry without `insecure` is a 400 either way, refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import ProgressResponse, PullRequest, PushRequest
from pasture.server.state import state_of
from pasture.server.streaming import json_response, ndjson_response, unless_disconnected
from pasture.store import ModelName
from pasture.store.registry import TransferOptions

router = APIRouter()


async def _respond(progress: AsyncIterator[ProgressResponse], stream: bool,
                   request: Request) -> Response:
    """The statuses streamed, or the last one answered; either way a client that leaves
    stops the transfer (its partial download stays, to be resumed)."""
    if stream:
        return await ndjson_response(progress, request)
    return json_response(await unless_disconnected(request, _last(progress)))


async def _last(progress: AsyncIterator[ProgressResponse]) -> ProgressResponse:
    last = None
    async with aclosing(progress):  # type: ignore[type-var]
        async for last in progress:  # noqa: B007 - only the final status is answered
            pass
    assert last is not None
    return last


@router.post("/api/pull")
async def pull(body: PullRequest, request: Request) -> Response:
    from pasture.store.registry.pull import pull_model  # loads httpx: not at start-up

    state = state_of(request)
    name = ModelName.parse(body.model or body.name or "")
    options = TransferOptions(mirrors=state.settings.registry_mirrors)
    return await _respond(pull_model(state.store, name, insecure=bool(body.insecure),
                                     options=options), body.stream, request)


@router.post("/api/push")
async def push(body: PushRequest, request: Request) -> Response:
    from pasture.store.registry.push import push_model  # loads httpx: not at start-up

    store = state_of(request).store
    name = ModelName.parse(body.model or body.name or "")
    return await _respond(push_model(store, name, insecure=bool(body.insecure)), body.stream,
                          request)
