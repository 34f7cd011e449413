"""`/api/embed` (batch, normalised) and `/api/embeddings` (legacy, single, raw)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import EmbeddingsRequest, EmbeddingsResponse, EmbedRequest, EmbedResponse
from pasture.server.pipeline import embedding
from pasture.server.state import state_of
from pasture.server.streaming import json_response, spliced_json

router = APIRouter()


class _EmbedBody(EmbedRequest):
    """`input` is checked by hand so a wrong element type gets Ollama's message."""

    input: Any = None


@router.post("/api/embed")
async def embed(body: _EmbedBody, request: Request) -> Response:
    inputs = embedding.text_inputs(body.input)
    embedding.check_dimensions(body.dimensions)
    result = await embedding.embed(
        state_of(request), body.model, inputs, truncate=body.truncate is not False,
        options=body.options, keep_alive=body.keep_alive,
    )
    # Thousands of vectors take seconds to normalise and encode: not on the event loop.
    return await asyncio.to_thread(_embed_response, result, body.dimensions)


def _embed_response(result: embedding.EmbedResult, dimensions: int | None) -> Response:
    shell = EmbedResponse(
        model=result.model, embeddings=[],
        total_duration=int(result.total_duration * 1e9),
        load_duration=int(result.load_duration * 1e9),
        prompt_eval_count=result.prompt_tokens,
    )
    return spliced_json(
        shell, "embeddings", (embedding.normalize(v, dimensions) for v in result.vectors))


@router.post("/api/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
    inputs = [body.prompt] if body.prompt else []  # an empty prompt only loads the model
    result = await embedding.embed(state_of(request), body.model, inputs,
                                   options=body.options, keep_alive=body.keep_alive)
    return json_response(EmbeddingsResponse(embedding=result.vectors[0] if result.vectors else []))
