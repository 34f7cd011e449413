"""The server's Prometheus metrics, named as vLLM names its own (`vllm:x` is `pasture:x`,
with the same `model_name` label and histogram buckets), so dashboards and routers built
for vLLM read Pasture unchanged; docs/metrics.md explains each series.

One `Metrics` per app, over a registry of its own (tests build many apps). What the
scheduler knows now (requests running and waiting, models loaded, their memory) is read
when Prometheus scrapes, by a collector: nothing to keep up to date on the hot path. A
generation binds its labelled series once (`Metrics.generation`), so each token costs a
clock read and one histogram observation.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pasture.runner.base import EngineDone
from pasture.scheduler import Scheduler
from pasture.store.registry.traffic import TRAFFIC

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# vLLM's buckets (vllm/v1/metrics/loggers.py); inter-token latency gets three finer ones
# below vLLM's first, as llama.cpp on small models decodes a token in a few milliseconds.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
               0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                   50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
# vLLM's build_1_2_5_buckets, up to a context of 128k tokens
TOKEN_BUCKETS = tuple(float(m * 10**e) for e in range(6) for m in (1, 2, 5))[:-1]
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
MODEL = ("model_name",)


class Metrics:
    """Every series the server exports, over a registry of its own."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.prompt_tokens = Counter("pasture:prompt_tokens", "Prompt tokens processed.",
                                     MODEL, registry=r)
        self.generation_tokens = Counter("pasture:generation_tokens",
                                         "Tokens generated.", MODEL, registry=r)
        self.request_success = Counter(
            "pasture:request_success", "Generations finished, by why they stopped "
            "(stop, length, abort: the client left or the engine failed).",
            (*MODEL, "finished_reason"), registry=r)
        self.cache_hits = Counter("pasture:prefix_cache_hits", "Prompt tokens the engine "
                                  "reused from its cache instead of computing.", MODEL,
                                  registry=r)
        self.cache_queries = Counter("pasture:prefix_cache_queries", "Prompt tokens looked "
                                     "up in the engine's prefix cache.", MODEL, registry=r)
        self.draft_tokens = Counter("pasture:spec_decode_num_draft_tokens", "Tokens "
                                    "proposed by speculative decoding (a draft model or "
                                    "ngram lookup).", MODEL, registry=r)
        self.accepted_tokens = Counter("pasture:spec_decode_num_accepted_tokens", "Of the "
                                       "proposed tokens, those the model accepted.", MODEL,
                                       registry=r)
        self.ttft = Histogram("pasture:time_to_first_token_seconds", "Seconds from the "
                              "request's arrival to its first token.", MODEL,
                              buckets=TTFT_BUCKETS, registry=r)
        self.itl = Histogram("pasture:inter_token_latency_seconds", "Seconds between "
                             "consecutive pieces of output from the engine.", MODEL,
                             buckets=ITL_BUCKETS, registry=r)
        self.e2e = Histogram("pasture:e2e_request_latency_seconds", "Seconds from a "
                             "generation's arrival to its end.", MODEL,
                             buckets=LATENCY_BUCKETS, registry=r)
        self.queue_time = Histogram("pasture:request_queue_time_seconds", "Seconds a "
                                    "generation waited for a slot (loading not included).",
                                    MODEL, buckets=LATENCY_BUCKETS, registry=r)
        self.request_prompt_tokens = Histogram(
            "pasture:request_prompt_tokens", "Prompt tokens per generation.", MODEL,
            buckets=TOKEN_BUCKETS, registry=r)
        self.request_generation_tokens = Histogram(
            "pasture:request_generation_tokens", "Tokens generated per generation.", MODEL,
            buckets=TOKEN_BUCKETS, registry=r)
        self.load_seconds = Histogram("pasture:model_load_seconds", "Seconds to load a "
                                      "model (start its runner).", MODEL,
                                      buckets=LOAD_BUCKETS, registry=r)
        self.crashes = Counter("pasture:runner_crashes", "Runner processes found dead "
                               "(crashed or killed) while loaded.", MODEL, registry=r)
        self.http_requests = Counter("pasture:http_requests", "HTTP requests answered, by "
                                     "route template and status.",
                                     ("method", "route", "status"), registry=r)
        r.register(SchedulerCollector(scheduler))
        scheduler.watcher = self

    def exposition(self) -> bytes:
        """The text Prometheus scrapes."""
        return generate_latest(self.registry)

    def generation(self, model: str, started: float) -> GenerationMetrics:
        """The series of one generation of `model`, which arrived at `started`."""
        return GenerationMetrics(self, model, started)

    def http_request(self, method: str, route: str, status: int) -> None:
        self.http_requests.labels(method, route, str(status)).inc()

    # The scheduler's watcher (see Scheduler.watcher)
    def loaded(self, model: str, seconds: float) -> None:
        """Also starts the model's counters at 0: `rate()` and `increase()` then count
        the first request's tokens too (a series that appears with a value has no 0)."""
        self.load_seconds.labels(model).observe(seconds)
        for counter in (self.prompt_tokens, self.generation_tokens, self.cache_hits,
                        self.cache_queries, self.draft_tokens, self.accepted_tokens):
            counter.labels(model)

    def crashed(self, model: str) -> None:
        self.crashes.labels(model).inc()


class GenerationMetrics:
    """One generation's observations, its series bound once."""

    __slots__ = ("_started", "_last", "_model", "_metrics", "_itl", "_finished")

    def __init__(self, metrics: Metrics, model: str, started: float) -> None:
        self._metrics = metrics
        self._model = model
        self._started = started
        self._last: float | None = None  # when the last piece came
        self._itl = metrics.itl.labels(model)
        self._finished = False

    def queued(self, seconds: float) -> None:
        self._metrics.queue_time.labels(self._model).observe(seconds)

    def piece(self, now: float) -> None:
        """Output came from the engine at `now`: the first is the time to first token."""
        if self._last is None:
            self._metrics.ttft.labels(self._model).observe(now - self._started)
        else:
            self._itl.observe(now - self._last)
        self._last = now

    def finished(self, done: EngineDone, now: float) -> None:
        m, model = self._metrics, self._model
        self._finished = True
        m.e2e.labels(model).observe(now - self._started)
        m.request_success.labels(model, done.done_reason).inc()
        m.prompt_tokens.labels(model).inc(done.prompt_eval_count)
        m.generation_tokens.labels(model).inc(done.eval_count)
        m.request_prompt_tokens.labels(model).observe(done.prompt_eval_count)
        m.request_generation_tokens.labels(model).observe(done.eval_count)
        m.cache_queries.labels(model).inc(done.prompt_eval_count)
        m.cache_hits.labels(model).inc(done.cached_tokens)
        m.draft_tokens.labels(model).inc(done.draft_tokens)
        m.accepted_tokens.labels(model).inc(done.draft_accepted)

    def ended(self) -> None:
        """The generation is over: without a finish, it was aborted."""
        if not self._finished:
            self._metrics.request_success.labels(self._model, "abort").inc()


class Unwatched:
    """`GenerationMetrics` when metrics are off (PASTURE_METRICS=0): observes nothing."""

    __slots__ = ()

    def queued(self, seconds: float) -> None:
        pass

    def piece(self, now: float) -> None:
        pass

    def finished(self, done: EngineDone, now: float) -> None:
        pass

    def ended(self) -> None:
        pass


UNWATCHED = Unwatched()


class SchedulerCollector(Collector):
    """Gauges read from the scheduler at scrape time."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("pasture:num_requests_running", "Requests holding one "
                                    "of the model's slots.", labels=MODEL)
        waiting = GaugeMetricFamily("pasture:num_requests_waiting", "Requests waiting for "
                                    "one of the model's slots.", labels=MODEL)
        memory = GaugeMetricFamily("pasture:model_memory_bytes", "Bytes a loaded model "
                                   "takes, by device (cpu: system memory).",
                                   labels=(*MODEL, "device"))
        loaded = self.scheduler.loaded()
        for model in loaded:
            running.add_metric([model.key], model.running)
            waiting.add_metric([model.key], len(model.waiting))
            vram = model.size_vram
            if vram:
                memory.add_metric([model.key, model.placement.device or "gpu"], vram)
            memory.add_metric([model.key, "cpu"], model.size - vram)
        yield running
        yield waiting
        yield memory
        yield GaugeMetricFamily("pasture:models_loaded", "Models loaded.",
                                value=len(loaded))
        yield CounterMetricFamily("pasture:pull_bytes", "Blob bytes downloaded by pulls.",
                                  value=TRAFFIC.pulled)
        yield CounterMetricFamily("pasture:push_bytes", "Blob bytes uploaded by pushes.",
                                  value=TRAFFIC.pushed)
        yield GaugeMetricFamily("pasture:queue_pending", "Requests waiting, for a load or "
                                "a slot, across the server (bounded by PASTURE_MAX_QUEUE).",
                                value=self.scheduler.waiting)
