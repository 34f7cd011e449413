#!/usr/bin/env python3
"""Many clients, prompt-prefix cache, load/unload latency and memory, through the server.

Runs `python -m pasture serve` (SmolLM2-135M Q4_1 imported into a temporary store) once
per `PASTURE_NUM_PARALLEL` value and measures:

- aggregate decode tokens/s for 1, 2, 4 and 8 concurrent clients (each generating
  `--tokens` tokens from its own raw prompt; total eval_count over the wall time);
- time to first token of a request whose ~1,000-token prefix was seen before vs a cold
  one (median of `--runs`);
- model load (load_duration of a cold request) and unload (keep_alive 0 until /api/ps is
  empty) latency;
- the memory estimate vs what the engine logged (/api/ps size) vs the runner's RSS.

Prints a Markdown section for bench/RESULTS.md, with the machine and its load average.

    python bench/bench_parallel.py [--tokens 64] [--runs 3] [--parallel 1 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO), str(REPO / "scripts")]

import httpx  # noqa: E402
from fetch_models import SMOLLM2_FILE, fetch_smollm2  # noqa: E402

from pasture.runner.base import LoadSpec  # noqa: E402
from pasture.scheduler.memory import estimate_spec  # noqa: E402
from tests.integration.conftest import import_model, start_server, stop_server  # noqa: E402

MODEL = "smollm2:135m"
MiB = 1 << 20
PREFIX = " ".join(f"Rule {i}: answer politely and briefly about topic number {i}."
                  for i in range(80))


def aggregate_rate(url: str, clients: int, tokens: int) -> float:
    """Total decoded tokens per second of wall time for `clients` concurrent requests."""
    counts: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        reply = httpx.post(url + "/api/generate", timeout=600, json={
            "model": MODEL, "raw": True, "stream": False,
            "prompt": f"Story {uuid.uuid4().hex[:8]}. Once upon a time there lived",
            "options": {"num_predict": tokens, "temperature": 0},
        })
        with lock:
            counts.append(reply.json()["eval_count"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def ttft(url: str, prefix: str, question: str) -> float:
    body = {"model": MODEL, "stream": True, "options": {"num_predict": 2},
            "messages": [{"role": "system", "content": prefix},
                         {"role": "user", "content": question}]}
    started = time.perf_counter()
    with httpx.stream("POST", url + "/api/chat", json=body, timeout=600) as response:
        for _ in response.iter_lines():
            return time.perf_counter() - started
    raise RuntimeError("no reply")


def runner_rss(server_pid: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != server_pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def bench(parallel: int, gguf: Path, args: argparse.Namespace, root: Path) -> list[str]:
    server = start_server(root / f"models-{parallel}", root / f"serve-{parallel}.log",
                          PASTURE_NUM_PARALLEL=str(parallel), PASTURE_NUM_THREADS="2")
    lines = []
    try:
        import_model(server.url, gguf, MODEL)
        load = httpx.post(server.url + "/api/generate", json={"model": MODEL},
                          timeout=600).json()["load_duration"] / 1e9
        aggregate_rate(server.url, 1, 8)  # warm up
        rates = {c: aggregate_rate(server.url, c, args.tokens) for c in (1, 2, 4, 8)}
        lines.append(f"| {parallel} | " + " | ".join(f"{rates[c]:.1f}" for c in rates) +
                     f" | {rates[4] / rates[1]:.2f}× |")
        if parallel == args.parallel[-1]:
            cold = [ttft(server.url, f"Session {uuid.uuid4().hex}. " + PREFIX, "Rule 3?")
                    for _ in range(args.runs)]
            warm_prefix = f"Session {uuid.uuid4().hex}. " + PREFIX
            ttft(server.url, warm_prefix, "Rule 1?")
            warm = [ttft(server.url, warm_prefix, f"Rule {i + 5}?") for i in range(args.runs)]
            entry = httpx.get(server.url + "/api/ps").json()["models"][0]
            rss = runner_rss(server.process.pid)
            spec = LoadSpec(str(gguf), num_ctx=4096, num_parallel=parallel, pooling="last")
            est = estimate_spec(spec).total_bytes(0)
            started = time.perf_counter()
            httpx.post(server.url + "/api/generate", json={"model": MODEL, "keep_alive": 0},
                       timeout=60)
            while httpx.get(server.url + "/api/ps").json()["models"]:
                time.sleep(0.01)
            unload = time.perf_counter() - started
            c, w = statistics.median(cold), statistics.median(warm)
            lines += [
                "",
                f"TTFT, ~1,000-token system prompt (num_parallel {parallel}, median of "
                f"{args.runs}): cold {c * 1000:.0f} ms, prefix seen before {w * 1000:.0f} ms "
                f"= {w / c:.2f} × cold (target ≤ 0.2)",
                "",
                f"Load {load * 1000:.0f} ms (load_duration of the first request), unload "
                f"{unload * 1000:.0f} ms (keep_alive 0 until /api/ps is empty).",
                "",
                f"Memory (num_ctx 4096 × {parallel} slots): estimate {est / MiB:.0f} MiB, "
                f"engine buffers (/api/ps size) {entry['size'] / MiB:.0f} MiB, runner RSS "
                f"{rss / MiB:.0f} MiB (RSS adds the runner's Python interpreter and engine "
                "libraries, and leaves out allocated pages not yet touched).",
            ]
    finally:
        stop_server(server)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    gguf = fetch_smollm2() / SMOLLM2_FILE
    import tempfile

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows: list[str] = []
        extra: list[str] = []
        for parallel in args.parallel:
            out = bench(parallel, gguf, args, Path(tmp))
            rows.append(out[0])
            extra += out[1:]
    load_after = os.getloadavg()
    print(f"### Many clients, prefix cache, load/unload, memory — "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"SmolLM2-135M Q4_1, 2 threads, {args.tokens} tokens per client, greedy. Load "
          f"average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (1 min).\n")
    print("Aggregate decode tokens/s by concurrent clients:\n")
    print("| num_parallel | 1 client | 2 clients | 4 clients | 8 clients | 4 vs 1 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n".join(extra))


if __name__ == "__main__":
    main()
