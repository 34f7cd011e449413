#!/usr/bin/env python3
"""Prove GPU placement on a real NVIDIA GPU: full offload, forced partial offload, CPU.

Self-contained for the GPU machine (Python 3.12, the CUDA build of xllamacpp, no network,
no compiler): it writes a random-weight llama-shaped F16 model of about 1.1 B parameters
with the project's own GGUF helpers (tests/ggufs.py), starts `python -m pasture serve` on
a free port with a temporary store, imports the model through the API and, for each
placement, generates 128 tokens twice (raw prompt, temperature 0) and reads what the
server chose:

    auto      no num_gpu, whole card free               expect 100% GPU
    partial   PASTURE_GPU_MEMORY_LIMIT set to about     expect a CPU/GPU split
              half the model's GPU bytes
    cpu       options.num_gpu = 0                        expect 100% CPU

The table (placement, layers offloaded, size, size_vram, PROCESSOR, decode tokens/s) and
the serve log line naming the engine build are printed and written to $OUT/gpu_check.txt
when OUT is set (with the server logs beside it). Exit status 1 if a placement is not
what was expected.

On the GPU machine the CUDA build is an engine build installed beside PyPI's CPU wheel,
Pasture's default engine. With `.gpu/site` installed and `.gpu/cuda` carried (the two
device calls in bench/gpu_engines.py; this can follow in the second call):

    export PYTHONPATH=$PWD/.gpu/site:$PWD/src PASTURE_ENGINES=$(mktemp -d)
    python3 -m pasture engine install .gpu/cuda/*.whl && python3 bench/gpu_check.py

    python bench/gpu_check.py --cpu-smoke     # a tiny model on a CPU machine: plumbing only
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from pasture.cli.render import processor  # noqa: E402
from pasture.runner.base import LoadSpec  # noqa: E402
from pasture.scheduler.memory import estimate_spec  # noqa: E402
from pasture.scheduler.placement import GPU_RUNTIME_BYTES  # noqa: E402
from tests.ggufs import _spm_vocab, write_gguf  # noqa: E402

MODEL = "gpucheck"
PROMPT = "Once upon a time, in an old lighthouse by a stormy sea, there lived"
MiB = 1 << 20


@dataclass(frozen=True)
class Shape:
    n_embd: int
    n_layers: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int


FULL = Shape(n_embd=2048, n_layers=22, n_ff=5632, n_head=32, n_head_kv=4, n_vocab=32000)
SMOKE = Shape(n_embd=256, n_layers=4, n_ff=512, n_head=8, n_head_kv=2, n_vocab=32000)


def write_model(path: Path, shape: Shape) -> Path:
    """A llama-shaped F16 model with random weights (a tiled random pool: seconds)."""
    tokens, scores, types = _spm_vocab()
    extra = shape.n_vocab - len(tokens)
    tokens += [f"<extra_{i}>" for i in range(extra)]
    scores += [-1000.0 - i for i in range(extra)]
    types += [1] * extra
    head_dim = shape.n_embd // shape.n_head
    metadata = {
        "general.name": "gpu-check-1.1b",
        "general.file_type": 1,  # F16
        "llama.context_length": 4096,
        "llama.embedding_length": shape.n_embd,
        "llama.block_count": shape.n_layers,
        "llama.feed_forward_length": shape.n_ff,
        "llama.attention.head_count": shape.n_head,
        "llama.attention.head_count_kv": shape.n_head_kv,
        "llama.rope.dimension_count": head_dim,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": scores,
        "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
    }
    pool = (np.random.default_rng(0).standard_normal(1 << 22) * 0.02).astype(np.float16)

    def weight(*numpy_shape: int) -> np.ndarray:  # numpy shapes are ggml's reversed
        return np.resize(pool, numpy_shape)

    def norm() -> np.ndarray:
        return np.ones(shape.n_embd, dtype=np.float32)

    kv = shape.n_head_kv * head_dim
    tensors = [("token_embd.weight", weight(shape.n_vocab, shape.n_embd)),
               ("output_norm.weight", norm()),
               ("output.weight", weight(shape.n_vocab, shape.n_embd))]
    for i in range(shape.n_layers):
        tensors += [
            (f"blk.{i}.attn_norm.weight", norm()),
            (f"blk.{i}.attn_q.weight", weight(shape.n_embd, shape.n_embd)),
            (f"blk.{i}.attn_k.weight", weight(kv, shape.n_embd)),
            (f"blk.{i}.attn_v.weight", weight(kv, shape.n_embd)),
            (f"blk.{i}.attn_output.weight", weight(shape.n_embd, shape.n_embd)),
            (f"blk.{i}.ffn_norm.weight", norm()),
            (f"blk.{i}.ffn_gate.weight", weight(shape.n_ff, shape.n_embd)),
            (f"blk.{i}.ffn_up.weight", weight(shape.n_ff, shape.n_embd)),
            (f"blk.{i}.ffn_down.weight", weight(shape.n_embd, shape.n_ff)),
        ]
    return write_gguf(path, metadata, tensors)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(*first: Path, **env: str) -> dict[str, str]:
    """The environment for a child Python: `first` (an engine build's site), then the
    project's sources, ahead of whatever PYTHONPATH holds (`.gpu/site` on the GPU machine)."""
    path = [*map(str, first), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path)), **env}


class Server:
    """`python -m pasture serve` in a subprocess, logging to a file."""

    def __init__(self, models: Path, log_path: Path, **env: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        environ = child_env(PASTURE_HOST=f"127.0.0.1:{port}", PASTURE_MODELS=str(models),
                            PASTURE_NOPRUNE="1", **env)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "pasture", "serve"],
                                        env=environ, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("server exited:\n" + self.log())
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("server did not start:\n" + self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        await_exit(self.process, 20)
        self._log.close()


def await_exit(process: subprocess.Popen, seconds: float) -> None:
    """Wait for a child asked to stop; kill it if it is still there after `seconds`."""
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def import_model(url: str, gguf: Path) -> None:
    """Blob upload, then create: what `pasture create` does."""
    sha = hashlib.sha256()
    with open(gguf, "rb") as f:
        while chunk := f.read(8 << 20):
            sha.update(chunk)
    digest = "sha256:" + sha.hexdigest()
    with httpx.Client(base_url=url, timeout=600) as client:
        with open(gguf, "rb") as f:
            client.post(f"/api/blobs/{digest}", content=f).raise_for_status()
        reply = client.post("/api/create", json={"model": MODEL, "stream": False,
                                                 "files": {gguf.name: digest}})
        if reply.status_code != 200:
            raise SystemExit(f"create failed: {reply.status_code} {reply.text}")


@dataclass
class Row:
    placement: str
    layers: str
    size: int
    size_vram: int
    processor: str
    rates: list[float]
    counts: list[int]
    expected: str
    ok: bool


def generate(url: str, options: dict, tokens: int) -> dict:
    reply = httpx.post(url + "/api/generate", timeout=600, json={
        "model": MODEL, "prompt": PROMPT, "raw": True, "stream": False,
        "options": {"temperature": 0, "num_predict": tokens, **options},
    })
    if reply.status_code != 200:
        raise CheckFailed(f"generate failed: {reply.status_code} {reply.text}")
    return reply.json()


def unload(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # a dead server has nothing loaded
        httpx.post(url + "/api/generate", json={"model": MODEL, "keep_alive": 0}, timeout=120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and httpx.get(url + "/api/ps").json()["models"]:
            time.sleep(0.2)


_PLACED = re.compile(rf"placing {MODEL}:latest: (?:(\d+)/(\d+) layers on (\S+)|CPU)(.*)")


class CheckFailed(Exception):
    """A placement could not be measured; its row says why and the others still run."""


def measure(server: Server, name: str, options: dict, tokens: int, expected: str) -> Row:
    offset = len(server.log())
    try:
        return _measure(server, name, options, tokens, expected, offset)
    except (CheckFailed, httpx.HTTPError, KeyError, ValueError) as exc:
        unload(server.url)
        return Row(name, "?", 0, 0, f"ERROR: {str(exc)[:200]}", [0.0, 0.0], [0, 0], expected,
                   False)


def _measure(server: Server, name: str, options: dict, tokens: int, expected: str,
             offset: int) -> Row:
    rates, counts = [], []
    for _ in range(2):
        body = generate(server.url, options, tokens)
        rates.append(body["eval_count"] / (body["eval_duration"] / 1e9))
        counts.append(body["eval_count"])
    (entry,) = httpx.get(server.url + "/api/ps").json()["models"]
    log = server.log()[offset:]
    placed = _PLACED.findall(log)
    if placed and placed[-1][0]:
        layers = f"{placed[-1][0]}/{placed[-1][1]} on {placed[-1][2]}"
    else:
        layers = "0 (CPU)" if placed else "?"
    retries = [line for line in log.splitlines() if "retrying with" in line]
    if retries:
        layers += f" after {len(retries)} OOM retr{'y' if len(retries) == 1 else 'ies'}"
    proc = processor(entry["size"], entry["size_vram"])
    ok = {"gpu": proc == "100% GPU", "split": proc.endswith("CPU/GPU"),
          "cpu": proc == "100% CPU", "any": True}[expected]
    unload(server.url)
    return Row(name, layers, entry["size"], entry["size_vram"], proc, rates, counts, expected,
               ok)


def partial_limit(gguf: Path, shape: Shape) -> int:
    """A GPU memory cap that leaves room for about half the blocks (and not the output)."""
    est = estimate_spec(LoadSpec(str(gguf), num_ctx=4096, pooling="last"))
    return GPU_RUNTIME_BYTES + est.gpu_bytes(shape.n_layers // 2) + 32 * MiB


def table(rows: list[Row], header: list[str]) -> str:
    lines = header + [
        "| placement | n_gpu_layers | size (MiB) | size_vram (MiB) | PROCESSOR | "
        "decode tok/s (run 1, run 2) | tokens | as expected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.placement} | {r.layers} | {r.size / MiB:.0f} | "
                     f"{r.size_vram / MiB:.0f} | {r.processor} | "
                     f"{r.rates[0]:.1f}, {r.rates[1]:.1f} | {r.counts[0]}, {r.counts[1]} | "
                     f"{'yes' if r.ok else 'NO (expected ' + r.expected + ')'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny model, 16 tokens, no GPU expectations (plumbing check)")
    args = parser.parse_args()
    shape, tokens = (SMOKE, 16) if args.cpu_smoke else (FULL, 128)
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        t0 = time.monotonic()
        gguf = write_model(root / "gpu-check.gguf", shape)
        print(f"wrote {gguf.stat().st_size / MiB:.0f} MiB model in "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        models = root / "models"
        logs = out or root

        server = Server(models, logs / "serve-auto.log")
        try:
            import_model(server.url, gguf)
            build = next((line for line in server.log().splitlines() if "engine:" in line),
                         "engine line missing")
            gpus = [line for line in server.log().splitlines() if " gpu " in line]
            print(build, *gpus, sep="\n", flush=True)
            rows = [measure(server, "auto", {}, tokens, "any" if args.cpu_smoke else "gpu")]
            print(rows[-1], flush=True)
            rows.append(measure(server, "cpu (num_gpu 0)", {"num_gpu": 0}, tokens, "cpu"))
            print(rows[-1], flush=True)
        finally:
            server.stop()

        limit = partial_limit(gguf, shape)
        server = Server(models, logs / "serve-partial.log",
                        PASTURE_GPU_MEMORY_LIMIT=str(limit))
        try:
            rows.insert(1, measure(server, f"partial (limit {limit // MiB} MiB)", {}, tokens,
                                   "any" if args.cpu_smoke else "split"))
            print(rows[1], flush=True)
        finally:
            server.stop()

    header = [f"# gpu_check ({'CPU smoke' if args.cpu_smoke else 'GPU'}), "
              f"{time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f} s",
              "", f"serve log: {build.strip()}", *[f"serve log: {g.strip()}" for g in gpus],
              f"model: llama-shaped F16, n_embd {shape.n_embd}, {shape.n_layers} layers, n_ff "
              f"{shape.n_ff}, {shape.n_head} heads / {shape.n_head_kv} KV, vocab {shape.n_vocab};"
              f" {tokens} tokens, temperature 0, num_ctx 4096", ""]
    text = table(rows, header)
    print(text)
    if "GPU" not in build and not args.cpu_smoke:
        print("the engine build is not a GPU build", file=sys.stderr)
        text += "\nFAIL: the engine build is not a GPU build\n"
    if out:
        (out / "gpu_check.txt").write_text(text)
    ok = all(r.ok for r in rows) and (args.cpu_smoke or "GPU" in build)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
