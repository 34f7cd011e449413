"""Print an answer as it is generated: `python examples/streaming.py`."""

from __future__ import annotations

import os

from pasture.client import Client

MODEL = os.environ.get("PASTURE_EXAMPLE_MODEL", "smollm2:135m")

for part in Client().generate(MODEL, "Why is the sky blue?", stream=True,
                              options={"num_predict": 48}):
    print(part.response, end="", flush=True)
    if part.done:
        print(f"\n[{part.done_reason}, {part.eval_count} tokens]")
