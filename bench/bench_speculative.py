#!/usr/bin/env python3
"""Draftless speculative decoding: Pasture with each ngram kind vs the engine without one.

Greedy, the same chat prompt text on every side: *echo* asks the model to copy a
~300-token passage with one word changed (the answer repeats its input, where ngram
lookup drafts well); *chat* (a story), *explain*, *list*, *code* and *qa* ask for free
answers with nothing to copy (`--tasks` picks some). Sides: the engine
in this process with no speculation (xllamacpp's own call, nothing of Pasture around it),
then Pasture's `/api/generate` with `options.speculative` = off, ngram (ngram-simple,
the default), ngram_mod and ngram_map_k, each its own runner. Runs alternate between the
sides within one invocation; medians of decode tokens/s (first token to last, by the
client's clock) are compared with the engine's. Acceptance comes from Pasture's
`/metrics` (`pasture:spec_decode_num_*`), read around each request.

    python bench/bench_speculative.py [--model smollm2|gemma3] [--runs 3] [--tokens 200]
        [--kinds off,ngram,ngram_mod,ngram_map_k] [--tasks echo,chat,explain,list,code,qa]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "src"))
from bench_decode import start_pasture  # noqa: E402
from engine_alone import bare_engine  # noqa: E402
from fetch_models import GEMMA3_FILE, SMOLLM2_FILE, fetch_gemma3, fetch_smollm2  # noqa: E402

from pasture.cli.bench import TASKS as CLI_TASKS  # noqa: E402

# `pasture bench`'s two tasks, with a longer passage to copy (~300 tokens; the passage
# ends the echo task's text, so it is continued there).
TASKS = {
    "echo": CLI_TASKS["echo"] + (
        " The keeper kept a log of every storm, every ship and every failure of the lamp, "
        "written in a careful hand in a leather book that had belonged to the keeper before "
        "him. When the new electric light was installed, the clockwork fell silent, but the "
        "keeper still climbed the steps each evening, because the sea had not changed and "
        "neither had the rocks."),
    "chat": CLI_TASKS["chat"],
    # More free answers, of the kinds people ask for: nothing in the prompt to copy, so
    # these say what drafting costs when it has little to go on.
    "explain": "Explain how a refrigerator keeps food cold, for a curious ten-year-old.",
    "list": "List ten practical tips for staying focused while studying, one per line.",
    "code": "Write a Python function that checks whether a string is a palindrome, "
            "ignoring case and punctuation, with a docstring and two examples.",
    "qa": "What causes the seasons on Earth? Answer in one paragraph.",
}
CHAT_FORMATS = {  # the models' own chat templates, written out for a raw prompt
    "smollm2": "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
    "gemma3": "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n",
}
KINDS = ("off", "ngram", "ngram_mod", "ngram_map_k")
SEED = 42  # with a temperature, every side samples from the same seed
_METRIC = re.compile(r'^pasture:spec_decode_num_(draft|accepted)_tokens_total\{[^}]*\} (\S+)$',
                     re.MULTILINE)


def spec_counts(client: httpx.Client) -> tuple[float, float]:
    """(drafted, accepted) tokens so far, summed over the server's models."""
    found = {"draft": 0.0, "accepted": 0.0}
    for kind, value in _METRIC.findall(client.get("/metrics").text):
        found[kind] += float(value)
    return found["draft"], found["accepted"]


def engine_side(gguf: Path, threads: int, tokens: int, temperature: float) -> Any:
    server = bare_engine(str(gguf), 4096, threads)

    def run(prompt: str) -> dict[str, float]:
        stamps: list[float] = []
        timings: dict[str, float] = {}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
            timings.update(chunk.get("timings", {}))
            return False

        server.handle_completions({"prompt": prompt, "n_predict": tokens, "stream": True,
                                   "temperature": temperature, "seed": SEED,
                                   "top_k": 40, "top_p": 0.9, "min_p": 0.0,  # Pasture's
                                   "cache_prompt": False}, on_chunk)
        n = int(timings.get("predicted_n", len(stamps)))
        return {"rate": (n - 1) / (stamps[-1] - stamps[0]), "tokens": n,
                "drafted": 0.0, "accepted": 0.0}

    return run, server


def pasture_side(client: httpx.Client, kind: str, tokens: int, temperature: float) -> Any:
    def run(prompt: str) -> dict[str, float]:
        before = spec_counts(client)
        stamps: list[float] = []
        final: dict[str, Any] = {}
        body = {"model": "bench", "prompt": prompt, "raw": True, "keep_alive": -1,
                # num_keep 0 is the engine's own default: both sides the same request
                "options": {"num_predict": tokens, "temperature": temperature, "seed": SEED,
                            "speculative": kind}}
        with client.stream("POST", "/api/generate", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line:
                    continue
                item = json.loads(line)
                if item.get("response"):
                    stamps.append(time.perf_counter())
                if item.get("done"):
                    final = item
        after = spec_counts(client)
        n = int(final.get("eval_count", len(stamps)))
        return {"rate": (n - 1) / (stamps[-1] - stamps[0]), "tokens": n,
                "drafted": after[0] - before[0], "accepted": after[1] - before[1]}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CHAT_FORMATS), default="smollm2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0: greedy; Ollama's default is 0.8 (top_k 40, top_p 0.9)")
    args = parser.parse_args()
    tasks = {name: TASKS[name] for name in args.tasks.split(",")}
    gguf = fetch_smollm2() / SMOLLM2_FILE if args.model == "smollm2" \
        else fetch_gemma3() / GEMMA3_FILE
    kinds = args.kinds.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_pasture(gguf, Path(tmp), args.threads,
                                    PASTURE_MAX_LOADED_MODELS=str(len(kinds) + 1))
        client = httpx.Client(base_url=url, timeout=600)
        try:
            sides = {"engine": engine_side(gguf, args.threads, args.tokens, args.temperature)[0]}
            sides.update({kind: pasture_side(client, kind, args.tokens, args.temperature)
                          for kind in kinds})
            results: dict[tuple[str, str], list[dict[str, float]]] = {}
            for run in sides.values():  # warm-up: loads every runner
                run(CHAT_FORMATS[args.model].format("Hello"))
            for _ in range(args.runs):
                for task, text in tasks.items():
                    prompt = CHAT_FORMATS[args.model].format(text)
                    for side, run in sides.items():
                        results.setdefault((task, side), []).append(run(prompt))
        finally:
            server.terminate()
            server.wait(15)

    sampling = "greedy" if args.temperature == 0 else f"temperature {args.temperature}"
    print(f"# {args.model}, n_ctx 4096, {args.threads} threads, {sampling}, up to {args.tokens} "
          f"tokens, {args.runs} alternating runs (medians); {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'task':6} {'side':12} {'decode tok/s':>13} {'× engine':>9} {'tokens':>7} "
          f"{'drafted':>8} {'accepted':>9}")
    for task in tasks:
        base = statistics.median(r["rate"] for r in results[(task, "engine")])
        for side in sides:
            runs = results[(task, side)]
            rate = statistics.median(r["rate"] for r in runs)
            drafted = sum(r["drafted"] for r in runs) / len(runs)
            accepted = sum(r["accepted"] for r in runs) / len(runs)
            print(f"{task:6} {side:12} {rate:13.1f} {rate / base:9.2f} "
                  f"{int(statistics.median(r['tokens'] for r in runs)):7d} "
                  f"{drafted:8.0f} {accepted:9.0f}")
    os._exit(0)  # the in-process engine: deleting it can hang (pasture.runner.main)


if __name__ == "__main__":
    main()
