"""`/api/rerank` (Pasture's) and `/v1/rerank` (Jina's and Cohere's shape, as llama-server
and vLLM serve it): documents ordered by a reranker model's relevance to a query.

Ollama has no rerank endpoint (ollama/ollama#3368); both routes run `pipeline.rerank`
and differ only on the wire: `/v1/rerank` also takes documents as `{"text": ...}`
objects, returns them as such unless `return_documents` is false, and counts `usage`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api import ollama
from pasture.api import openai as oa
from pasture.server.pipeline import rerank as pipeline
from pasture.server.routes.openai_wire import new_id
from pasture.server.state import state_of
from pasture.server.streaming import json_response

router = APIRouter()


@router.post("/api/rerank")
async def rerank(body: ollama.RerankRequest, request: Request) -> Response:
    documents = pipeline.check_request(body.query, body.documents, body.top_n)
    result = await pipeline.rerank(state_of(request), body.model, body.query, documents,
                                   top_n=body.top_n, options=body.options,
                                   keep_alive=body.keep_alive)
    return json_response(ollama.RerankResponse(
        model=result.model,
        results=[ollama.RerankResult(
            index=item.index, relevance_score=item.score,
            document=documents[item.index] if body.return_documents else None)
            for item in result.ranked],
        total_duration=int(result.total_duration * 1e9),
        load_duration=int(result.load_duration * 1e9),
        prompt_eval_count=result.prompt_tokens,
    ))


@router.post("/v1/rerank")
async def rerank_v1(body: oa.RerankRequest, request: Request) -> Response:
    documents = pipeline.check_request(body.query, _texts(body.documents), body.top_n)
    result = await pipeline.rerank(state_of(request), body.model, body.query, documents,
                                   top_n=body.top_n, options=body.options)
    return json_response(oa.RerankList(
        id=new_id("rerank-"), model=result.model,
        results=[oa.RerankResult(
            index=item.index, relevance_score=item.score,
            document=oa.RerankDocument(text=documents[item.index])
            if body.return_documents else None)
            for item in result.ranked],
        usage=oa.EmbeddingUsage(prompt_tokens=result.prompt_tokens,
                                total_tokens=result.prompt_tokens),
    ))


def _texts(documents: Any) -> Any:
    """Jina's and Cohere's documents may be `{"text": ...}` objects: their texts (anything
    else is left for `check_request` to refuse)."""
    if not isinstance(documents, list):
        return documents
    return [doc["text"] if isinstance(doc, dict) and isinstance(doc.get("text"), str) else doc
            for doc in documents]
