"""Fuzz the GGUF header reader: `python fuzz/fuzz_gguf.py -max_total_time=300 [CORPUS]`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.harness import main  # noqa: E402

if __name__ == "__main__":
    main("gguf")
