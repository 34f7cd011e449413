"""What every route shares: settings, the store, its models as requests see them, the
scheduler, and how generations are observed (metrics, traces)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from pasture import engine
from pasture.config import Settings
from pasture.durations import parse_keep_alive
from pasture.runner.base import LoadSpec
from pasture.scheduler import Scheduler
from pasture.scheduler.scheduler import Lease, OnQueued
from pasture.server.metrics import Metrics
from pasture.server.pipeline.model import Models, ResolvedModel
from pasture.server.tracing import NO_TRACE, NoTrace, Tracer
from pasture.store import Store

if TYPE_CHECKING:  # Ray is imported in cluster mode only
    from pasture.cluster.frontend import Cluster
    from pasture.engines.launch import EngineLauncher


@dataclass
class ServerState:
    settings: Settings
    store: Store
    scheduler: Scheduler
    models: Models = field(init=False)
    metrics: Metrics | None = field(init=False)  # None: PASTURE_METRICS=0
    tracer: Tracer | NoTrace = NO_TRACE  # traces only with OTEL_EXPORTER_OTLP_ENDPOINT
    # This machine's engine and devices (one machine), or the Ray cluster (PASTURE_CLUSTER).
    engine_info: engine.EngineInfo = field(default_factory=lambda: engine.EngineInfo(""))
    launcher: EngineLauncher | None = None
    cluster: Cluster | None = None
    # Times a generation is started again when its runner is lost before any output
    # (a cluster places it on another node; one machine would only crash again).
    retries_before_output: int = 0

    def __post_init__(self) -> None:
        self.models = Models(self.store)
        self.metrics = Metrics(self.scheduler) if self.settings.metrics else None

    def keep_alive(self, value: float | str | None) -> float:
        """Seconds from a request's keep_alive, or the server default when unset."""
        return self.settings.keep_alive if value is None else parse_keep_alive(value)

    def lease(self, model: ResolvedModel, spec: LoadSpec, keep_alive: float,
              on_queued: OnQueued | None = None, *, slot: bool = True,
              affinity: str | None = None) -> AbstractAsyncContextManager[Lease]:
        """`model`'s runner loaded as `spec`, and one of its slots unless `slot` is false
        (`Scheduler.lease`, keyed by the model's name and file; `affinity`: the prompt's
        prefix, for choosing among replicas)."""
        return self.scheduler.lease(model.display, model.local.digest, spec, keep_alive,
                                    model.local.size, on_queued, slot=slot,
                                    affinity=affinity)


def state_of(request: Request) -> ServerState:
    return request.app.state.pasture
