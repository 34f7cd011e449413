"""`/` and `/api/version`: is the server up, and which one is it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from pasture import __version__
from pasture.api.ollama import VersionResponse

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def root() -> str:
    return "Pasture is running"


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version() -> dict[str, str]:
    return VersionResponse(version=__version__).wire()
