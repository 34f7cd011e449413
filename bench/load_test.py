#!/usr/bin/env python3
"""Load: 200 concurrent clients against a queue of 32, and memory over thousands of requests.

Runs `python -m pasture serve` with `PASTURE_MAX_QUEUE=32` (SmolLM2-135M Q4_1 imported
into a temporary store), then:

1. endpoint load with `hey` (Debian's package; scripts/install_system_deps.sh installs
   it): `--requests` requests with `--clients` concurrent connections on each of
   `GET /api/version`, `GET /api/tags`, `GET /api/ps` and `POST /api/show`;
2. `--rounds` bursts of `--clients` concurrent streaming `/api/generate` requests
   (asyncio + httpx, `num_predict` 2), every other one against an unloaded model, so the
   burst arrives while the model loads and the queue overflows; the others are served
   by the loaded model (llama-server queues them for its slots);
3. slow bodies (issue 15, item 7): `--slow-bodies` sockets each declare a 100 000-byte
   body and send one byte every `--slow-every` seconds (never silent long enough for
   the idle timeout), against `PASTURE_BODY_DEADLINE=--slow-deadline`; meanwhile
   `GET /api/version` is sampled every 0.1 s. Each slow socket must end in a 408 (or a
   close) at the deadline, within `2 x --slow-deadline` seconds, or it is a failure.

Every request must end in a 200 (a complete stream) or Ollama's 503 "server busy"; a
500, an error chunk or a request without an answer within `--hang` seconds is counted as
a failure. Prints status counts, p50/p99 latency, the server's RSS after each phase, and
a Markdown section for bench/RESULTS.md; exits 1 if anything failed.

The runner gets one engine thread by default (`--threads`): the figures are about the
server's queue and memory, and on a shared 2-core machine ggml's spinning thread barriers
make two threads many times slower whenever other processes want the cores.

    python bench/load_test.py [--requests 5000] [--rounds 10] [--clients 200] [--threads 1]
                              [--slow-bodies 500] [--slow-every 5] [--slow-deadline 20]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO), str(REPO / "scripts")]

import httpx  # noqa: E402
from fetch_models import SMOLLM2_FILE, fetch_smollm2  # noqa: E402

from tests.integration.conftest import import_model, start_server, stop_server  # noqa: E402

MODEL = "smol"
MAX_QUEUE = 32
BUSY = {"error": "server busy, please try again.  maximum pending requests exceeded"}
ENDPOINTS = [("GET", "/api/version", None), ("GET", "/api/tags", None),
             ("GET", "/api/ps", None), ("POST", "/api/show", json.dumps({"model": MODEL}))]


@dataclass
class Phase:
    """What one phase of the test saw: an outcome per request and its latency."""

    name: str
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    rss_after: float = 0.0  # MiB

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def summary(self) -> str:
        return (f"{self.name}: {dict(self.outcomes)}, p50 {self.percentile(0.5):.1f} ms, "
                f"p99 {self.percentile(0.99):.1f} ms, server RSS {self.rss_after:.1f} MiB")

    @property
    def failures(self) -> int:
        return sum(n for outcome, n in self.outcomes.items()
                   if outcome not in ("200", "503", "408", "closed"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def hey(url: str, method: str, path: str, body: str | None, requests: int,
        clients: int, hang: float) -> Phase:
    """One endpoint under `hey`; requests missing from its CSV got no answer at all."""
    command = ["hey", "-n", str(requests), "-c", str(clients), "-t", str(int(hang)),
               "-o", "csv", "-m", method]
    if body is not None:
        command += ["-T", "application/json", "-d", body]
    output = subprocess.run([*command, url + path], capture_output=True, text=True,
                            check=True).stdout
    phase = Phase(f"hey {method} {path}")
    for row in csv.DictReader(io.StringIO(output)):
        phase.outcomes[row["status-code"]] += 1
        phase.latencies.append(float(row["response-time"]))
    missing = requests - sum(phase.outcomes.values())
    if missing:
        phase.outcomes["no answer"] += missing
    return phase


async def generate(client: httpx.AsyncClient, index: int, phase: Phase) -> None:
    body = {"model": MODEL, "raw": True, "prompt": f"Story {index}. Once upon a time",
            "options": {"num_predict": 2, "temperature": 0}}
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/api/generate", json=body) as reply:
            chunks = [json.loads(line) async for line in reply.aiter_lines()]
    except httpx.TimeoutException:
        phase.outcomes["hang"] += 1
        return
    except httpx.TransportError as exc:
        phase.outcomes[f"transport error: {type(exc).__name__}"] += 1
        return
    phase.latencies.append(time.perf_counter() - started)
    status = reply.status_code
    if status == 503 and chunks != [BUSY]:
        phase.outcomes["503 with another body"] += 1
    elif status == 200 and (not chunks[-1].get("done") or any("error" in c for c in chunks)):
        phase.outcomes["200 with an error or no end"] += 1
    else:
        phase.outcomes[str(status)] += 1


async def burst(url: str, clients: int, hang: float, phase: Phase) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=hang, limits=limits) as client:
        await asyncio.gather(*(generate(client, i, phase) for i in range(clients)))


def slow_bodies(url: str, count: int, every: float, deadline: float) -> Phase:
    """Phase 3: `count` bodies trickled a byte every `every` s; outcomes are the slow
    sockets' ends, latencies those of `GET /api/version` sampled meanwhile."""
    phase = Phase(f"{count} slow bodies (a byte every {every:g} s, deadline {deadline:g} s)")
    host, port = url.removeprefix("http://").split(":")
    sockets = [socket.create_connection((host, int(port)), timeout=2 * deadline)
               for _ in range(count)]
    for sock in sockets:
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 100000\r\n\r\n")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(every):
            for sock in sockets:
                try:
                    sock.send(b"{")
                except OSError:
                    pass  # dropped: what the phase waits for

    def end_of(sock: socket.socket) -> str:
        try:
            reply = sock.recv(65536)
        except TimeoutError:
            return "still open"
        except OSError:
            return "closed"
        return "closed" if not reply else reply.split(b" ", 2)[1].decode()

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    ends: list[str] = []
    reader = threading.Thread(target=lambda: ends.extend(end_of(s) for s in sockets))
    reader.start()
    with httpx.Client(timeout=5) as client:
        while reader.is_alive():
            started = time.monotonic()
            try:
                client.get(url + "/api/version").raise_for_status()
                phase.latencies.append(time.monotonic() - started)
            except httpx.HTTPError:
                phase.outcomes["version failed"] += 1
            time.sleep(0.1)
    stop.set()
    for sock in sockets:
        sock.close()
    phase.outcomes.update(ends)
    return phase


def unload(url: str) -> None:
    httpx.post(url + "/api/generate", json={"model": MODEL, "keep_alive": 0}, timeout=120)
    while httpx.get(url + "/api/ps", timeout=30).json()["models"]:
        time.sleep(0.1)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return f"{os.cpu_count()} vCPU {cpu}, {memory:.0f} GB RAM, Python {platform.python_version()}"


def report(phases: list[Phase], rss_start: float, load_before: float, load_after: float,
           args: argparse.Namespace) -> str:
    lines = [
        f"## Load: {args.clients} clients against a queue of {MAX_QUEUE} "
        "(`bench/load_test.py`)", "",
        f"Machine: {machine()}. {time.strftime('%Y-%m-%d %H:%M')}, load average "
        f"{load_before:.1f} before / {load_after:.1f} after (1 min). {args.threads} engine "
        f"thread(s); {args.requests} requests per endpoint with hey; streaming bursts of "
        f"{args.clients} `/api/generate` requests (num_predict 2), odd ones cold.", "",
        "| phase | requests | statuses | p50 ms | p99 ms | server RSS after, MiB |",
        "|---|---|---|---|---|---|",
    ]
    for phase in phases:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(phase.outcomes.items()))
        lines.append(f"| {phase.name} | {sum(phase.outcomes.values())} | {statuses} | "
                     f"{phase.percentile(0.5):.1f} | {phase.percentile(0.99):.1f} | "
                     f"{phase.rss_after:.1f} |")
    total = Counter[str]()
    for phase in phases:
        total.update(phase.outcomes)
    lines += ["", f"Total {sum(total.values())} requests: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(total.items()))
              + f". Server RSS {rss_start:.1f} MiB after warm-up, "
              f"{phases[-1].rss_after:.1f} MiB at the end."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per endpoint, with hey")
    parser.add_argument("--rounds", type=int, default=10, help="streaming bursts")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--hang", type=float, default=300, help="seconds without an answer")
    parser.add_argument("--threads", type=int, default=1, help="engine threads (0: all cores)")
    parser.add_argument("--slow-bodies", type=int, default=500, help="0: skip phase 3")
    parser.add_argument("--slow-every", type=float, default=5, help="seconds between bytes")
    parser.add_argument("--slow-deadline", type=float, default=20,
                        help="PASTURE_BODY_DEADLINE for the run, seconds")
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("hey is not installed: run scripts/install_system_deps.sh")

    root = Path(tempfile.mkdtemp(prefix="pasture-load-"))
    server = start_server(root / "models", root / "server.log",
                          PASTURE_MAX_QUEUE=str(MAX_QUEUE), PASTURE_NUM_THREADS=str(args.threads),
                          PASTURE_BODY_DEADLINE=f"{args.slow_deadline:g}s")
    phases: list[Phase] = []
    try:
        import_model(server.url, fetch_smollm2() / SMOLLM2_FILE, MODEL)
        httpx.post(server.url + "/api/generate", timeout=300, json={
            "model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}})
        load_before = os.getloadavg()[0]
        rss_start = rss_mib(server.process.pid)
        print(f"server RSS after warm-up: {rss_start:.1f} MiB", flush=True)
        for method, path, body in ENDPOINTS:
            phase = hey(server.url, method, path, body, args.requests, args.clients, args.hang)
            phase.rss_after = rss_mib(server.process.pid)
            phases.append(phase)
            print(phase.summary(), flush=True)
        for round_ in range(args.rounds):
            cold = round_ % 2 == 0
            if cold:
                unload(server.url)
            phase = Phase(f"generate burst {round_ + 1} ({'cold' if cold else 'warm'})")
            asyncio.run(burst(server.url, args.clients, args.hang, phase))
            phase.rss_after = rss_mib(server.process.pid)
            phases.append(phase)
            print(phase.summary(), flush=True)
        if args.slow_bodies:
            phase = slow_bodies(server.url, args.slow_bodies, args.slow_every,
                                args.slow_deadline)
            phase.rss_after = rss_mib(server.process.pid)
            phases.append(phase)
            print(phase.summary(), flush=True)
        tracebacks = server.log().count("Traceback")
        log_lines = len(server.log().splitlines())
    finally:
        stop_server(server)
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(report(phases, rss_start, load_before, os.getloadavg()[0], args))
    print(f"\nTracebacks in the server log: {tracebacks}; log lines: {log_lines}")
    return 1 if tracebacks or any(phase.failures for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
