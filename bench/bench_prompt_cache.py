#!/usr/bin/env python3
"""Time to first token for a long shared prefix: cold, warm, and after unload + reload.

A `pasture serve` with the prompt cache on; each run uses its own ~1,000-token system
prompt (so no run reuses another's) and three questions after it:

- *cold*: the cache folder emptied, the model loaded afresh, then the first question;
- *warm*: a second question to the same runner (llama.cpp's in-memory prefix cache);
- *reload*: the model unloaded (its slot saved to disk) and loaded again (restored), then
  a third question.

The model is loaded by an empty request before each timed one, so TTFT is the prompt's
cost (and, after a load, the first touch of the weights) alone; load times are reported
beside it. Requests go through `/v1/chat/completions`, whose streamed usage says how many
prompt tokens the engine reused.

    python bench/bench_prompt_cache.py [--model smollm2|gemma3] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


def system_prompt(run: int) -> str:
    """About 1,000 tokens, different for every run."""
    rules = " ".join(f"Rule {run}.{i}: log ship {i} by name, flag, cargo and hour of arrival."
                     for i in range(60))
    return f"You are archivist number {run} of a lighthouse. {rules}"


def ttft(client: httpx.Client, system: str, question: str) -> tuple[float, int, int]:
    """Seconds to the first token, prompt tokens, and those the engine reused (OpenAI's
    streamed usage)."""
    body = {"model": "bench", "stream": True, "max_tokens": 8, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": question}]}
    start = time.perf_counter()
    first = None
    usage: dict = {}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            item = json.loads(line.removeprefix("data: "))
            choices = item.get("choices") or [{}]
            if first is None and choices[0].get("delta", {}).get("content"):
                first = time.perf_counter() - start
            usage = item.get("usage") or usage
    return first or 0.0, usage.get("prompt_tokens", 0), \
        (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)


def load(client: httpx.Client) -> float:
    """Load the model (an empty request); seconds it took."""
    start = time.perf_counter()
    client.post("/api/generate", json={"model": "bench", "keep_alive": -1}).raise_for_status()
    return time.perf_counter() - start


def unload(client: httpx.Client) -> None:
    client.post("/api/generate", json={"model": "bench", "keep_alive": 0}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("smollm2", "gemma3"), default="smollm2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    gguf = fetch_smollm2() / SMOLLM2_FILE if args.model == "smollm2" \
        else fetch_gemma3() / GEMMA3_FILE
    rows: dict[str, list[float]] = {"cold": [], "warm": [], "reload": [], "load cold": [],
                                    "load restore": []}
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_pasture(gguf, Path(tmp), args.threads)
        client = httpx.Client(base_url=url, timeout=600)
        cache = Path(tmp) / "prompt-cache"
        try:
            for run in range(args.runs):
                system = system_prompt(run)
                unload(client)
                shutil.rmtree(cache, ignore_errors=True)
                rows["load cold"].append(load(client))
                cold, prompt, _ = ttft(client, system, "Which ship came first?")
                warm, _, _ = ttft(client, system, "Which ship came second?")
                unload(client)  # saves the slot
                rows["load restore"].append(load(client))
                reload, _, reused = ttft(client, system, "Which ship came last?")
                rows["cold"].append(cold)
                rows["warm"].append(warm)
                rows["reload"].append(reload)
                print(f"run {run}: prompt {prompt} tokens, cold {cold * 1000:.0f} ms, warm "
                      f"{warm * 1000:.0f} ms, after reload {reload * 1000:.0f} ms "
                      f"(cached {reused})", flush=True)
        finally:
            server.terminate()
            server.wait(15)

    print(f"# {args.model}, {args.threads} threads, {args.runs} runs (medians); "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f}")
    cold = statistics.median(rows["cold"])
    for name, values in rows.items():
        value = statistics.median(values)
        ratio = f"{value / cold:.3f} × cold" if name in ("warm", "reload") else ""
        print(f"{name:14} {value * 1000:9.0f} ms  {ratio}")


if __name__ == "__main__":
    main()
