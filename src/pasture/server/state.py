"""What every route shares: settings, the store, its models as requests see them, the
scheduler, and how generations are observed (metrics, traces)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from pasture.config import Settings
from pasture.durations import parse_keep_alive
from pasture.scheduler import Scheduler
from pasture.server.metrics import Metrics
from pasture.server.pipeline.model import Models
from pasture.server.tracing import NO_TRACE, NoTrace, Tracer
from pasture.store import Store


@dataclass
class ServerState:
    settings: Settings
    store: Store
    scheduler: Scheduler
    models: Models = field(init=False)
    metrics: Metrics | None = field(init=False)  # None: PASTURE_METRICS=0
    tracer: Tracer | NoTrace = NO_TRACE  # traces only with OTEL_EXPORTER_OTLP_ENDPOINT

    def __post_init__(self) -> None:
        self.models = Models(self.store)
        self.metrics = Metrics(self.scheduler) if self.settings.metrics else None

    def keep_alive(self, value: float | str | None) -> float:
        """Seconds from a request's keep_alive, or the server default when unset."""
        return self.settings.keep_alive if value is None else parse_keep_alive(value)


def state_of(request: Request) -> ServerState:
    return request.app.state.pasture
