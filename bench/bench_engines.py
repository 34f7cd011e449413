#!/usr/bin/env python3
"""Prefill and decode speed through Pasture: the default wheel vs the native CPU build.

Builds the native build first if it is not installed (`pasture engine build --native`,
tens of minutes on two cores), then starts two servers: one that only has the default
wheel (an empty engines directory) and one with the engines directory holding the
native build, which Pasture must choose by itself (the bench checks that `/api/ps` says
so).
Runs alternate between the two servers, each with a unique prompt so no prefix cache
helps, and the medians of Ollama's own timings (`prompt_eval_*`, `eval_*`) are compared.

    python bench/bench_engines.py [--runs 5] [--tokens 128] [--engines DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))
from bench_decode import start_pasture  # noqa: E402
from fetch_models import GEMMA3_FILE, SMOLLM2_FILE, fetch_gemma3, fetch_smollm2  # noqa: E402

FILLER = ("The lighthouse keeper climbed the spiral stairs each evening, counting the steps, "
          "checking the lamp, and writing the weather in a worn leather book. ")


def pasture_cli(engines: Path, *args: str) -> str:
    env = {**os.environ, "PASTURE_ENGINES": str(engines), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, check=True,
                          stdout=subprocess.PIPE, text=True).stdout


def run(url: str, i: int, args: argparse.Namespace) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of one generation with a fresh prompt."""
    prompt = f"Story number {i}. " + FILLER * args.filler + "Once upon a time"
    body = {"model": "bench", "prompt": prompt, "raw": True, "stream": False,
            "keep_alive": -1, "options": {"num_predict": args.tokens, "temperature": 0,
                                          "num_ctx": 4096}}
    reply = httpx.post(f"{url}/api/generate", json=body, timeout=600).json()
    return (reply["prompt_eval_count"] / reply["prompt_eval_duration"] * 1e9,
            reply["eval_count"] / reply["eval_duration"] * 1e9)


def bench_model(gguf: Path, engines: Path, args: argparse.Namespace) -> list[str]:
    sides = {"default": Path(tempfile.mkdtemp(prefix="engines-empty-")), "native": engines}
    servers = {}
    rows = []
    try:
        for side, directory in sides.items():
            models = Path(tempfile.mkdtemp(prefix=f"models-{side}-"))
            servers[side] = start_pasture(gguf, models, args.threads,
                                          PASTURE_ENGINES=str(directory))
        results: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
        for side, (_, url) in servers.items():
            run(url, -1, args)  # warm-up: loads the model
            (loaded,) = httpx.get(f"{url}/api/ps").json()["models"]
            expected = "default" if side == "default" else args.build
            assert loaded["engine"] == expected, f"{side} server ran {loaded['engine']}"
        for i in range(args.runs):
            for side, (_, url) in servers.items():
                results[side].append(run(url, i, args))
        medians = {side: (statistics.median(r[0] for r in runs),
                          statistics.median(r[1] for r in runs))
                   for side, runs in results.items()}
        for side, (prefill, decode) in medians.items():
            rows.append(f"| {gguf.name} | {side} | {prefill:.0f} | {decode:.1f} |")
        rows.append(f"| {gguf.name} | **native / default** | "
                    f"**{medians['native'][0] / medians['default'][0]:.2f} ×** | "
                    f"**{medians['native'][1] / medians['default'][1]:.2f} ×** |")
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(15)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--filler", type=int, default=12, help="prompt length in sentences")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--build", default="native", help="the build to compare")
    parser.add_argument("--engines", type=Path, default=Path(
        os.environ.get("PASTURE_ENGINES") or Path.home() / ".pasture" / "engines"))
    args = parser.parse_args()

    if f"\n{args.build} " not in "\n" + pasture_cli(args.engines, "engine", "list"):
        started = time.monotonic()
        pasture_cli(args.engines, "engine", "build", "--native", "--name", args.build)
        print(f"# built {args.build} in {time.monotonic() - started:.0f} s")
    print(pasture_cli(args.engines, "engine", "list"))
    rows = []
    for gguf in (fetch_smollm2() / SMOLLM2_FILE, fetch_gemma3() / GEMMA3_FILE):
        rows += bench_model(gguf, args.engines, args)
    print(f"# {args.runs} runs each (medians), {args.tokens} decoded tokens, "
          f"{args.threads} threads, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| model | build | prefill tok/s | decode tok/s |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
