"""Embeddings on the engine, shared by `/api/embed`, `/api/embeddings` and `/v1/embeddings`.

Inputs are tokenized first so that every API family truncates (or refuses) over-long
inputs the same way and reports the same token counts. The engine then gets the distinct
token lists in bounded groups, one group at a time: a thousand inputs sent at once left
a thousand tasks queued in one runner (which died under them on the machine of issue
#15), and a request may carry at most `PASTURE_MAX_EMBED_INPUTS` inputs. Vectors come
back raw: normalising is the caller's choice, because Ollama's legacy endpoint returns
them as the model produced them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.runner.base import LoadSpec, Runner, RunnerCrashed
from pasture.server.state import ServerState

log = logging.getLogger(__name__)

TOO_LONG = "the input length exceeds the context length"
GROUP_INPUTS = 32  # inputs the engine gets in one call (llama-server queues one task each)
TOKENIZE_CONCURRENCY = 8  # tokenize calls in flight at once (each is a connection)


@dataclass
class EmbedResult:
    """Vectors for a request's inputs, in order, with Ollama's metrics (seconds)."""

    model: str  # the model's display name
    vectors: list[list[float]]
    prompt_tokens: int
    load_duration: float
    total_duration: float


def text_inputs(value: Any) -> list[str]:
    """A request's `input` as a list of texts: a string is one input (none when empty)."""
    if isinstance(value, str):
        return [value] if value else []
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequestError("invalid input type")


def normalize(vector: list[float], dimensions: int | None = None) -> list[float]:
    """`vector` cut to `dimensions` (when smaller) and scaled to unit L2 length."""
    if dimensions is not None and 0 < dimensions < len(vector):
        vector = vector[:dimensions]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else list(vector)


def check_dimensions(dimensions: int | None) -> None:
    if dimensions is not None and dimensions < 0:
        raise BadRequestError("dimensions must be a positive number")


def check_input_count(inputs: list[str], limit: int) -> None:
    """Refuse a request with more inputs than `limit` (PASTURE_MAX_EMBED_INPUTS) before
    any model loads."""
    if len(inputs) > limit:
        raise BadRequestError(f"too many inputs: {len(inputs)} (at most {limit} in one "
                              "request; PASTURE_MAX_EMBED_INPUTS)")


def groups(token_lists: list[list[int]], max_tokens: int,
           max_inputs: int = GROUP_INPUTS) -> list[list[list[int]]]:
    """`token_lists` in order, cut into groups of at most `max_inputs` lists and
    `max_tokens` tokens (a longer single list still makes a group of its own)."""
    result: list[list[list[int]]] = []
    current: list[list[int]] = []
    size = 0
    for tokens in token_lists:
        if current and (len(current) == max_inputs or size + len(tokens) > max_tokens):
            result.append(current)
            current, size = [], 0
        current.append(tokens)
        size += len(tokens)
    if current:
        result.append(current)
    return result


async def tokenize_all(runner: Runner, inputs: list[str]) -> list[list[int]]:
    """Each input's tokens, each distinct text tokenized once, with a bounded number of
    calls in flight."""
    gate = asyncio.Semaphore(TOKENIZE_CONCURRENCY)

    async def one(text: str) -> list[int]:
        async with gate:
            return await runner.tokenize(text)

    distinct = list(dict.fromkeys(inputs))
    tokens = dict(zip(distinct, await asyncio.gather(*(one(text) for text in distinct)),
                      strict=True))
    return [tokens[text] for text in inputs]


async def _embed_distinct(runner: Runner, token_lists: list[list[int]],
                          max_tokens: int) -> list[list[float]]:
    """Vectors for `token_lists`, computing each distinct list once, group by group
    (an input's vector depends on its tokens alone: each runs in a sequence of its own)."""
    distinct = list(dict.fromkeys(tuple(tokens) for tokens in token_lists))
    vectors: dict[tuple[int, ...], list[float]] = {}
    for group in groups([list(tokens) for tokens in distinct], max_tokens):
        result = await runner.embed(group)
        vectors.update(zip((tuple(tokens) for tokens in group), result.vectors, strict=True))
    return [vectors[tuple(tokens)] for tokens in token_lists]


async def embed(state: ServerState, model_name: str, inputs: list[str], *,
                truncate: bool = True, options: dict[str, Any] | None = None,
                keep_alive: float | str | None = None) -> EmbedResult:
    """Embed `inputs` with `model_name` (an empty list only loads the model)."""
    started = time.perf_counter()
    check_input_count(inputs, state.settings.max_embed_inputs)
    model = await state.models.resolve(model_name)
    if model.info.reranker:  # rank pooling scores pairs: there is no vector to give
        raise BadRequestError(f'"{model_name}" does not support embeddings: it is a '
                              "reranker (use /api/rerank)")
    merged = opts.merge(model.local.params, opts.validate(options))
    spec = model.load_spec(merged, state.settings)
    retries = state.retries_before_output  # a lost runner (a cluster node gone): once
    while True:                            # more, as a generation before its first token
        try:
            async with state.lease(model, spec, state.keep_alive(keep_alive)) as lease:
                vectors, prompt_tokens = await _embed_all(lease.runner, spec, inputs,
                                                          truncate)
                return EmbedResult(model.display, vectors, prompt_tokens,
                                   lease.load_duration, time.perf_counter() - started)
        except RunnerCrashed as exc:
            if retries <= 0:
                raise
            retries -= 1
            log.warning("runner for %s lost during embeddings (%s): trying again",
                        model.display, exc.message)


async def _embed_all(runner: Runner, spec: LoadSpec, inputs: list[str],
                     truncate: bool) -> tuple[list[list[float]], int]:
    """Every input's vector (tokenized, cut to the context or refused), and the tokens."""
    if not inputs:
        return [], 0
    token_lists = await tokenize_all(runner, inputs)
    limit = spec.num_ctx
    if any(len(tokens) > limit for tokens in token_lists):
        if not truncate:
            raise BadRequestError(TOO_LONG)
        token_lists = [tokens[:limit] for tokens in token_lists]
    if any(not tokens for tokens in token_lists):
        raise BadRequestError("input content cannot be empty")
    vectors = await _embed_distinct(runner, token_lists, limit)
    return vectors, sum(len(tokens) for tokens in token_lists)
