"""`GET /metrics`: Prometheus text whose counts agree with what the responses said, gauges
that show the queue while requests wait, HTTP requests by route template and status;
off with PASTURE_METRICS=0, behind the API key when keys are set."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server, until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: Server, **headers: str) -> Samples:
    """Every sample of `/metrics`, by name and labels."""
    reply = await server.client.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(reply.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_token_and_success_counts_equal_the_responses_own(serve: Serve) -> None:
    script = Script(reply=["Hel", "lo", " you"])

    async def scenario(server: Server) -> None:
        answers: list[dict[str, Any]] = []
        for prompt in ("one", "one two"):  # the second reuses the first's prefix
            reply = await server.post("/api/generate", model="plain", prompt=prompt,
                                      raw=True, stream=False)
            answers.append(reply.json())
        script.done_reason = "length"
        reply = await server.post("/api/chat", model="plain", stream=False,
                                  messages=[{"role": "user", "content": "hi"}])
        answers.append(reply.json())
        script.fail_after = 1  # the engine breaks off after one piece: an abort
        broken = await server.post("/api/generate", model="plain", prompt="x", raw=True)
        assert "error" in broken.text
        samples = await scrape(server)
        model = {"model_name": "plain:latest"}
        assert value(samples, "pasture:prompt_tokens_total", **model) == sum(
            a["prompt_eval_count"] for a in answers)
        assert value(samples, "pasture:generation_tokens_total", **model) == sum(
            a["eval_count"] for a in answers) == 3 * len("Hello you")
        assert value(samples, "pasture:request_success_total", finished_reason="stop",
                     **model) == 2
        assert value(samples, "pasture:request_success_total", finished_reason="length",
                     **model) == 1
        assert value(samples, "pasture:request_success_total", finished_reason="abort",
                     **model) == 1
        assert value(samples, "pasture:request_generation_tokens_count", **model) == 3
        assert value(samples, "pasture:request_generation_tokens_sum", **model) == 27
        assert value(samples, "pasture:prefix_cache_hits_total", **model) == len("one")
        # four generations began: a first token each, two gaps between three pieces in
        # three of them (the broken one got one piece)
        assert value(samples, "pasture:time_to_first_token_seconds_count", **model) == 4
        assert value(samples, "pasture:inter_token_latency_seconds_count", **model) == 6
        assert value(samples, "pasture:e2e_request_latency_seconds_count", **model) == 3
        assert value(samples, "pasture:request_queue_time_seconds_count", **model) == 4
        assert value(samples, "pasture:model_load_seconds_count", **model) == 1
        assert value(samples, "pasture:runner_crashes_total", **model) == 1
        assert value(samples, "pasture:models_loaded") == 0  # the crashed runner is gone

    serve(scenario, script)


def test_running_and_waiting_gauges_show_the_queue(serve: Serve) -> None:
    script = Script(gate=asyncio.Event())

    async def scenario(server: Server) -> None:
        scheduler = server.app.state.pasture.scheduler
        asks = [asyncio.create_task(server.post("/api/generate", model="plain", prompt="a",
                                                stream=False))]
        await server.engine_busy()
        asks += [asyncio.create_task(server.post("/api/generate", model="plain",
                                                 prompt=p, stream=False)) for p in "bc"]
        await until(lambda: scheduler.waiting == 2)
        samples = await scrape(server)
        model = {"model_name": "plain:latest"}
        assert value(samples, "pasture:num_requests_running", **model) == 1
        assert value(samples, "pasture:num_requests_waiting", **model) == 2
        assert value(samples, "pasture:queue_pending") == 2
        assert value(samples, "pasture:models_loaded") == 1
        assert value(samples, "pasture:model_memory_bytes", device="cpu", **model) > 0
        script.gate.set()
        assert [(await ask).status_code for ask in asks] == [200, 200, 200]
        samples = await scrape(server)
        assert value(samples, "pasture:num_requests_running", **model) == 0
        assert value(samples, "pasture:num_requests_waiting", **model) == 0
        assert value(samples, "pasture:request_queue_time_seconds_count", **model) == 3

    serve(scenario, script)


def test_http_requests_are_counted_by_route_template_and_status(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        assert (await server.client.get("/api/version")).status_code == 200
        assert (await server.client.get("/api/version")).status_code == 200
        assert (await server.client.get("/no/such/path")).status_code == 404
        bad = await server.post("/api/generate", model="plain", prompt=7)
        assert bad.status_code == 400
        missing = await server.client.head("/api/blobs/sha256:" + "0" * 64)
        assert missing.status_code == 404
        samples = await scrape(server)
        name = "pasture:http_requests_total"
        assert value(samples, name, method="GET", route="/api/version", status="200") == 2
        assert value(samples, name, method="GET", route="unmatched", status="404") == 1
        assert value(samples, name, method="POST", route="/api/generate", status="400") == 1
        assert value(samples, name, method="HEAD", route="/api/blobs/{digest}",
                     status="404") == 1  # the template, not the digest asked for

    serve(scenario)


def test_metrics_can_be_turned_off(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        assert (await server.post("/api/generate", model="plain", prompt="hi",
                                  stream=False)).status_code == 200
        assert (await server.client.get("/metrics")).status_code == 404

    serve(scenario, METRICS="0")


def test_metrics_need_the_api_key_when_keys_are_set(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        assert (await server.client.get("/metrics")).status_code == 401
        samples = await scrape(server, authorization="Bearer sesame")
        assert value(samples, "pasture:http_requests_total", method="GET",
                     route="unmatched", status="401") == 1

    serve(scenario, API_KEYS="sesame")


def test_every_series_the_docs_and_dashboard_name_is_exported(serve: Serve) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    named = set(re.findall(r"pasture:[a-z0-9_]+", (docs / "metrics.md").read_text() +
                           (docs / "grafana-dashboard.json").read_text()))

    async def scenario(server: Server) -> set[str]:
        assert (await server.post("/api/generate", model="plain", prompt="hi",
                                  stream=False)).status_code == 200
        reply = await server.client.get("/metrics")
        families = list(text_string_to_metric_families(reply.text))
        return {f.name + ("_total" if f.type == "counter" else "") for f in families} | {
            s.name for f in families for s in f.samples} | {f.name for f in families}

    exported = serve(scenario)
    assert len(named) > 20
    assert named <= exported, named - exported
