"""Optional OpenTelemetry traces of generations, sent over OTLP/HTTP.

On only when the environment names a collector (`OTEL_EXPORTER_OTLP_ENDPOINT`, which the
exporter itself reads with the other `OTEL_*` variables) and the SDK is installed
(`pip install 'pasture[otel]'`). Off, the server gets `NO_TRACE`, whose methods do
nothing, and `opentelemetry` is never imported: a server without a collector pays nothing.

A generation is one `pasture.generation` span with a child per phase: `load`,
`queue_wait`, `prompt_render`, `prefill` and `decode`. The phases are recorded after the
fact from `time.perf_counter()` stamps the pipeline takes anyway, with explicit start and
end times: the spans never become the current context, which an async generator could
not restore across its `yield`s, and nothing is recorded per token.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pasture.runner.base import EngineDone

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

log = logging.getLogger("pasture.tracing")

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
EXTRA = "pip install 'pasture[otel]'"


def from_env(environ: Mapping[str, str] = os.environ) -> Tracer | NoTrace:
    """The server's tracer: exporting over OTLP when `environ` names an endpoint and the
    SDK is importable, else `NO_TRACE` (with one warning when only the SDK is missing)."""
    if not environ.get(ENDPOINT):
        return NO_TRACE
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("%s is set but the OpenTelemetry SDK or its OTLP exporter is not "
                    "installed: no traces (%s)", ENDPOINT, EXTRA)
        return NO_TRACE
    service = environ.get("OTEL_SERVICE_NAME") or "pasture"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracer(provider)


class Tracer:
    """Traces generations into `provider` (tests give one with an in-memory exporter)."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.trace import set_span_in_context
        self.provider = provider
        self._tracer = provider.get_tracer("pasture")
        self._in_context = set_span_in_context

    def generation(self, model: str, started: float, request_id: str | None
                   ) -> GenerationTrace:
        """The trace of one generation of `model`, which arrived at `started`."""
        attributes: dict[str, Any] = {"gen_ai.request.model": model}
        if request_id is not None:
            attributes["pasture.request_id"] = request_id
        # one offset from perf_counter to the epoch for all its spans: they nest exactly
        epoch = time.time_ns() - int(time.perf_counter() * 1e9)
        span = self._tracer.start_span("pasture.generation", attributes=attributes,
                                       start_time=epoch + int(started * 1e9))
        return GenerationTrace(self, span, epoch)

    def shutdown(self) -> None:
        self.provider.shutdown()

    def child(self, parent: Span, name: str, start: int, end: int,
              attributes: dict[str, Any]) -> None:
        """A finished span under `parent` from `start` to `end` (ns since the epoch)."""
        span = self._tracer.start_span(name, context=self._in_context(parent),
                                       attributes=attributes, start_time=start)
        span.end(end_time=end)


class GenerationTrace:
    """One generation's span and its phases, each recorded once it is over."""

    __slots__ = ("_tracer", "_span", "_epoch", "_finished")

    def __init__(self, tracer: Tracer, span: Span, epoch: int) -> None:
        self._tracer = tracer
        self._span = span
        self._epoch = epoch  # perf_counter 0 in ns since the epoch
        self._finished = False

    def phase(self, name: str, start: float, end: float, **attributes: Any) -> None:
        """A child span from `start` to `end` (perf_counter stamps)."""
        self._tracer.child(self._span, name, self._epoch + int(start * 1e9),
                           self._epoch + int(end * 1e9), attributes)

    def leased(self, asked: float, load_seconds: float, got: float) -> None:
        """The runner and a slot came: a load first when there was one, then the wait
        for a slot (the scheduler loads before it queues)."""
        if load_seconds > 0:
            self.phase("load", asked, asked + load_seconds)
        self.phase("queue_wait", asked + load_seconds, got)

    def finished(self, done: EngineDone, sent: float, first: float | None,
                 now: float) -> None:
        """The engine finished at `now`: prefill ran from `sent` (the request went out)
        to the first output, decode from there to the end."""
        first = now if first is None else first
        self._finished = True
        self.phase("prefill", sent, first,
                   **{"gen_ai.usage.input_tokens": done.prompt_eval_count})
        self.phase("decode", first, now, **{"gen_ai.usage.output_tokens": done.eval_count})
        self._span.set_attributes({"gen_ai.usage.input_tokens": done.prompt_eval_count,
                                   "gen_ai.usage.output_tokens": done.eval_count,
                                   "gen_ai.response.finish_reasons": [done.done_reason]})

    def ended(self) -> None:
        """The generation is over: without a finish, it was aborted."""
        if not self._finished:
            self._span.set_attribute("gen_ai.response.finish_reasons", ["abort"])
        self._span.end(end_time=self._epoch + int(time.perf_counter() * 1e9))


class NoTrace:
    """The tracer and the generation trace when tracing is off: records nothing."""

    __slots__ = ()

    def generation(self, model: str, started: float, request_id: str | None) -> NoTrace:
        return self

    def shutdown(self) -> None:
        pass

    def phase(self, name: str, start: float, end: float, **attributes: Any) -> None:
        pass

    def leased(self, asked: float, load_seconds: float, got: float) -> None:
        pass

    def finished(self, done: EngineDone, sent: float, first: float | None,
                 now: float) -> None:
        pass

    def ended(self) -> None:
        pass


NO_TRACE = NoTrace()
