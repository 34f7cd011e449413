"""`/` and `/api/version`: is the server up, and which one is it.

Tools written for Ollama check that `/` says `Ollama is running` and gate features on
`/api/version`, so both answer as the Ollama release Pasture implements does; who we
really are is in the `Server` header (`pasture.server.edge.security`) and in
`/api/version`'s extra `pasture` field.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from pasture import OLLAMA_VERSION, __version__
from pasture.api.ollama import VersionResponse

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def root() -> str:
    return "Ollama is running"


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version() -> dict[str, str]:
    return VersionResponse(version=OLLAMA_VERSION, pasture=__version__).wire()
