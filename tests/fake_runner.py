"""A scripted stand-in for the engine: the whole `Runner` protocol, in memory.

Tests of the server's own contracts (streaming and error shapes, aggregation, tool calls,
thinking, disconnects, the scheduler's rules) need a runner that answers at once and
predictably, and that records what it was asked. `FakeEngine` is a `start_runner` for
`create_app` or the `Scheduler`; each runner it starts answers from its `Script`.

Its tokenizer is one token per character (the code point), so token counts are lengths;
its chat template writes `<|role|>content` per message and ends `<|assistant|>`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pasture.errors import BadRequestError
from pasture.runner.base import (
    CompletionRequest,
    Embeddings,
    EngineChunk,
    EngineDone,
    LoadSpec,
    MemoryUse,
    Ranking,
    RunnerCrashed,
    TokenLogprob,
)


@dataclass
class Script:
    """How the fake engine answers every completion.

    `reply` is the text, in the chunks it streams (or a function of the request that
    gives them); `fail_after` raises `error` after that many chunks (0: before any);
    `gate`, when set, holds each generation before chunk `gate_at` (0: the first) until
    it is set (never set: a slow engine, held until the generation is cancelled).
    """

    reply: list[str] | Callable[[CompletionRequest], list[str]] = field(
        default_factory=lambda: ["Hello", " there", "!"])
    done_reason: str = "stop"
    stop_word: str | None = None
    fail_after: int | None = None
    error: Exception = field(default_factory=RunnerCrashed)
    gate: asyncio.Event | None = None
    gate_at: int = 0
    memory: MemoryUse | None = None
    embed_failures: int = 0  # embed calls that find their runner lost (it dies with them)

    def chunks(self, request: CompletionRequest) -> list[str]:
        return self.reply(request) if callable(self.reply) else list(self.reply)


class FakeRunner:
    """One loaded model, answering from a `Script` and recording what it was asked."""

    engine = "fake"

    def __init__(self, spec: LoadSpec, script: Script | None = None, *,
                 llguidance: bool = True, media_marker: str | None = None) -> None:
        self.spec = spec
        self.script = script or Script()
        self.llguidance = llguidance
        self.media_marker = media_marker
        self.closed = False
        self.requests: list[CompletionRequest] = []
        self.templated: list[dict[str, Any]] = []  # apply_template calls: their arguments
        self.tokenized = 0  # tokenize calls
        self.special: list[bool] = []  # each tokenize call's add_special (no BOS here)
        self.embedded: list[list[str] | list[list[int]]] = []  # embed calls: their inputs
        self.reranked: list[tuple[str, list[str]]] = []  # rerank calls: query, documents
        self.cancelled = 0  # generations closed before their end
        self.finished = 0  # generations that reached their end
        self._cached: list[int] = []  # the last prompt: what the next one may reuse

    @property
    def alive(self) -> bool:
        return not self.closed

    @property
    def memory(self) -> MemoryUse | None:
        return self.script.memory

    async def complete(self, request: CompletionRequest
                       ) -> AsyncIterator[EngineChunk | EngineDone]:
        self.requests.append(request)
        prompt = request.prompt if isinstance(request.prompt, list) else \
            await self.tokenize(request.prompt)
        cached = _common_prefix(prompt, self._cached)
        self._cached = prompt
        chunks = self.script.chunks(request)
        try:
            for index, text in enumerate(chunks):
                await self._hold(index, len(chunks))
                if index == self.script.fail_after:
                    raise self.script.error
                await asyncio.sleep(0)  # a real engine yields between tokens
                yield EngineChunk(text, [ord(c) for c in text], _logprobs(text, request))
            await self._hold(len(chunks), len(chunks))
            if self.script.fail_after is not None and self.script.fail_after >= len(chunks):
                raise self.script.error
        except (GeneratorExit, asyncio.CancelledError):  # closed, or its task cancelled
            self.cancelled += 1
            raise
        self.finished += 1  # a consumer closing the iterator after this cancels nothing
        yield EngineDone(self.script.done_reason, len(prompt), 1000,
                         sum(len(text) for text in chunks), 2000,
                         self.script.stop_word, cached_tokens=cached)

    async def _hold(self, index: int, count: int) -> None:
        """Wait at the gate before chunk `index` (of `count`; `count`: after the last), if
        the script gates that one."""
        gate = self.script.gate
        if gate is not None and index == min(self.script.gate_at, count):
            await gate.wait()

    async def apply_template(self, messages: list[dict[str, Any]],
                             tools: list[dict[str, Any]] | None = None,
                             thinking: bool = False, effort: str | None = None) -> str:
        self.templated.append({"messages": messages, "tools": tools, "thinking": thinking,
                               "effort": effort})
        head = f"<|tools|>{json.dumps(tools)}\n" if tools else ""
        turns = "".join(f"<|{m['role']}|>{m.get('content') or ''}\n" for m in messages)
        return head + turns + "<|assistant|>"

    async def embed(self, inputs: list[str] | list[list[int]]) -> Embeddings:
        self.embedded.append(inputs)
        if self.script.embed_failures > 0:
            self.script.embed_failures -= 1
            self.closed = True
            raise RunnerCrashed()
        vectors = [[float(len(item)), 1.0] for item in inputs]
        return Embeddings(vectors, sum(len(item) for item in inputs))

    async def rerank(self, query: str, documents: list[str]) -> Ranking:
        """Scores: the letters a document shares with the query, less a little per letter
        it has beyond them (so ties are rare and the order is easy to predict)."""
        self.reranked.append((query, documents))
        wanted = set(query.lower())
        scores = [sum(c in wanted for c in doc.lower()) - 0.01 * len(doc) for doc in documents]
        return Ranking(scores, len(documents) * len(query) + sum(map(len, documents)))

    async def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        self.tokenized += 1
        self.special.append(add_special)
        return [ord(c) for c in text]

    async def detokenize(self, tokens: list[int]) -> str:
        if any(not 0 <= token < 0x110000 for token in tokens):
            raise BadRequestError("token ids outside this model's vocabulary")
        return "".join(chr(token) for token in tokens)

    async def close(self) -> None:
        self.closed = True


class FakeEngine:
    """A `start_runner`: starts `FakeRunner`s answering from `script`, and remembers them."""

    def __init__(self, script: Script | None = None, *, llguidance: bool = True,
                 fail_load: Exception | None = None) -> None:
        self.script = script or Script()
        self.llguidance = llguidance
        self.fail_load = fail_load
        self.started: list[FakeRunner] = []

    async def __call__(self, spec: LoadSpec) -> FakeRunner:
        if self.fail_load is not None:
            raise self.fail_load
        runner = FakeRunner(spec, self.script, llguidance=self.llguidance)
        self.started.append(runner)
        return runner

    @property
    def runner(self) -> FakeRunner:
        """The one runner started (most tests load one model)."""
        (runner,) = self.started
        return runner


def _logprobs(text: str, request: CompletionRequest) -> list[TokenLogprob]:
    if request.top_logprobs is None:
        return []
    alternatives = tuple(TokenLogprob(chr(ord("a") + n), -1.0 - n, [])
                         for n in range(request.top_logprobs))
    return [TokenLogprob(c, -0.5, list(c.encode()), alternatives) for c in text]


def _common_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count

