"""Prompt caches that survive a reload: a long shared prefix is not computed again after the
model is unloaded and loaded, and a damaged or forged cache file is removed, not loaded.

Counts, not times: the engine's reply says how many prompt tokens it reused
(`usage.prompt_tokens_details.cached_tokens`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest

from pasture.runner.base import LoadSpec
from pasture.runner.process import ProcessRunner
from pasture.runner.prompt_cache import Post, PromptCache
from tests.integration.conftest import MODEL, RunningServer

# About 400 tokens of system prompt: past the cache's 256-token minimum.
SYSTEM = "You are the archivist of a lighthouse. " + " ".join(
    f"Rule {i}: log ship {i} by name, flag and hour." for i in range(40))


def _ask(api: httpx.Client, question: str) -> dict[str, int]:
    reply = api.post("/v1/chat/completions", json={
        "model": MODEL, "max_tokens": 4, "temperature": 0,
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": question}]})
    assert reply.status_code == 200, reply.text
    usage = reply.json()["usage"]
    return {"prompt": usage["prompt_tokens"],
            "cached": usage["prompt_tokens_details"]["cached_tokens"]}


def _unload(api: httpx.Client) -> None:
    assert api.post("/api/generate", json={"model": MODEL, "keep_alive": 0}).status_code == 200
    assert api.get("/api/ps").json()["models"] == []


def _cache_files(server: RunningServer) -> list[Path]:
    return sorted((server.models_dir / "prompt-cache").glob("*-slot-*.bin"))


@pytest.fixture(autouse=True)
def empty_cache(server: RunningServer, api: httpx.Client) -> None:
    """The shared server's runners unloaded (saving their slots) and its prompt cache
    emptied: the tests count the files their own requests leave."""
    for model in api.get("/api/ps").json()["models"]:
        api.post("/api/generate", json={"model": model["name"], "keep_alive": 0})
    for path in (server.models_dir / "prompt-cache").glob("*"):
        path.unlink()


def test_a_long_prefix_is_reused_after_unload_and_reload(server: RunningServer,
                                                          api: httpx.Client) -> None:
    first = _ask(api, "Which ship came first?")
    assert first["prompt"] > 300
    _unload(api)
    (saved,) = _cache_files(server)
    record = json.loads(saved.with_suffix(".json").read_text())
    assert record["tokens"] >= first["prompt"]
    assert record["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()

    again = _ask(api, "Which ship came last?")  # loads the model afresh
    assert again["cached"] > 300  # the system prompt and the template's head
    assert again["cached"] < again["prompt"]  # the new question was computed


def test_a_damaged_or_forged_cache_file_is_removed_not_loaded(server: RunningServer,
                                                              api: httpx.Client) -> None:
    _ask(api, "Which ship came first?")
    _unload(api)
    (saved,) = _cache_files(server)
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the checksum no longer matches
    saved.write_bytes(bytes(data))
    stray = saved.parent / "stray.bin"
    stray.write_bytes(b"not ours")

    assert _ask(api, "Which ship came last?")["cached"] == 0
    assert not saved.exists() and not saved.with_suffix(".json").exists()

    _unload(api)  # saves again, and tidies the folder
    assert not stray.exists()
    (saved,) = _cache_files(server)
    # A forged record vouching for bytes the engine cannot read: the engine refuses them.
    forged = b"\0" * 4096
    saved.write_bytes(forged)
    record = json.loads(saved.with_suffix(".json").read_text())
    record.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    saved.with_suffix(".json").write_text(json.dumps(record))

    assert _ask(api, "Which ship came last?")["cached"] == 0
    assert not saved.exists()
    assert "refused by the engine" in server.log()


def _my_runners() -> list[int]:
    """PIDs of the runner processes this test process started and has not reaped."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"pasture.runner.main" in command:
            pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("fault", ["failed", "cancelled"])
def test_a_load_that_ends_while_restoring_leaves_no_runner(smollm2_gguf: Path, tmp_path: Path,
                                                           fault: str) -> None:
    """A load that fails, or whose client leaves, while the cache is being restored stops
    the runner it started: no scheduler would ever unload it. The faults are simulated
    (a restore that raises, or that hangs until cancelled): neither can be timed for real."""

    async def scenario() -> list[int]:
        entered, fail = asyncio.Event(), asyncio.Event()

        class Faulty(PromptCache):
            async def restore(self, key: str, slots: int, post: Post) -> int:
                entered.set()
                await fail.wait()  # a cancellation ends the wait
                raise OSError("a cache file vanished")

        start = asyncio.ensure_future(ProcessRunner.start(
            LoadSpec(str(smollm2_gguf), num_ctx=512), timeout=120,
            prompt_cache=Faulty(tmp_path, 1 << 20)))
        await entered.wait()
        assert _my_runners(), "the runner was started"
        if fault == "cancelled":
            start.cancel()
        else:
            fail.set()
        with pytest.raises(OSError if fault == "failed" else asyncio.CancelledError):
            await start
        return _my_runners()

    assert asyncio.run(scenario()) == []


def test_an_unload_cancelled_while_saving_still_stops_the_runner(smollm2_gguf: Path,
                                                                 tmp_path: Path) -> None:
    """An unload runs in the request that caused it (an eviction): if that client leaves
    while the slots are being saved, the runner still stops. The hanging save is
    simulated: a cancellation at that point cannot be timed for real."""

    async def scenario() -> list[int]:
        saving = asyncio.Event()

        class Hanging(PromptCache):
            async def save(self, key: str, slots: int, post: Post) -> int:
                saving.set()
                await asyncio.Event().wait()  # until cancelled
                return 0

        runner = await ProcessRunner.start(LoadSpec(str(smollm2_gguf), num_ctx=512),
                                           timeout=120, prompt_cache=Hanging(tmp_path, 1 << 20))
        assert _my_runners() == [runner.pid]
        closing = asyncio.ensure_future(runner.close())
        await saving.wait()
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        return _my_runners()

    assert asyncio.run(scenario()) == []
