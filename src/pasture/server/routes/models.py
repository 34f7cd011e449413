"""Local model management: `/api/tags`, `show`, `create`, `copy`, `delete`, `ps`."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import (
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    ListModel,
    ListResponse,
    ModelDetails,
    ProcessModel,
    ProcessResponse,
    ProgressResponse,
    ShowRequest,
)
from pasture.cluster.nodes import node_name
from pasture.errors import PastureError
from pasture.rpc import split
from pasture.scheduler.placement import Placement
from pasture.server.state import state_of
from pasture.server.streaming import json_response, ndjson_response, unless_disconnected
from pasture.store import ModelName
from pasture.store.create import create_model
from pasture.store.model import load_local_model
from pasture.store.quantize import settings_for
from pasture.store.registry import TransferOptions
from pasture.store.show import show_model

log = logging.getLogger(__name__)
router = APIRouter()

# What Ollama reports as the expiry of a model kept forever (now + Go's max duration).
_FOREVER = timedelta(seconds=(2**63 - 1) / 1e9)


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def list_models(request: Request) -> Response:
    store = state_of(request).store
    models = []
    for name in await asyncio.to_thread(store.manifests.list):
        try:
            model = await asyncio.to_thread(load_local_model, store, name)
        except (PastureError, OSError) as exc:  # one broken model must not hide the others
            log.warning("skipping %s: %s", name.display, exc)
            continue
        models.append(ListModel(name=name.display, model=name.display,
                                modified_at=model.modified_at, size=model.size,
                                digest=model.digest, details=model.details))
    models.sort(key=lambda m: m.modified_at, reverse=True)
    return json_response(ListResponse(models=models))


@router.post("/api/show")
async def show(body: ShowRequest, request: Request) -> Response:
    model = await state_of(request).models.resolve(body.model or body.name)
    return json_response(await asyncio.to_thread(show_model, model.local, verbose=body.verbose))


@router.post("/api/create")
async def create(body: CreateRequest, request: Request) -> Response:
    state = state_of(request)
    name = ModelName.parse(body.model or body.name or "")
    settings = state.settings
    quantizing = settings_for(settings.engines_dir, settings.num_threads,
                              settings.runner_memory_limit)
    progress = create_model(state.store, name, body, quantizing,
                            TransferOptions(mirrors=settings.registry_mirrors))
    if body.stream:
        return await ndjson_response(progress, request)
    # A client that leaves stops the work: no more GGUF parsing, no manifest written.
    statuses = await unless_disconnected(request, _collect(progress))
    return json_response(statuses[-1])


async def _collect(progress: AsyncIterator[ProgressResponse]) -> list[ProgressResponse]:
    return [status async for status in progress]


@router.post("/api/copy")
async def copy(body: CopyRequest, request: Request) -> Response:
    store = state_of(request).store
    source, destination = ModelName.parse(body.source), ModelName.parse(body.destination)
    await asyncio.to_thread(store.copy, source, destination)
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete(body: DeleteRequest, request: Request) -> Response:
    state = state_of(request)
    name = ModelName.parse(body.model or body.name or "")
    await asyncio.to_thread(state.store.delete_model, name)
    await state.scheduler.unload(name.display)
    return Response(status_code=200)


@router.get("/api/ps")
async def ps(request: Request) -> Response:
    state = state_of(request)
    now = datetime.now(UTC)
    models = []
    for loaded in state.scheduler.loaded():
        try:  # the manifest is read (if changed) off the loop
            _, model = await asyncio.to_thread(state.models.local, loaded.key)
            details = model.details
        except (PastureError, OSError):  # deleted while loaded
            details = ModelDetails()
        expires = (now + _FOREVER if math.isinf(loaded.expires_at)
                   else datetime.fromtimestamp(loaded.expires_at, UTC))
        models.append(ProcessModel(
            name=loaded.key, model=loaded.key, size=loaded.size, digest=loaded.digest,
            details=details, expires_at=expires, size_vram=loaded.size_vram,
            context_length=loaded.spec.num_ctx, engine=loaded.runner.engine,
            running=loaded.running, waiting=len(loaded.waiting),
            node=node_name(loaded.placement.node) if loaded.placement.node else None,
            split=split.describe(loaded.runner.spec, _split_names(loaded.placement)),
        ))
    return json_response(ProcessResponse(models=models))


def _split_names(placement: Placement) -> list[str] | None:
    """The nodes a model split over a cluster is on (lenders, then its own): shown by
    name; None on one machine, whose workers are shown by address."""
    if not placement.lent or placement.node is None:
        return None
    return [*(node_name(node) for node, _ in placement.lent), node_name(placement.node)]
