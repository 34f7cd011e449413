#!/usr/bin/env python3
"""Decode speed and time to first token: Pasture's /api/generate vs the engine in-process.

Both sides load SmolLM2-135M Q4_1 with the same context (4096), threads and sampling
(greedy, so both produce the same tokens), and each run starts with a unique prompt so
neither side can reuse a cached prefix. Runs alternate between the two sides, in one
invocation, and the medians are compared.

    python bench/bench_decode.py [--runs 5] [--tokens 128] [--threads N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from engine_alone import bare_engine  # noqa: E402
from fetch_models import SMOLLM2_FILE, fetch_smollm2  # noqa: E402

PROMPT = "Story {i}. Once upon a time, in an old lighthouse by a stormy sea, there lived"


def decode_rate(stamps: list[float]) -> float:
    """Tokens per second after the first token (prompt processing excluded)."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def bench_engine(gguf: Path, args: argparse.Namespace) -> object:
    """The engine in this process, through xllamacpp's own streaming call."""
    server = bare_engine(str(gguf), 4096, args.threads)

    def run(i: int) -> tuple[float, float, int]:
        stamps: list[float] = []

        def on_chunk(chunk: dict) -> bool:
            if chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
            return False

        start = time.perf_counter()
        server.handle_completions({
            "prompt": PROMPT.format(i=i), "n_predict": args.tokens, "stream": True,
            "temperature": 0, "cache_prompt": True,
        }, on_chunk)
        return stamps[0] - start, decode_rate(stamps), len(stamps)

    run(-1)  # warm-up
    return run, server


def start_pasture(gguf: Path, models: Path, threads: int,
                  **env: str) -> tuple[subprocess.Popen, str]:
    """A `pasture serve` with `gguf` created as `bench`; `env` adds PASTURE_* settings."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PASTURE_HOST": f"127.0.0.1:{port}", "PASTURE_MODELS": str(models),
           "PASTURE_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO / "src"), **env}
    server = subprocess.Popen([sys.executable, "-m", "pasture", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    with open(gguf, "rb") as f:
        httpx.post(f"{url}/api/blobs/{digest}", content=f, timeout=120).raise_for_status()
    httpx.post(f"{url}/api/create", timeout=120, json={
        "model": "bench", "files": {gguf.name: digest}, "stream": False,
    }).raise_for_status()
    return server, url


def bench_pasture(url: str, args: argparse.Namespace) -> object:
    client = httpx.Client(base_url=url, timeout=300)

    def run(i: int) -> tuple[float, float, int]:
        stamps: list[float] = []
        start = time.perf_counter()
        body = {"model": "bench", "prompt": PROMPT.format(i=i), "raw": True,
                "options": {"num_predict": args.tokens, "temperature": 0},
                "keep_alive": -1}
        with client.stream("POST", "/api/generate", json=body) as response:
            for line in response.iter_lines():
                if line and json.loads(line).get("response"):
                    stamps.append(time.perf_counter())
        return stamps[0] - start, decode_rate(stamps), len(stamps)

    run(-1)  # warm-up: loads the model
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    gguf = fetch_smollm2() / SMOLLM2_FILE

    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_pasture(gguf, Path(tmp), args.threads)
        try:
            pasture_run = bench_pasture(url, args)
            engine_run, _engine = bench_engine(gguf, args)
            results: dict[str, list[tuple[float, float, int]]] = {"engine": [], "pasture": []}
            for i in range(args.runs):
                results["engine"].append(engine_run(i))
                results["pasture"].append(pasture_run(i))
        finally:
            server.terminate()
            server.wait(15)

    print(f"# SmolLM2-135M Q4_1, n_ctx 4096, {args.threads} threads, {args.tokens} tokens, "
          f"{args.runs} runs (medians)")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"{'':10} {'TTFT ms':>10} {'decode tok/s':>14} {'tokens':>8}")
    medians = {}
    for side, runs in results.items():
        ttft = statistics.median(r[0] for r in runs) * 1000
        rate = statistics.median(r[1] for r in runs)
        medians[side] = (ttft, rate)
        print(f"{side:10} {ttft:10.1f} {rate:14.1f} {runs[0][2]:8d}")
    print(f"{'ratio':10} {medians['pasture'][0] / medians['engine'][0]:10.2f} "
          f"{medians['pasture'][1] / medians['engine'][1]:14.3f}   (pasture / engine)")


if __name__ == "__main__":
    main()
