"""`GET /metrics`: the server's Prometheus metrics (see server/metrics.py); the route
exists only when metrics are on (PASTURE_METRICS), and needs an API key when keys are set,
as every route does."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.server.metrics import CONTENT_TYPE
from pasture.server.state import state_of

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    exported = state_of(request).metrics
    assert exported is not None  # the route is only mounted with metrics on
    return Response(exported.exposition(), media_type=CONTENT_TYPE)
