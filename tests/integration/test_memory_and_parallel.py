"""Memory estimates against what the engine allocates, and many clients on one model.

The estimate tests start runners directly (no server); most others share one server of
their own started with PASTURE_NUM_PARALLEL=4, so that four requests can be batched; the
last uses the session's server, where the slots are chosen automatically.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pasture.runner.base import LoadSpec
from pasture.runner.process import ProcessRunner
from pasture.scheduler.memory import estimate_spec
from tests.ggufs import write_tiny_llama
from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

MODEL = "smollm2:135m"
# The estimate is within this fraction of the engine's own buffer total (measured: < 3 %).
TOLERANCE = 0.10


async def _allocated(spec: LoadSpec) -> int:
    """Bytes the engine logged for its buffers after loading `spec`."""
    runner = await ProcessRunner.start(spec, timeout=120)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the log is read concurrently with the load
            if any(kind == "compute" for _, _, kind in runner.buffers.buffers):
                break
            await asyncio.sleep(0.05)
        return runner.buffers.total
    finally:
        await runner.close()


@pytest.mark.parametrize("shape", [
    {"n_layers": 2, "n_embd": 64, "n_ff": 128, "n_head": 4, "n_head_kv": 2},
    {"n_layers": 3, "n_embd": 512, "n_ff": 1024, "n_head": 8, "n_head_kv": 8},
])
def test_estimate_matches_engine_allocation_on_tiny_models(tmp_path: Path,
                                                           shape: dict[str, int]) -> None:
    path = write_tiny_llama(tmp_path / "m.gguf", context_length=8192, **shape)
    spec = LoadSpec(str(path), num_ctx=4096, num_parallel=2, num_thread=2, pooling="last")
    actual = asyncio.run(_allocated(spec))
    estimated = estimate_spec(spec).total_bytes(0)
    assert actual > 0
    assert abs(estimated - actual) <= TOLERANCE * actual, (estimated, actual)


def test_estimate_matches_engine_allocation_on_smollm2(smollm2_gguf: Path) -> None:
    spec = LoadSpec(str(smollm2_gguf), num_ctx=2048, num_parallel=4, num_thread=2,
                    pooling="last", kv_cache_type="q8_0")
    actual = asyncio.run(_allocated(spec))
    estimated = estimate_spec(spec).total_bytes(0)
    assert abs(estimated - actual) <= TOLERANCE * actual, (estimated, actual)


@pytest.fixture(scope="module")
def parallel_server(tmp_path_factory: pytest.TempPathFactory,
                    smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("parallel")
    running = start_server(root / "models", root / "server.log", PASTURE_NUM_PARALLEL="4",
                           PASTURE_NUM_THREADS="2")
    try:
        import_model(running.url, smollm2_gguf, MODEL)
        yield running
    finally:
        stop_server(running)


def test_four_concurrent_requests_are_decoded_together(parallel_server: RunningServer) -> None:
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    prompts = ["The sky is", "My favourite food is", "Once upon a time", "The ocean"]

    def client(index: int) -> None:
        body = {"model": MODEL, "prompt": prompts[index], "raw": True,
                "options": {"num_predict": 24, "temperature": 0}}
        first = True
        with httpx.stream("POST", parallel_server.url + "/api/generate", json=body,
                          timeout=120) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                chunk = json.loads(line)
                with lock:
                    if first and chunk.get("response"):
                        events.append(("first", index))
                        first = False
                    if chunk["done"]:
                        events.append(("done", index))

    # Load the model first so that all four requests meet a ready runner.
    httpx.post(parallel_server.url + "/api/generate", json={"model": MODEL}, timeout=120)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    kinds = [kind for kind, _ in events]
    assert sorted(events) == sorted([("first", i) for i in range(4)] +
                                    [("done", i) for i in range(4)])
    # Batched, every stream has produced a token before any finishes; one after
    # another, the first would finish before the second began.
    assert kinds.index("done") > max(i for i, kind in enumerate(kinds) if kind == "first")


def test_a_shared_long_system_prompt_is_not_processed_again(
        parallel_server: RunningServer) -> None:
    system = " ".join(f"Rule {i}: answer politely and briefly about topic number {i}."
                      for i in range(80))  # about 1,000 tokens

    def ask(question: str) -> dict:
        reply = httpx.post(parallel_server.url + "/v1/chat/completions", timeout=120, json={
            "model": MODEL, "max_tokens": 1,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": question}],
        })
        assert reply.status_code == 200, reply.text
        return reply.json()["usage"]

    cold = ask("What is rule 3?")
    warm = ask("And what about rule 7?")
    # prompt_tokens counts the whole prompt (as Ollama's usage does); the engine reports
    # how much of it came from its cache: the shared system prompt, not processed again.
    assert warm["prompt_tokens"] > 900
    assert cold["prompt_tokens_details"]["cached_tokens"] < 100
    assert warm["prompt_tokens_details"]["cached_tokens"] > 900, (cold, warm)
    assert warm["prompt_tokens"] - warm["prompt_tokens_details"]["cached_tokens"] < 50


def test_ps_reports_engine_allocations_and_cpu_placement(
        parallel_server: RunningServer, smollm2_gguf: Path) -> None:
    httpx.post(parallel_server.url + "/api/generate", json={"model": MODEL}, timeout=120)
    (entry,) = httpx.get(parallel_server.url + "/api/ps").json()["models"]
    # Weights + KV cache for 4 slots × 4096 + compute: well above the file, not estimated.
    assert entry["size"] > smollm2_gguf.stat().st_size + 4 * 45 * (1 << 20)
    assert entry["size_vram"] == 0  # this machine's engine has no GPU
    spec = LoadSpec(str(smollm2_gguf), num_ctx=4096, num_parallel=4, pooling="last")
    assert abs(entry["size"] - estimate_spec(spec).total_bytes(0)) <= TOLERANCE * entry["size"]
    assert "placing smollm2:135m: CPU (no GPU)" in parallel_server.log()


def test_buffers_larger_than_memory_fail_as_out_of_memory(tmp_path: Path) -> None:
    """A real allocation failure (a KV cache four times the machine's memory) is reported as
    RunnerOutOfMemory, which the scheduler answers by retrying with fewer GPU layers."""
    import os

    from pasture.runner.base import RunnerOutOfMemory

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    num_ctx = 1 << (4 * ram // 6144).bit_length()  # 6 KiB of K and V per token
    path = write_tiny_llama(tmp_path / "m.gguf", n_layers=3, n_embd=512, n_ff=1024, n_head=8,
                            n_head_kv=8, context_length=num_ctx)
    spec = LoadSpec(str(path), num_ctx=num_ctx, num_thread=2, pooling="last")
    assert estimate_spec(spec).kv_bytes > 4 * ram
    with pytest.raises(RunnerOutOfMemory, match="not enough memory"):
        asyncio.run(ProcessRunner.start(spec, timeout=120))


def test_flash_attention_can_be_turned_off(tmp_path: Path, smollm2_gguf: Path) -> None:
    """OLLAMA_FLASH_ATTENTION=0 reaches the engine, as in Ollama (unset, llama.cpp decides)."""
    running = start_server(tmp_path / "models", tmp_path / "server.log",
                           OLLAMA_FLASH_ATTENTION="0", PASTURE_DEBUG="1")
    try:
        import_model(running.url, smollm2_gguf, MODEL)
        reply = httpx.post(running.url + "/api/generate", timeout=120, json={
            "model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 1}})
        assert reply.status_code == 200, reply.text
    finally:
        stop_server(running)
    assert re.search(r"flash_attn\s+= disabled", running.log())


def test_slots_are_chosen_for_the_machine_when_num_parallel_is_unset(
        server: RunningServer) -> None:
    """The shared server leaves PASTURE_NUM_PARALLEL unset: SmolLM2 fits four slots in
    this machine's memory, so two clients are served at once, neither waiting."""
    httpx.post(server.url + "/api/generate", json={"model": MODEL}, timeout=120)
    assert re.search(r"placing smollm2:135m: CPU \(no GPU\), 4 slots", server.log())
    seen: list[tuple[int, int]] = []
    answered: list[int] = []

    def client(index: int) -> None:
        answered.append(httpx.post(server.url + "/api/generate", timeout=300, json={
            "model": MODEL, "prompt": f"Story {index}. Once upon a time", "raw": True,
            "stream": False, "options": {"num_predict": 64, "temperature": 0}}).status_code)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        (entry,) = httpx.get(server.url + "/api/ps", timeout=30).json()["models"]
        seen.append((entry["running"], entry["waiting"]))
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert answered == [200, 200]
    assert (2, 0) in seen and all(waiting == 0 for _, waiting in seen)
