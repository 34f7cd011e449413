"""OpenTelemetry traces (issue 17): with a tracer, each generation is one
`pasture.generation` span whose children are its phases (`load`, `queue_wait`,
`prompt_render`, `prefill`, `decode`), the token counts on it as the response gives them;
without OTEL_EXPORTER_OTLP_ENDPOINT the server never imports the SDK.

The spans go to the SDK's in-memory exporter through `create_app(tracer=...)`, the seam
that stands in for the OTLP exporter (no collector to send to in a test).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pasture.server import tracing
from tests.fake_runner import FakeEngine, Script
from tests.routes.conftest import Server, run_app, settings_for, until

PHASES = ["load", "queue_wait", "prompt_render", "prefill", "decode"]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> dict[str, ReadableSpan]:
    assert parent.context is not None
    return {span.name: span for span in spans
            if span.parent is not None and span.parent.span_id == parent.context.span_id}


def test_a_generation_is_traced_as_a_span_per_phase_under_one_parent(store: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> list[dict]:
        scheduler = server.app.state.pasture.scheduler
        chat = {"model": "plain", "stream": False,
                "messages": [{"role": "user", "content": "hi"}]}
        first = asyncio.create_task(server.client.post(
            "/api/chat", json=chat, headers={"X-Request-Id": "first-one"}))
        await server.engine_busy()
        second = asyncio.create_task(server.client.post(
            "/api/chat", json=chat, headers={"X-Request-Id": "second-one"}))
        await until(lambda: scheduler.waiting == 1)  # the second waits for the slot
        script.gate.set()
        return [(await reply).json() for reply in (first, second)]

    replies = asyncio.run(run_app(settings_for(store), FakeEngine(script), scenario,
                                  tracer=tracing.Tracer(provider)))
    spans = list(exporter.get_finished_spans())
    parents = {span.attributes["pasture.request_id"]: span for span in spans
               if span.name == "pasture.generation"}
    assert sorted(parents) == ["first-one", "second-one"]
    assert len(spans) == 2 + len(PHASES) + len(PHASES) - 1  # only the first loads
    for request_id, reply in zip(("first-one", "second-one"), replies, strict=True):
        parent = parents[request_id]
        assert parent.parent is None
        assert parent.attributes["gen_ai.request.model"] == "plain:latest"
        assert parent.attributes["gen_ai.usage.input_tokens"] == reply["prompt_eval_count"]
        assert parent.attributes["gen_ai.usage.output_tokens"] == reply["eval_count"]
        assert reply["eval_count"] > 0
        phases = children(spans, parent)
        expected = PHASES if request_id == "first-one" else PHASES[1:]
        assert sorted(phases) == sorted(expected)
        assert phases["decode"].attributes["gen_ai.usage.output_tokens"] == \
            reply["eval_count"]
        assert phases["prefill"].attributes["gen_ai.usage.input_tokens"] == \
            reply["prompt_eval_count"]
        ordered = [phases[name] for name in expected]  # each phase after the one before
        assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(ordered))
        assert parent.start_time <= ordered[0].start_time
        assert ordered[-1].end_time <= parent.end_time
    waited = children(spans, parents["second-one"])["queue_wait"]
    assert waited.end_time > waited.start_time  # it waited for the first to finish


def test_without_an_otlp_endpoint_the_sdk_is_never_imported(store: Path) -> None:
    """FastAPI itself imports the OpenTelemetry *API* when installed (fastapi.telemetry);
    what tracing costs is the SDK and the exporter, which must stay out."""
    program = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from tests.fake_runner import FakeEngine
        from tests.routes.conftest import run_app, settings_for

        async def chat(server):
            reply = await server.post("/api/chat", model="plain", stream=False,
                                      messages=[{{"role": "user", "content": "hi"}}])
            assert reply.status_code == 200, reply.text
            assert server.app.state.pasture.tracer is NO_TRACE
        from pasture.server.tracing import NO_TRACE
        asyncio.run(run_app(settings_for(Path({str(store)!r})), FakeEngine(), chat))
        print(sorted(m for m in sys.modules
                     if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root)])
    done = subprocess.run([sys.executable, "-c", program], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
