#!/usr/bin/env python3
"""Prefill and decode speed of a model split over two RPC workers vs the same model unsplit.

Two `pasture worker`s on loopback ports and two servers, one plain and one with
`PASTURE_RPC_SERVERS` set to the workers and an even split (SmolLM2's 31 layers: 11, 10
and 10 here, with the token embeddings). A layer split is a pipeline: one
device computes at a time, so every process gets the same threads and the difference is
the RPC protocol's cost (loopback: no network latency or bandwidth limit). Runs alternate
between the two servers, each with a unique ~400-token raw prompt (no cached prefix) and
greedy sampling; medians of the engine's own timings.

    python bench/bench_rpc_split.py [--runs 5] [--tokens 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO), str(REPO / "scripts")]

import httpx  # noqa: E402
from fetch_models import SMOLLM2_FILE, fetch_smollm2  # noqa: E402

from pasture.rpc import library  # noqa: E402
from tests.integration.conftest import import_model, start_server, stop_server  # noqa: E402
from tests.integration.test_rpc_split import CACHE, Worker  # noqa: E402

MODEL = "smollm2:135m"
TEXT = " ".join(f"Item {i} of the inventory is a lantern, a rope or a map." for i in range(30))


def run(url: str, tokens: int) -> tuple[float, float, float]:
    """(prefill tok/s, decode tok/s, load seconds) of one unique-prompt request."""
    reply = httpx.post(url + "/api/generate", timeout=600, json={
        "model": MODEL, "prompt": f"Session {uuid.uuid4().hex}. {TEXT}", "raw": True,
        "stream": False, "options": {"temperature": 0, "num_predict": tokens}}).json()
    return (reply["prompt_eval_count"] / reply["prompt_eval_duration"] * 1e9,
            reply["eval_count"] / reply["eval_duration"] * 1e9, reply["load_duration"] / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    gguf = fetch_smollm2() / SMOLLM2_FILE
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        built = library.build(CACHE)
        engines = root / "engines"
        target = library.library_path(engines)
        target.parent.mkdir(parents=True)
        shutil.copyfile(built, target)
        workers = [Worker(engines, root / f"worker{i}.log", args.threads) for i in range(2)]
        servers = []
        try:
            for worker in workers:
                worker.start()
            threads = {"PASTURE_NUM_THREADS": str(args.threads), "PASTURE_NUM_PARALLEL": "1"}
            plain = start_server(root / "plain" / "models", root / "plain.log", **threads)
            servers.append(plain)
            split = start_server(  # its engines folder is `engines`, beside its models
                root / "models", root / "split.log", **threads, PASTURE_RPC_SPLIT="1,1,1",
                PASTURE_RPC_SERVERS=",".join(w.endpoint for w in workers))
            servers.append(split)
            results: dict[str, list[tuple[float, float, float]]] = {"unsplit": [], "split": []}
            for server in servers:
                import_model(server.url, gguf, MODEL)
            loads = {"unsplit": run(plain.url, 4)[2], "split": run(split.url, 4)[2]}
            shown = httpx.get(split.url + "/api/ps").json()["models"][0]["split"]
            for _ in range(args.runs):
                results["unsplit"].append(run(plain.url, args.tokens))
                results["split"].append(run(split.url, args.tokens))
        finally:
            for server in servers:
                stop_server(server)
            for worker in workers:
                worker.kill()
    load_after = os.getloadavg()
    median = {side: [statistics.median(r[i] for r in rows) for i in range(2)]
              for side, rows in results.items()}
    print(f"### RPC split vs unsplit, loopback — {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"SmolLM2-135M Q4_1, {args.threads} threads in every process, ~400-token prompts, "
          f"{args.tokens} tokens, greedy, median of {args.runs}. Split: {shown}. Load "
          f"average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (1 min).\n")
    print("| | prefill tok/s | decode tok/s | first load |")
    print("|---|---|---|---|")
    for side in ("unsplit", "split"):
        prefill, decode = median[side]
        print(f"| {side} | {prefill:.0f} | {decode:.1f} | {loads[side]:.2f} s |")
    ratio = [median["split"][i] / median["unsplit"][i] for i in range(2)]
    print(f"| split / unsplit | {ratio[0]:.2f}× | {ratio[1]:.2f}× | |")


if __name__ == "__main__":
    main()
