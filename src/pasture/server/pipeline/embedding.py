"""Embeddings on the engine, shared by `/api/embed`, `/api/embeddings` and `/v1/embeddings`.

Inputs are tokenized first so that every API family truncates (or refuses) over-long
inputs the same way and reports the same token counts; the token lists then go to the
runner together, in one batch. Vectors come back raw: normalising is the caller's choice,
because Ollama's legacy endpoint returns them as the model produced them.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.server.state import ServerState

TOO_LONG = "the input length exceeds the context length"


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


async def embed(state: ServerState, model_name: str, inputs: list[str], *,
                truncate: bool = True, options: dict[str, Any] | None = None,
                keep_alive: float | str | None = None) -> EmbedResult:
    """Embed `inputs` with `model_name` (an empty list only loads the model)."""
    started = time.perf_counter()
    model = await state.models.resolve(model_name)
    merged = opts.merge(model.local.params, opts.validate(options))
    spec = model.load_spec(merged, state.settings)
    keep = state.keep_alive(keep_alive)
    async with state.scheduler.lease(model.display, model.local.digest, spec, keep,
                                     model.local.size) as lease:
        vectors: list[list[float]] = []
        prompt_tokens = 0
        if inputs:
            runner = lease.runner
            token_lists = await asyncio.gather(*(runner.tokenize(text) for text in inputs))
            limit = spec.num_ctx
            if any(len(tokens) > limit for tokens in token_lists):
                if not truncate:
                    raise BadRequestError(TOO_LONG)
                token_lists = [tokens[:limit] for tokens in token_lists]
            if any(not tokens for tokens in token_lists):
                raise BadRequestError("input content cannot be empty")
            result = await runner.embed(list(token_lists))
            vectors = result.vectors
            prompt_tokens = sum(len(tokens) for tokens in token_lists)
        return EmbedResult(model.display, vectors, prompt_tokens, lease.load_duration,
                           time.perf_counter() - started)
