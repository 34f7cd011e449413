"""What a loaded runner does through llama-server's HTTP port, wherever its process runs.

`ProcessRunner` (a child of this server) and the cluster's `RemoteRunner` (a child of a
Ray actor on another node) differ only in how the process is started, watched and
stopped; every request goes the same way: one HTTP connection to the engine's port,
authenticated with the runner's own key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pasture.errors import BadRequestError, RunnerError
from pasture.runner import llama_server
from pasture.runner.base import (
    CompletionRequest,
    Embeddings,
    EngineChunk,
    EngineDone,
    LoadSpec,
    Ranking,
    RunnerCrashed,
)
from pasture.runner.http import HTTPError, RunnerHTTP
from pasture.runner.media import for_engine


class ServedRunner:
    """The `Runner` calls, sent to the engine at `address` with `api_key`."""

    def __init__(self, spec: LoadSpec, address: str, api_key: str | None,
                 engine: str = "default", media_marker: str | None = None,
                 llguidance: bool = True) -> None:
        self.spec = spec
        self.address = address
        self.engine = engine  # the engine build it runs on (`pasture engine list`)
        self.llguidance = llguidance  # that build runs llguidance grammars
        self.media_marker = media_marker  # the engine's image placeholder, with a projector
        # The engine's own key: a cluster node hands it to the front end (trusted network).
        self.api_key = api_key
        self._http = RunnerHTTP(address, api_key)

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

    async def rerank(self, query: str, documents: list[str]) -> Ranking:
        # `top_n` left to its default (every document): Pasture sorts and cuts itself.
        reply = await self._post("/rerank", {"query": query, "documents": documents})
        return llama_server.ranking(reply, len(documents))

    async def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        # The same tokenization llama-server applies to a text prompt (BOS added if the
        # model wants it, special tokens recognised), so token prompts match text ones.
        body = {"content": text, "add_special": add_special, "parse_special": True}
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
        """The error for a request the runner died under (subclasses say why, if known).
        A runner holding layers on RPC workers names them: one that goes away makes
        llama.cpp abort, on one machine or in a cluster."""
        if self.spec.rpc_servers:
            return RunnerCrashed(
                "model runner has unexpectedly stopped: it held layers on the RPC workers "
                f"{', '.join(self.spec.rpc_servers)}, and a worker that stops answering ends "
                "it; check that `pasture worker` runs there (the next request loads the "
                "model again, on the workers that answer)")
        return RunnerCrashed()
