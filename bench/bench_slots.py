#!/usr/bin/env python3
"""Aggregate decode throughput for 1/2/4/8 clients: Pasture vs the engine alone, same slots.

For each slot count (`--parallel`, default 1 and 4), the engine alone is xllamacpp's
server in this process with `n_parallel` slots of 4096 tokens each, asked over its own
HTTP port (`/completion`); Pasture is `pasture serve` with `PASTURE_NUM_PARALLEL` set to
the same count (or unset, `auto`: the count it chooses, read from its log), asked over
`/api/generate`. Every client sends its own raw prompt, greedy, `--tokens` tokens; the
aggregate is all clients' generated tokens over the wall time. Speculation is off on both
sides (this measures slots alone). The two sides alternate per client count.

    python bench/bench_slots.py [--parallel 1 4 auto] [--tokens 64] [--model smollm2|gemma3]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO), str(REPO / "scripts"), str(REPO / "bench")]
from bench_parallel import aggregate  # noqa: E402
from engine_alone import bare_engine  # noqa: E402
from fetch_models import GEMMA3_FILE, SMOLLM2_FILE, fetch_gemma3, fetch_smollm2  # noqa: E402

from tests.integration.conftest import import_model, start_server, stop_server  # noqa: E402

CLIENTS = (1, 2, 4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", nargs="+", default=["1", "4"])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", choices=("smollm2", "gemma3"), default="smollm2")
    args = parser.parse_args()
    gguf = fetch_smollm2() / SMOLLM2_FILE if args.model == "smollm2" \
        else fetch_gemma3() / GEMMA3_FILE
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for setting in args.parallel:
            env = {"PASTURE_NUM_THREADS": str(args.threads)}
            if setting != "auto":
                env["PASTURE_NUM_PARALLEL"] = setting
            server = start_server(root / f"models-{setting}", root / f"log-{setting}", **env)
            try:
                import_model(server.url, gguf, "bench")

                def ask_pasture(prompt: str, url: str = server.url) -> int:
                    return httpx.post(url + "/api/generate", timeout=900, json={
                        "model": "bench", "raw": True, "stream": False, "prompt": prompt,
                        "keep_alive": -1, "options": {"num_predict": args.tokens,
                                                      "temperature": 0, "speculative": "off"},
                    }).json()["eval_count"]

                ask_pasture("Hello")  # loads the model
                found = re.search(r"placing .*, (\d+) slots", server.log())
                slots = int(found.group(1)) if found else int(setting)
                engine = bare_engine(str(gguf), 4096 * slots, args.threads, slots=slots)
                address = engine.listening_address

                def ask_engine(prompt: str, url: str = address) -> int:
                    return httpx.post(url + "/completion", timeout=900, json={
                        "prompt": prompt, "n_predict": args.tokens, "temperature": 0,
                        "cache_prompt": True}).json()["tokens_predicted"]

                ask_engine("Hello")
                engine_rates, pasture_rates = [], []
                for clients in CLIENTS:
                    engine_rates.append(aggregate(ask_engine, clients))
                    pasture_rates.append(aggregate(ask_pasture, clients))
                rows.append((setting, slots, engine_rates, pasture_rates))
                # The engine stays loaded until the process ends (deleting it can hang).
            finally:
                stop_server(server)

    print(f"# {args.model}, {args.threads} threads, {args.tokens} tokens per client, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f}")
    print("| NUM_PARALLEL | slots | side | " + " | ".join(f"{c} clients" for c in CLIENTS)
          + " |")
    print("|---|---|---|" + "---|" * len(CLIENTS))
    for setting, slots, engine_rates, pasture_rates in rows:
        print(f"| {setting} | {slots} | engine | "
              + " | ".join(f"{r:.1f}" for r in engine_rates) + " |")
        print(f"| {setting} | {slots} | pasture | "
              + " | ".join(f"{p:.1f} ({p / e:.2f}×)" for p, e in zip(pasture_rates,
                                                                      engine_rates,
                                                                      strict=True))
              + " |")
    os._exit(0)  # the in-process engines: deleting them can hang (pasture.runner.main)


if __name__ == "__main__":
    main()
