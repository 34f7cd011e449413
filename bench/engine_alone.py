#!/usr/bin/env python3
"""The engine with nothing around it, for bench/gpu_engines.py to measure Pasture against.

A child Python that imports only the standard library and whichever xllamacpp is first on
its path (the engine build under test), loads one model, says hello, then answers one
streamed completion per line it reads on stdin. Nothing else is imported before the
engine: on the H100 machine the CUDA build crashed (SIGSEGV, no output) in a child that
had imported numpy, httpx and Pasture first.

Each reply is one stdout line, ANSWER followed by JSON; llama.cpp may log to stdout too.

    python bench/engine_alone.py MODEL.gguf --tokens N --threads N --ctx N
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

ANSWER = "@answer "


def answer(data: dict[str, Any]) -> None:
    print(ANSWER + json.dumps(data), flush=True)


def bare_engine(model: str, ctx: int, threads: int, gpu_layers: int = 0,
                slots: int = 1) -> Any:
    """xllamacpp's server for `model` with `slots` slots sharing `ctx` and nothing of
    Pasture's around it: what the benchmarks measure Pasture against (whichever xllamacpp
    is first on the path). It also answers HTTP on 127.0.0.1 (`listening_address`)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.n_ctx = ctx
    params.n_parallel = slots
    params.n_gpu_layers = gpu_layers
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.fit_params = False
    params.warmup = False
    params.port = 0
    params.flash_attn_type = xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_AUTO
    return xllamacpp.Server(params)


def generate(server: Any, prompt: str, tokens: int) -> dict[str, Any]:
    """One streamed completion through xllamacpp's own call: when each piece arrived,
    the text, and llama.cpp's timings."""
    stamps: list[float] = []
    text: list[str] = []
    timings: dict[str, float] = {}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if piece := chunk["choices"][0]["text"]:
            stamps.append(time.perf_counter())
            text.append(piece)
        timings.update(chunk.get("timings", {}))
        return False  # go on

    server.handle_completions({"prompt": prompt, "n_predict": tokens, "stream": True,
                               "temperature": 0, "cache_prompt": True}, on_chunk)
    return {"stamps": stamps, "text": "".join(text), "timings": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--ctx", type=int, required=True)
    args = parser.parse_args()

    import xllamacpp

    server = bare_engine(args.model, args.ctx, args.threads, gpu_layers=999)
    answer({"path": xllamacpp.__file__, "system_info": xllamacpp.get_system_info()})
    for line in sys.stdin:  # one JSON string per line: the prompt
        answer(generate(server, json.loads(line), args.tokens))
    os._exit(0)  # deleting the engine can hang (as in pasture.runner.main)


if __name__ == "__main__":
    main()
