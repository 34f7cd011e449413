"""`pasture bench MODEL`: what a model does on this machine, measured through the server.

Everything is asked of the running server with the client, as a user's requests would be,
and read from the engine's own counts and timings in the replies: load time, time to
first token, prompt (prefill) and decode speed, and the tokens per second the server
generates in total for 1, 2, 4 and 8 clients at once — each with speculative decoding
off and on (`speculative: ngram`, the default). Decode is measured on two tasks: *chat*
(free text) and *echo* (copying a passage with one change, where speculation helps).
Prints a table, writes the figures as JSON and, with matplotlib installed (`pip install
pasture[bench]`), a PNG chart.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from pasture.client import AsyncClient

PASSAGE = (
    "The lighthouse stood at the end of a narrow spit of rock, its white tower streaked "
    "with salt and rust. Every evening the keeper climbed the one hundred and twelve steps "
    "to the lamp room, trimmed the wick, polished the great lens and wound the clockwork "
    "that turned the light. Ships passing in the night saw its beam sweep across the water "
    "once every ten seconds, a steady promise that the rocks were near and the harbour was "
    "close. In winter the storms came in from the west, and the waves broke so high against "
    "the tower that spray rattled the windows of the lamp room itself."
)
TASKS = {
    "chat": "Write a short story about a fox who learns to play the violin.",
    "echo": "Copy the following passage exactly, word for word, but write \"keeper\" as "
            f"\"warden\" everywhere. Output only the passage.\n\n{PASSAGE}",
}
KINDS = ("off", "ngram")  # speculative decoding off, and the default


async def measure(client: AsyncClient, model: str, clients: list[int], tokens: int,
                  say: Any = print) -> dict[str, Any]:
    """Every figure, for `model` on the server `client` talks to; `say` reports progress."""
    nonce = f"{time.time_ns():x}"  # no request may reuse a cached prompt from an earlier run
    await client.generate(model, "", keep_alive=0)  # unloaded: the next request loads it
    say("loading")
    started = time.perf_counter()
    loaded = await client.generate(model, "", options={"speculative": "off"})
    load_s = (loaded.load_duration or 0) / 1e9 or time.perf_counter() - started

    say("prompt processing")
    long_prompt = f"Run {nonce}. " + " ".join([PASSAGE] * 4) + "\nSummarise the passage."
    prefill = await client.generate(model, long_prompt, options={
        "num_predict": 1, "temperature": 0, "speculative": "off"})
    prefill_tps = _rate(prefill.prompt_eval_count, prefill.prompt_eval_duration)
    ttfts = [await _ttft(client, model, f"Say hello to visitor {nonce}-{i}.")
             for i in range(3)]

    decode: dict[str, dict[str, float]] = {}
    generated: dict[str, dict[str, int]] = {}
    throughput: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        options = {"num_predict": tokens, "temperature": 0, "speculative": kind}
        for task, text in TASKS.items():
            say(f"decoding: {task}, speculative {kind}")
            reply = await client.chat(model, [{"role": "user", "content": text}],
                                      options=options)
            decode.setdefault(task, {})[kind] = _rate(reply.eval_count, reply.eval_duration)
            generated.setdefault(task, {})[kind] = reply.eval_count or 0
        for n in clients:
            say(f"{n} clients at once, speculative {kind}")
            throughput.setdefault(kind, {})[str(n)] = await _aggregate(
                client, model, n, options, nonce)
    return {
        "model": model, "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_seconds": load_s, "ttft_seconds": statistics.median(ttfts),
        "prompt_tokens": prefill.prompt_eval_count, "prefill_tokens_per_second": prefill_tps,
        "decode_tokens_per_second": decode, "decode_tokens": generated,
        "aggregate_tokens_per_second": throughput, "tokens_per_request": tokens,
        # Other work on the machine moves every figure: say how busy it was.
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _rate(count: int | None, duration_ns: int | None) -> float:
    return (count or 0) / (duration_ns / 1e9) if duration_ns else 0.0


async def _ttft(client: AsyncClient, model: str, prompt: str) -> float:
    """Seconds from sending a short prompt to its first streamed text."""
    started = time.perf_counter()
    stream = await client.generate(model, prompt, stream=True,
                                   options={"num_predict": 4, "speculative": "off"})
    first = None
    async for part in stream:
        if first is None and part.response:
            first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


async def _aggregate(client: AsyncClient, model: str, n: int, options: dict[str, Any],
                     nonce: str) -> float:
    """Tokens per second generated in total by `n` clients asking at once."""
    async def one(i: int) -> int:
        reply = await client.chat(model, [{"role": "user", "content":
                                           f"{TASKS['chat']} Story {nonce}-{n}-{i}."}],
                                  options=options)
        return reply.eval_count or 0

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(counts) / (time.perf_counter() - started)


def table(report: dict[str, Any]) -> str:
    """The figures as the terminal shows them."""
    lines = [
        f"{report['model']} on {report['machine']}, {report['date']}"
        + (f", load average {report['load_average']:.2f}"
           if report.get("load_average") is not None else ""),
        f"load time            {report['load_seconds']:8.2f} s",
        f"time to first token  {report['ttft_seconds'] * 1000:8.0f} ms",
        f"prompt processing    {report['prefill_tokens_per_second']:8.1f} tokens/s "
        f"({report['prompt_tokens']} tokens)",
        "",
        f"{'decode tokens/s':24}" + "".join(f"{'speculative ' + k:>18}" for k in KINDS),
    ]
    for task, rates in report["decode_tokens_per_second"].items():
        lines.append(f"  {task:22}" + "".join(f"{rates.get(k, 0):18.1f}" for k in KINDS))
    lines.append(f"{'all clients, tokens/s':24}" + "".join(f"{'speculative ' + k:>18}"
                                                           for k in KINDS))
    throughput = report["aggregate_tokens_per_second"]
    for n in throughput.get(KINDS[0], {}):
        lines.append(f"  {n + ' at once':22}"
                     + "".join(f"{throughput.get(k, {}).get(n, 0):18.1f}" for k in KINDS))
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> bool:
    """A PNG of decode speeds and aggregate throughput; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    decode = report["decode_tokens_per_second"]
    tasks = list(decode)
    for offset, kind in enumerate(KINDS):
        left.bar([i + offset * 0.4 for i in range(len(tasks))],
                 [decode[task].get(kind, 0) for task in tasks], width=0.4,
                 label=f"speculative {kind}")
    left.set_xticks([i + 0.2 for i in range(len(tasks))], tasks)
    left.set_ylabel("decode tokens/s")
    left.legend()
    for kind, rates in report["aggregate_tokens_per_second"].items():
        right.plot([int(n) for n in rates], list(rates.values()), marker="o",
                   label=f"speculative {kind}")
    right.set_xlabel("clients at once")
    right.set_ylabel("tokens/s, all clients")
    right.legend()
    figure.suptitle(f"{report['model']} — {report['machine']}, {report['date']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def run(model: str, clients: list[int], tokens: int, output: Path) -> None:
    """Measure, print the table, and write `output`.json (and .png)."""
    async def go() -> dict[str, Any]:
        async with AsyncClient(timeout=None) as client:
            return await measure(client, model, clients, tokens,
                                 say=lambda text: print(f"… {text}", flush=True))

    report = asyncio.run(go())
    print(table(report), end="")
    json_path = Path(f"{output}.json")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {json_path}")
    png_path = Path(f"{output}.png")
    if chart(report, png_path):
        print(f"wrote {png_path}")
    else:
        print("no chart: matplotlib is not installed (pip install 'pasture[bench]')")
