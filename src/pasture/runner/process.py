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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pasture.errors import BadRequestError, RunnerError
from pasture.runner import llama_server, watchdog
from pasture.runner.base import (
    CompletionRequest,
    Embeddings,
    EngineChunk,
    EngineDone,
    LoadSpec,
    MemoryUse,
    RunnerCrashed,
    RunnerOutOfMemory,
)
from pasture.runner.buffers import BufferSizes
from pasture.runner.http import HTTPError, RunnerHTTP
from pasture.runner.media import for_engine
from pasture.runner.prompt_cache import PromptCache, cache_key

log = logging.getLogger(__name__)

_STDERR_TAIL = 40
# How llama.cpp and its GPU backends say a buffer did not fit.
_OUT_OF_MEMORY = re.compile(
    r"out of memory|unable to allocate|failed to allocate|cudaMalloc failed|OutOfDeviceMemory",
    re.IGNORECASE)
_LOG_PREFIX = re.compile(r"^[\d.]+ [A-Z] (srv|slot|main|llama|load)?\s*(\w+: )?")


class ProcessRunner:
    """A model loaded in its own child process, served by llama.cpp on a loopback port."""

    def __init__(self, spec: LoadSpec, process: asyncio.subprocess.Process, address: str,
                 drain: asyncio.Task[None], buffers: BufferSizes | None = None,
                 engine: str = "default", media_marker: str | None = None,
                 llguidance: bool = True, api_key: str | None = None,
                 memory_limit: int | None = None,
                 prompt_cache: tuple[PromptCache, str] | None = None) -> None:
        self.spec = spec
        self.engine = engine  # the engine build it runs on (`pasture engine list`)
        self.llguidance = llguidance  # that build runs llguidance grammars
        self.media_marker = media_marker  # the engine's image placeholder, with a projector
        self.process = process
        self.address = address
        self._drain = drain
        self.buffers = buffers or BufferSizes()  # what the engine allocated (from its log)
        self._http = RunnerHTTP(address, api_key)
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
                    prompt_cache: PromptCache | None = None) -> ProcessRunner:
        """Spawn a runner for `spec` and return once the model is loaded and healthy;
        `site` is an engine build's directory, put first on the child's import path,
        `llguidance` whether that build has llguidance, `memory_limit` the bytes of
        anonymous memory past which the runner is killed (None: the default of
        `watchdog.memory_limit`, 0: no cap), and `prompt_cache` where its slots are
        saved when it stops and restored from when it starts."""
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
            sys.executable, "-m", "pasture.runner.main", json.dumps(child_spec),
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
            restored = await cache[0].restore(cache[1], spec.num_parallel, runner._http.post)
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
        return MemoryUse(self.buffers.total, self.buffers.on_gpu)

    async def complete(self, request: CompletionRequest
                       ) -> AsyncIterator[EngineChunk | EngineDone]:
        """Stream a generation from llama-server's `/completion` (server-sent events)."""
        images = await for_engine(request.images) if self.media_marker and request.images \
            else request.images
        payload = llama_server.completion_payload(request, self.spec.num_ctx,
                                                  self.media_marker, images)
        try:
            async with contextlib.aclosing(self._http.events("/completion", payload)) as events:
                async for chunk in events:
                    if "error" in chunk:
                        raise RunnerError(llama_server.error_message(chunk))
                    piece, done = llama_server.read_chunk(chunk, request.top_logprobs)
                    if piece is not None:
                        yield piece
                    if done is not None:
                        yield done
                        return
            raise self._crashed()  # the reply ended without its final chunk
        except HTTPError as exc:
            raise llama_server.http_error(exc.status, exc.body) from None
        except (OSError, EOFError, asyncio.IncompleteReadError, ValueError):
            raise self._crashed() from None

    async def apply_template(self, messages: list[dict[str, Any]],
                             tools: list[dict[str, Any]] | None = None,
                             thinking: bool = False, effort: str | None = None) -> str:
        body = llama_server.template_body(messages, tools, thinking, effort)
        return (await self._post("/apply-template", body))["prompt"]

    async def embed(self, inputs: list[str] | list[list[int]]) -> Embeddings:
        # The OpenAI-style endpoint answers pooled vectors (one per input, in order) and
        # the token count; llama-server's own `/embeddings` gives neither count nor shape.
        reply = await self._post("/v1/embeddings", {"input": inputs, "encoding_format": "float"})
        rows = sorted(reply["data"], key=lambda row: row["index"])
        return Embeddings([row["embedding"] for row in rows],
                          int(reply.get("usage", {}).get("prompt_tokens", 0)))

    async def tokenize(self, text: str) -> list[int]:
        # The same tokenization llama-server applies to a text prompt (BOS added if the
        # model wants it, special tokens recognised), so token prompts match text ones.
        body = {"content": text, "add_special": True, "parse_special": True}
        return (await self._post("/tokenize", body))["tokens"]

    async def detokenize(self, tokens: list[int]) -> str:
        # llama-server looks the ids up unchecked: one outside the vocabulary fails the
        # lookup with a 500 (`vector::_M_range_check`), the caller's mistake (a `context`
        # from another model, or made up).
        reply = await self._post("/detokenize", {"tokens": tokens},
                                 failed="token ids outside this model's vocabulary")
        return reply["content"]

    async def _post(self, path: str, body: dict[str, Any],
                    failed: str | None = None) -> dict[str, Any]:
        """POST to the engine; `failed`, when given, is the 400 an engine error means."""
        try:
            return await self._http.post(path, body)
        except HTTPError as exc:
            if failed is not None and exc.status == 500:
                raise BadRequestError(failed) from None
            raise llama_server.http_error(exc.status, exc.body) from None
        except (OSError, EOFError, asyncio.IncompleteReadError, ValueError):
            raise self._crashed() from None

    def _crashed(self) -> RunnerCrashed:
        """The error for a request the runner died under: why, when the parent knows."""
        return RunnerCrashed(self._stopped_because) if self._stopped_because \
            else RunnerCrashed()

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
        kill it if it lingers."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._prompt_cache is not None and self.alive:
            cache, key = self._prompt_cache
            try:
                kept = await asyncio.wait_for(
                    cache.save(key, self.spec.num_parallel, self._http.post), 60)
                log.info("runner pid %d: %d prompt tokens saved to the prompt cache",
                         self.process.pid, kept)
            except Exception as exc:  # noqa: BLE001 - unloading goes on without it
                log.warning("runner pid %d: prompt cache not saved: %s", self.process.pid,
                            exc)
        if self.process.stdin and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            pass
        await _kill(self.process, self._drain)
        log.info("runner pid %d stopped", self.process.pid)


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
