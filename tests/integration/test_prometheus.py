"""A real Prometheus scrapes a live server running SmolLM2, and what it stores agrees with
what the responses said: generated tokens, finish reasons, the generated-token histogram;
`rate()` and `histogram_quantile()` work over the series as dashboards use them.

Prometheus (Debian's package, installed by scripts/install_system_deps.sh) runs on a
loopback port with a temporary data directory and one target, this test's server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

MODEL = "smollm2:135m"
PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (scripts/install_system_deps.sh)")
WAIT = 60  # seconds for Prometheus to start, or to see a value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path
            ) -> Iterator[tuple[RunningServer, str]]:
    """A server with SmolLM2 loaded, and the URL of a Prometheus scraping it every second."""
    root = tmp_path_factory.mktemp("prometheus")
    server = start_server(root / "models", root / "server.log", PASTURE_NUM_THREADS="1")
    import_model(server.url, smollm2_gguf, MODEL)
    assert httpx.post(server.url + "/api/generate", json={"model": MODEL},
                      timeout=120).status_code == 200  # loaded before the first scrape
    target = server.url.removeprefix("http://")
    config = root / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                      "scrape_configs:\n"
                      f"  - {{job_name: pasture, static_configs: [{{targets: ['{target}']}}]}}\n")
    port = _free_port()
    with open(root / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: httpx.get(url + "/-/ready", timeout=2).status_code == 200)
        yield server, url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stop_server(server)


def eventually(check: Callable[[], Any]) -> Any:
    """`check()`'s first true result within WAIT seconds (errors count as not yet)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            result = check()
        except (httpx.TransportError, LookupError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, "Prometheus never saw it"
        time.sleep(0.5)


def query(prometheus: str, promql: str) -> float | None:
    """The value of an instant query with one result; None while there is none."""
    reply = httpx.get(prometheus + "/api/v1/query", params={"query": promql}, timeout=10)
    assert reply.status_code == 200, reply.text
    results = reply.json()["data"]["result"]
    assert len(results) <= 1, results
    return float(results[0]["value"][1]) if results else None


def test_prometheus_reads_the_token_counts_the_responses_gave(
        watched: tuple[RunningServer, str]) -> None:
    server, prometheus = watched
    tokens = f'pasture:generation_tokens_total{{model_name="{MODEL}"}}'
    # A load starts the model's counters at 0, so Prometheus has a sample before traffic.
    eventually(lambda: query(prometheus, tokens) is not None)
    assert query(prometheus, tokens) == 0
    answers = []
    for n in range(4):
        reply = httpx.post(server.url + "/api/generate", json={
            "model": MODEL, "prompt": f"Story {n}. Once upon a time", "raw": True,
            "stream": False, "options": {"num_predict": 16, "temperature": 0}}, timeout=120)
        assert reply.status_code == 200, reply.text
        answers.append(reply.json())
    generated = sum(a["eval_count"] for a in answers)
    assert generated > 0
    eventually(lambda: query(prometheus, tokens) == generated)
    by_reason = {reason: sum(a["done_reason"] == reason for a in answers)
                 for reason in {a["done_reason"] for a in answers}}
    for reason, count in by_reason.items():
        assert query(prometheus, f'pasture:request_success_total{{model_name="{MODEL}",'
                                 f'finished_reason="{reason}"}}') == count
    histogram = f'pasture:request_generation_tokens{{model_name="{MODEL}"}}'
    assert query(prometheus, histogram.replace("{", "_sum{", 1)) == generated
    assert query(prometheus, histogram.replace("{", "_count{", 1)) == len(answers)

    # As dashboards ask: rates over a window, and quantiles from the buckets. The window
    # of increase() holds the sample of 0 taken before the traffic, however slow it ran.
    increase = query(prometheus, f"increase({tokens}[10m])")
    assert increase is not None and generated <= increase <= 1.5 * generated
    assert query(prometheus, f"rate({tokens}[1m])") > 0
    median = query(prometheus, f'histogram_quantile(0.5, sum by (le) '
                               f'(pasture:request_generation_tokens_bucket{{model_name="{MODEL}"}}))')
    counts = sorted(a["eval_count"] for a in answers)
    assert median is not None and counts[0] / 2.5 <= median <= counts[-1]  # within a bucket
    ttft = query(prometheus, f'histogram_quantile(0.95, sum by (le) '
                             f'(pasture:time_to_first_token_seconds_bucket{{model_name="{MODEL}"}}))')
    slowest = max(a["total_duration"] for a in answers) / 1e9
    assert ttft is not None and 0 < ttft <= max(2 * slowest, 0.005)
