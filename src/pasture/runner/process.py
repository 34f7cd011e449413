"""The parent side of a runner: spawn the child, wait for it to load, talk to it, kill it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from pasture.errors import RunnerError
from pasture.runner import watchdog
from pasture.runner.base import LoadSpec, MemoryUse, RunnerCrashed, RunnerOutOfMemory
from pasture.runner.buffers import BufferSizes
from pasture.runner.prompt_cache import PromptCache, cache_key
from pasture.runner.served import ServedRunner

log = logging.getLogger(__name__)

_STDERR_TAIL = 40
# How llama.cpp and its GPU backends say a buffer did not fit.
_OUT_OF_MEMORY = re.compile(
    r"out of memory|unable to allocate|failed to allocate|cudaMalloc failed|OutOfDeviceMemory",
    re.IGNORECASE)
_RPC_FAILURE = re.compile(r"(Failed to connect to|RPC handshake failed for) [\w.-]+:\d+|"
                          r"Remote RPC server crashed or returned malformed response")
_LOG_PREFIX = re.compile(r"^[\d.]+ [A-Z] (srv|slot|main|llama|load)?\s*(\w+: )?")


class ProcessRunner(ServedRunner):
    """A model loaded in its own child process, served by llama.cpp on a loopback port
    (or, for a cluster node, on the node's address)."""

    def __init__(self, spec: LoadSpec, process: asyncio.subprocess.Process, address: str,
                 drain: asyncio.Task[None], buffers: BufferSizes | None = None,
                 engine: str = "default", media_marker: str | None = None,
                 llguidance: bool = True, api_key: str | None = None,
                 memory_limit: int | None = None,
                 prompt_cache: tuple[PromptCache, str] | None = None) -> None:
        super().__init__(spec, address, api_key, engine, media_marker, llguidance)
        self.process = process
        self._drain = drain
        self.buffers = buffers or BufferSizes()  # what the engine allocated (from its log)
        self.memory_limit = memory_limit  # bytes of anonymous memory; None: no cap
        self._stopped_because: str | None = None  # why the parent killed it, if it did
        self._prompt_cache = prompt_cache  # where its slots are saved, and under which key
        self._watchdog = asyncio.create_task(
            watchdog.watch(process.pid, memory_limit, self._overran)) \
            if memory_limit is not None else None

    @classmethod
    async def start(cls, spec: LoadSpec, timeout: float | None = None,
                    engine: str = "default", site: Path | None = None,
                    llguidance: bool = True, memory_limit: int | None = None,
                    host: str = "127.0.0.1", prompt_cache: PromptCache | None = None
                    ) -> ProcessRunner:
        """Spawn a runner for `spec` and return once the model is loaded and healthy;
        `site` is an engine build's directory, put first on the child's import path,
        `llguidance` whether that build has llguidance, `memory_limit` the bytes of
        anonymous memory past which the runner is killed (None: the default of
        `watchdog.memory_limit`, 0: no cap), and `prompt_cache` where its slots are
        saved when it stops and restored from when it starts. The engine listens on
        `host` (a cluster node's own address, so the front end can reach it) and answers
        only a fresh random key (`api_key`)."""
        env = None
        child_spec = spec.to_json()
        if prompt_cache is not None:
            prompt_cache.root.mkdir(parents=True, exist_ok=True)
            child_spec["slot_save_path"] = str(prompt_cache.root) + os.sep
        if site is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site),
                                                              env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pasture.runner.main", json.dumps(child_spec), host,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )
        api_key = secrets.token_urlsafe(32)
        assert process.stdin is not None
        process.stdin.write(api_key.encode() + b"\n")  # the child reads it before loading
        tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        buffers = BufferSizes()
        drain = asyncio.create_task(_drain_stderr(process, tail, buffers))
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout)  # type: ignore[union-attr]
        except (TimeoutError, asyncio.CancelledError):
            await _kill(process, drain)
            raise RunnerError("timed out waiting for the model to load") from None
        reply = _parse_hello(line)
        if "address" not in reply:
            if not line:  # it closed stdout while exiting: learn how it ended
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 5)
            died = process.returncode
            await _kill(process, drain)
            log.error("runner failed to load %s: %s", spec.model_path, reply.get("error"))
            for text in tail:
                log.debug("runner: %s", text)
            if any(_OUT_OF_MEMORY.search(text) for text in tail):
                raise RunnerOutOfMemory("not enough memory to load this model")
            if rpc := _rpc_failure(tail):
                raise RunnerError(
                    f"the model could not be split over its RPC workers "
                    f"({', '.join(spec.rpc_servers)}): {rpc} (each must be a running "
                    "`pasture worker` of this Pasture version)")
            raise RunnerError("the engine could not load this model: "
                              + _exit_reason(died, tail))
        limit = watchdog.memory_limit(memory_limit, watchdog.anonymous_memory(process.pid) or 0)
        log.info("runner pid %d serving %s on %s (memory limit %s)", process.pid,
                 spec.model_path, reply["address"],
                 f"{limit >> 20} MiB" if limit is not None else "none")
        cache = None
        if prompt_cache is not None:
            cache = (prompt_cache, cache_key(spec, f"{engine} {reply.get('version')}"))
        runner = cls(spec, process, reply["address"], drain, buffers, engine,
                     reply.get("media_marker"), llguidance, api_key, limit, cache)
        if cache is not None:
            try:
                restored = await cache[0].restore(cache[1], spec.num_parallel,
                                                  runner._http.post)
            except BaseException:  # failed or cancelled: no scheduler will ever unload it
                runner._prompt_cache = None  # it served nothing worth saving
                await runner.close()
                raise
            if restored:
                log.info("runner pid %d: %d prompt tokens restored from the prompt cache",
                         process.pid, restored)
        return runner

    @property
    def alive(self) -> bool:
        # Killed by the watchdog counts at once, before the child is reaped.
        return self.process.returncode is None and self._stopped_because is None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def memory(self) -> MemoryUse | None:
        if not self.buffers.known:
            return None
        return MemoryUse(self.buffers.total, self.buffers.on_gpu, self.buffers.remote)

    def _crashed(self) -> RunnerCrashed:
        """The error for a request the runner died under: why, when the parent knows."""
        if self._stopped_because:
            return RunnerCrashed(self._stopped_because)
        return super()._crashed()

    def _overran(self, used: int) -> None:
        """The watchdog saw the runner past its memory limit: stop it, and say so."""
        assert self.memory_limit is not None
        self._stopped_because = (f"model runner exceeded its memory limit "
                                 f"({self.memory_limit >> 20} MiB) and was stopped")
        log.error("runner pid %d serving %s used %d MiB, over its memory limit of %d MiB "
                  "(PASTURE_RUNNER_MEMORY_LIMIT): killed", self.process.pid,
                  self.spec.model_path, used >> 20, self.memory_limit >> 20)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self) -> None:
        """Save its slots to the prompt cache, ask the child to exit (stdin EOF), then
        kill it if it lingers. The child stops even when closing is cancelled (an unload
        runs in the request that caused it): nothing else would stop it."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        try:
            if self._prompt_cache is not None and self.alive:
                await self._save_slots(*self._prompt_cache)
        finally:
            if self.process.stdin and not self.process.stdin.is_closing():
                self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
            await _kill(self.process, self._drain)
            log.info("runner pid %d stopped", self.process.pid)

    async def _save_slots(self, cache: PromptCache, key: str) -> None:
        try:
            kept = await asyncio.wait_for(
                cache.save(key, self.spec.num_parallel, self._http.post), 60)
            log.info("runner pid %d: %d prompt tokens saved to the prompt cache",
                     self.process.pid, kept)
        except Exception as exc:  # noqa: BLE001 - unloading goes on without it
            log.warning("runner pid %d: prompt cache not saved: %s", self.process.pid, exc)


def _parse_hello(line: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(line)
    except ValueError:
        return {"error": "runner exited before loading the model"}
    return reply if isinstance(reply, dict) else {"error": "unexpected runner reply"}


def _exit_reason(returncode: int | None, tail: collections.deque[str]) -> str:
    """Why a runner died loading: its signal (an illegal instruction says the build does
    not suit this CPU) or the engine's last error line."""
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"the runner was killed by {signal.Signals(-returncode).name}"
    return _last_error(tail)


def _rpc_failure(tail: collections.deque[str]) -> str | None:
    """ggml's RPC backend aborts the runner when a worker cannot be reached or does not
    speak its protocol; its message names the worker (host:port)."""
    for text in reversed(tail):
        if found := _RPC_FAILURE.search(text):
            return found[0]
    return None


def _last_error(tail: collections.deque[str]) -> str:
    """A short reason for a failed load, without paths (error bodies must not leak them)."""
    for text in reversed(tail):
        reason = _LOG_PREFIX.sub("", text)
        if "error" in reason.lower() and "/" not in reason:
            return reason[:200]
    return "unknown error"


async def _drain_stderr(process: asyncio.subprocess.Process, tail: collections.deque[str],
                        buffers: BufferSizes | None = None) -> None:
    """Keep the engine's log flowing (a full pipe would block it) and remember its end."""
    assert process.stderr is not None
    while line := await process.stderr.readline():
        text = line.decode(errors="replace").rstrip()
        tail.append(text)
        if buffers is not None:
            buffers.feed(text)
        log.debug("runner %d: %s", process.pid, text)


async def _kill(process: asyncio.subprocess.Process, drain: asyncio.Task[None]) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(drain, 2)
