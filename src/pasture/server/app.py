"""The FastAPI application and `serve()`, which runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic.warnings import UnsupportedFieldAttributeWarning
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from pasture import __version__, engine
from pasture.config import Settings
from pasture.engines.launch import process_launcher
from pasture.errors import PastureError, ServerBusyError
from pasture.runner.prompt_cache import PromptCache
from pasture.scheduler import Scheduler
from pasture.scheduler.placement import Planner
from pasture.scheduler.scheduler import StartRunner
from pasture.server import tracing
from pasture.server.edge.bodies import JSONBodies
from pasture.server.edge.requests import RequestTracking, install_log_context
from pasture.server.edge.security import (
    DEFAULT_ORIGINS,
    EdgeGuard,
    EdgePolicy,
    is_loopback,
    machine_names,
)
from pasture.server.error_shapes import shaped_error
from pasture.server.routes import (
    anthropic,
    blobs,
    cluster,
    embed,
    meta,
    metrics,
    models,
    native,
    nodes,
    openai,
    registry,
    rerank,
    responses,
    tokens,
    ui,
    verify,
)
from pasture.server.state import ServerState
from pasture.server.streaming import error_body
from pasture.store import Store
from pasture.store.prune import prune_at_start

log = logging.getLogger("pasture")
# A request body's model, built on first use (WireModel's `defer_build`), is built inside
# FastAPI's `Body` field, whose `alias` pydantic then flags as meaningless there; it is.
warnings.filterwarnings("ignore", "The 'alias' attribute with value 'body'",
                        UnsupportedFieldAttributeWarning)


def create_app(settings: Settings, start_runner: StartRunner | None = None,
               engine_info: engine.EngineInfo | None = None,
               tracer: tracing.Tracer | None = None) -> FastAPI:
    """The server for `settings`; `start_runner` lets tests supply their own runners, and
    `tracer` their own span exporter (else traces follow OTEL_EXPORTER_OTLP_ENDPOINT)."""
    if start_runner is None and settings.cluster:
        state = cluster_state(settings, tracer)
    else:
        state = local_state(settings, start_runner, engine_info, tracer)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.cluster is not None:
            nodes = await asyncio.to_thread(state.cluster.nodes)
            log.info("cluster %s: %d nodes (%s)", state.cluster.address, len(nodes),
                     ", ".join(f"{n.name} at {n.address}, {n.system_memory >> 20} MiB, "
                               f"{len(n.gpus)} GPUs" for n in nodes))
        else:
            info = state.engine_info
            log.info("engine: xllamacpp %s, %s build", info.version, info.build)
            if state.launcher is not None:
                log.info("%s", state.launcher.summary())
            for gpu in info.gpus:
                log.info("gpu %s: %s, %d MiB total, %d MiB free (read by %s)", gpu.name,
                         gpu.description, gpu.memory_total >> 20, gpu.memory_free >> 20,
                         gpu.memory_source)
        log.info("models: %s", settings.models_dir)
        if not settings.noprune:  # in a thread: a large store must not delay start-up
            threading.Thread(target=prune_at_start, args=(state.store,), name="prune",
                             daemon=True).start()
        yield
        await state.scheduler.close()
        await asyncio.to_thread(state.tracer.shutdown)  # sends what is still batched

    app = FastAPI(title="Pasture", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.pasture = state
    app.add_middleware(JSONBodies)
    app.add_middleware(EdgeGuard, policy=edge_policy(settings))
    install_log_context()
    app.add_middleware(RequestTracking, metrics=state.metrics)  # outermost: sees all answers
    for module in (meta, models, nodes, blobs, cluster, native, registry, verify, tokens):
        app.include_router(module.router)
    for module in (embed, rerank, openai, responses, anthropic, ui):
        app.include_router(module.router)
    if state.metrics is not None:
        app.include_router(metrics.router)

    # Each API family gets errors in its own shape (Ollama's, OpenAI's, Anthropic's),
    # chosen by the request path; the status code is the same for all.
    @app.exception_handler(PastureError)
    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        """Our errors with their status, anything else a logged 500, in the family's shape
        (a full queue says when to retry)."""
        status, body = error_body(exc)
        headers = {"Retry-After": str(exc.retry_after)} \
            if isinstance(exc, ServerBusyError) else None
        return JSONResponse(shaped_error(request.url.path, status, body["error"]),
                            status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = describe_validation_error(exc)
        return JSONResponse(shaped_error(request.url.path, 400, message), status_code=400)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> Response:
        """The client went away, or was dropped for stalling, mid-body: not a server error,
        and there is nobody to answer."""
        return Response(status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Routing and body-reading errors (404, 405, unreadable body) in our shapes."""
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code,
                                                                    str(exc.detail))
        if exc.status_code == 400:
            message = "invalid JSON in request body"
        return JSONResponse(shaped_error(request.url.path, exc.status_code, message),
                            status_code=exc.status_code, headers=exc.headers)

    return app


def local_state(settings: Settings, start_runner: StartRunner | None,
                engine_info: engine.EngineInfo | None,
                tracer: tracing.Tracer | None) -> ServerState:
    """One machine: runners are children of this server, placed on its own devices."""
    refresh = engine.gpu_devices
    launcher = None
    if start_runner is None:
        launcher = process_launcher(settings, prompt_cache=prompt_cache_for(settings))
        start_runner, refresh = launcher.start, launcher.refresh_gpus
        info = engine_info or launcher.machine()
    else:
        info = engine_info or engine.describe()
    return ServerState(
        settings=settings,
        store=Store(settings.models_dir, noprune=settings.noprune),
        scheduler=Scheduler(start_runner, max_loaded=settings.max_loaded_models,
                            max_queue=settings.max_queue,
                            planner=planner_for(settings, info, refresh),
                            queue_timeout=settings.queue_timeout),
        tracer=tracer or tracing.from_env(),
        engine_info=info,
        launcher=launcher,
    )


def cluster_state(settings: Settings, tracer: tracing.Tracer | None) -> ServerState:
    """PASTURE_CLUSTER: runners on the Ray cluster's nodes (Ray is imported only here).
    The loaded-model limit applies per node, in the cluster's planner; a model may run
    on PASTURE_MAX_REPLICAS nodes; a request whose runner is lost before its first token
    is tried once more, on another node."""
    from pasture.cluster.frontend import Cluster

    cluster = Cluster(settings)
    cluster.connect()
    return ServerState(
        settings=settings,
        store=Store(settings.models_dir, noprune=settings.noprune),
        scheduler=Scheduler(cluster.start_runner, max_loaded=sys.maxsize,
                            max_queue=settings.max_queue, planner=cluster.planner,
                            queue_timeout=settings.queue_timeout,
                            max_replicas=settings.max_replicas,
                            replica_after=settings.replica_after),
        tracer=tracer or tracing.from_env(),
        cluster=cluster,
        retries_before_output=1,
    )


def planner_for(settings: Settings, info: engine.EngineInfo,
                refresh: Callable[[], list[engine.Device]]) -> Planner:
    """GPU placement from the engine's devices; fresh GPU readings when there are GPUs."""
    return Planner(info.devices, overhead=settings.gpu_overhead,
                   gpu_limit=settings.gpu_memory_limit, refresh=refresh if info.gpus else None)


def prompt_cache_for(settings: Settings) -> PromptCache | None:
    """Prompt caches kept on disk beside the models (None: PASTURE_PROMPT_CACHE_SIZE=0)."""
    if settings.prompt_cache_size <= 0:
        return None
    return PromptCache(settings.models_dir / "prompt-cache", settings.prompt_cache_size)


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


def edge_policy(settings: Settings) -> EdgePolicy:
    """Host, Origin, API-key and body-size rules for `settings` (see server/edge/security.py)."""
    return EdgePolicy(
        check_host=is_loopback(settings.host.host),
        origins=(*DEFAULT_ORIGINS, *settings.origins),
        api_keys=settings.api_keys,
        max_body=settings.max_body,
        max_blob=settings.max_blob,
        local_names=machine_names(),
    )


def serve(settings: Settings) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    from pasture.server.edge.connections import connection_cap, protocol_class, raise_fd_limit
    from pasture.server.edge.logs import LogThrottle
    from pasture.server.edge.timeouts import protocol_with_timeouts

    install_log_context()  # before any record: the format names `request_id`
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
    )
    for handler in logging.getLogger().handlers:  # uvicorn's loggers propagate here too
        handler.addFilter(LogThrottle())
    fd_limit = raise_fd_limit()
    max_connections = connection_cap(settings.max_connections, fd_limit)
    if max_connections < settings.max_connections:
        log.info("at most %d open connections: the open-file limit is %d", max_connections,
                 fd_limit)
    app = create_app(settings)
    log.info("listening on %s", settings.url)
    if not is_loopback(settings.host.host):
        if settings.api_keys:
            log.info("reachable from other machines; API keys are required")
        else:
            log.warning("LISTENING ON %s WITHOUT API KEYS: anyone who can reach this address "
                        "can use, create and delete your models. Set PASTURE_API_KEYS, or "
                        "bind 127.0.0.1.", settings.url)
    protocol = protocol_with_timeouts(settings.header_timeout, settings.body_timeout,
                                      settings.body_deadline, settings.body_min_rate,
                                      base=protocol_class(max_connections))
    # `/` answers as Ollama does (clients test for its words); the header says who we are
    # TLS as uvicorn serves it (the standard library's ssl): PASTURE_TLS_CERT / _KEY.
    tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)} \
        if settings.tls_cert else {}
    uvicorn.run(app, host=settings.host.host, port=settings.host.port, log_level="warning",
                log_config=None, timeout_graceful_shutdown=5, http=protocol,
                server_header=False, headers=[("server", f"Pasture/{__version__}")], **tls)
