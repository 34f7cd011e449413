"""The FastAPI application and `serve()`, which runs it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pasture import engine
from pasture.config import Settings
from pasture.errors import PastureError
from pasture.runner.process import ProcessRunner
from pasture.scheduler import Scheduler
from pasture.scheduler.scheduler import StartRunner
from pasture.server.routes import blobs, inference, meta, models
from pasture.server.state import ServerState
from pasture.server.streaming import error_body
from pasture.store import Store

log = logging.getLogger("pasture")


def create_app(settings: Settings, start_runner: StartRunner | None = None,
               engine_info: engine.EngineInfo | None = None) -> FastAPI:
    """The server for `settings`; `start_runner` lets tests supply their own runners."""
    if start_runner is None:
        start_runner = partial(ProcessRunner.start, timeout=settings.load_timeout or None)
    info = engine_info or engine.describe()
    state = ServerState(
        settings=settings,
        store=Store(settings.models_dir),
        scheduler=Scheduler(start_runner, max_loaded=settings.max_loaded_models,
                            max_queue=settings.max_queue),
        auto_gpu_layers=999 if info.gpus else 0,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("engine: xllamacpp %s, %s build", info.version, info.build)
        log.info("models: %s", settings.models_dir)
        yield
        await state.scheduler.close()

    app = FastAPI(title="Pasture", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.pasture = state
    app.add_middleware(JSONBodies)
    for module in (meta, models, blobs, inference):
        app.include_router(module.router)

    @app.exception_handler(PastureError)
    async def pasture_error(_: Request, exc: PastureError) -> JSONResponse:
        status, body = error_body(exc)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation_error(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        status, body = error_body(exc)
        return JSONResponse(body, status_code=status)

    return app


class JSONBodies:
    """Treat every API body as JSON whatever its Content-Type, as Ollama does (`curl -d`
    sends form encoding); blob uploads are raw bytes and keep theirs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api/") and \
                not path.startswith("/api/blobs/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def describe_validation_error(exc: RequestValidationError) -> str:
    """One readable sentence for the first problem pydantic found in a request body."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "invalid JSON in request body"
    if kind == "missing" and not location:
        return "missing request body"
    if kind == "missing":
        return f"{'.'.join(location)} is required"
    field = ".".join(location) or "body"
    return f"invalid value for {field}: {first.get('msg', 'invalid')}"


def serve(settings: Settings) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    log.info("listening on %s", settings.host.url)
    uvicorn.run(app, host=settings.host.host, port=settings.host.port, log_level="warning",
                timeout_graceful_shutdown=5)
