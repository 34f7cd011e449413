"""Reranking on the engine, shared by `/api/rerank` and `/v1/rerank`.

A reranker (a cross-encoder GGUF with llama.cpp's rank pooling: bge-reranker,
jina-reranker, ms-marco MiniLM, Qwen3-Reranker) reads the query and one document together
and gives one relevance score. The engine scores the pairs in bounded groups, as
embeddings are sent; Pasture then orders them, best first, and keeps `top_n`. Every pair
is measured first, so one that does not fit the context is a 400, not an engine error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.server.pipeline.embedding import (
    GROUP_INPUTS,
    TOO_LONG,
    check_input_count,
    tokenize_all,
)
from pasture.server.state import ServerState

# Tokens the engine adds around a pair ([CLS] query [SEP] document [SEP], or a template's).
PAIR_OVERHEAD = 4


@dataclass(frozen=True)
class Ranked:
    """One document's place: its index in the request and its score."""

    index: int
    score: float


@dataclass
class RerankResult:
    """Documents best first (at most `top_n`), with Ollama-style metrics (seconds)."""

    model: str  # the model's display name
    ranked: list[Ranked]
    prompt_tokens: int
    load_duration: float
    total_duration: float


def check_request(query: Any, documents: Any, top_n: int | None) -> list[str]:
    """The documents as a list of strings: 400 for what no reranker could answer."""
    if not isinstance(query, str) or not query:
        raise BadRequestError("query must be a non-empty string")
    if not isinstance(documents, list) or not documents \
            or not all(isinstance(doc, str) for doc in documents):
        raise BadRequestError("documents must be a non-empty array of strings")
    if top_n is not None and top_n < 1:
        raise BadRequestError("top_n must be a positive number")
    return documents


def ranked(scores: list[float], top_n: int | None) -> list[Ranked]:
    """Indexes by score, best first (ties keep the documents' order), cut to `top_n`."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [Ranked(i, scores[i]) for i in order[:top_n]]


async def rerank(state: ServerState, model_name: str, query: str, documents: list[str], *,
                 top_n: int | None = None, options: dict[str, Any] | None = None,
                 keep_alive: float | str | None = None) -> RerankResult:
    """Score `documents` against `query` with the reranker `model_name`."""
    started = time.perf_counter()
    check_input_count(documents, state.settings.max_embed_inputs)
    model = await state.models.resolve(model_name)
    model.require("rerank", "reranking")
    merged = opts.merge(model.local.params, opts.validate(options))
    spec = model.load_spec(merged, state.settings)
    async with state.lease(model, spec, state.keep_alive(keep_alive)) as lease:
        runner = lease.runner
        query_tokens, *doc_tokens = await tokenize_all(runner, [query, *documents])
        room = spec.num_ctx - PAIR_OVERHEAD
        if any(len(query_tokens) + len(tokens) > room for tokens in doc_tokens):
            raise BadRequestError(TOO_LONG)
        scores: list[float] = []
        prompt_tokens = 0
        for start in range(0, len(documents), GROUP_INPUTS):
            result = await runner.rerank(query, documents[start:start + GROUP_INPUTS])
            scores.extend(result.scores)
            prompt_tokens += result.prompt_tokens
        return RerankResult(model.display, ranked(scores, top_n), prompt_tokens,
                            lease.load_duration, time.perf_counter() - started)
