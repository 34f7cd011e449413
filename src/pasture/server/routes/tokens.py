"""`/api/tokenize` and `/api/detokenize` (beyond Ollama): a model's own tokenizer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from pasture.server.pipeline import tokens
from pasture.server.state import state_of
from pasture.server.streaming import json_response

router = APIRouter()


@router.post("/api/tokenize")
async def tokenize(body: TokenizeRequest, request: Request) -> Response:
    text = body.content if body.content is not None else body.prompt or ""
    ids = await tokens.tokenize(state_of(request), body.model, text,
                                add_special=body.add_special, keep_alive=body.keep_alive)
    return json_response(TokenizeResponse(tokens=ids))


@router.post("/api/detokenize")
async def detokenize(body: DetokenizeRequest, request: Request) -> Response:
    text = await tokens.detokenize(state_of(request), body.model, body.tokens,
                                   keep_alive=body.keep_alive)
    return json_response(DetokenizeResponse(content=text))
