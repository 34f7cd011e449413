#!/usr/bin/env python3
"""Decode with the engine in-process, for a profiler to sample: which build is imported
decides what is measured (put a build's `site` first on PYTHONPATH).

    perf record -F 999 -e cpu-clock -o default.data python bench/profile_engine.py
    PYTHONPATH=~/.pasture/engines/native/site \\
        perf record -F 999 -e cpu-clock -o native.data python bench/profile_engine.py
    perf report -i native.data --no-children --sort symbol --stdio | head -30

Prints the build it imported and its decode rate on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import xllamacpp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from engine_alone import bare_engine  # noqa: E402
from fetch_models import SMOLLM2_FILE, fetch_smollm2  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=fetch_smollm2() / SMOLLM2_FILE)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    server = bare_engine(str(args.model), 2048, args.threads)
    chunks = 0

    def on_chunk(chunk: dict) -> bool:
        nonlocal chunks
        chunks += 1
        return False

    started = time.perf_counter()
    server.handle_completions({"prompt": "Once upon a time, in an old lighthouse",
                               "n_predict": args.tokens, "stream": True, "temperature": 0},
                              on_chunk)
    rate = chunks / (time.perf_counter() - started)
    print(f"{xllamacpp.__file__}: {chunks} chunks, {rate:.1f} tokens/s", file=sys.stderr)
    os._exit(0)  # deleting the engine can hang; nothing is left to flush


if __name__ == "__main__":
    main()
