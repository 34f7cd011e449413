"""Reranking on the real engine: a random-weight BERT cross-encoder written by the tests
(rank pooling and llama.cpp's classifier head) scores query–document pairs through
`/api/rerank`, `/v1/rerank` and Pasture's Python client. Random weights make the scores
noise, but real ones: each pair gets the engine's score whatever its neighbours, and the
order, `top_n` and both wire shapes can be checked against them."""

from __future__ import annotations

import asyncio

import httpx

from pasture.client import AsyncClient, Client
from tests.integration.conftest import RunningServer

DOCUMENTS = ["the cat sat on the mat", "stock prices fell", "a cat", "blue sky", "dogs bark"]


def test_rerank_orders_documents_by_the_engines_scores(api: httpx.Client, reranker: str,
                                                        server: RunningServer) -> None:
    reply = api.post("/api/rerank", json={"model": reranker, "query": "cat",
                                          "documents": DOCUMENTS})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    assert body["prompt_eval_count"] > len(DOCUMENTS) * 2  # query and document, each pair

    # A pair's score is its own: alone, or among others in another order, it is the same.
    by_index = {r["index"]: r["relevance_score"] for r in results}
    alone = api.post("/api/rerank", json={"model": reranker, "query": "cat",
                                          "documents": [DOCUMENTS[3]]}).json()["results"]
    assert alone[0]["index"] == 0
    assert abs(alone[0]["relevance_score"] - by_index[3]) < 1e-4

    v1 = api.post("/v1/rerank", json={"model": reranker, "query": "cat", "top_n": 2,
                                      "documents": [{"text": d} for d in DOCUMENTS]})
    assert v1.status_code == 200, v1.text
    assert [(r["index"], r["document"]["text"]) for r in v1.json()["results"]] == [
        (r["index"], DOCUMENTS[r["index"]]) for r in results[:2]]
    assert v1.json()["usage"]["total_tokens"] == body["prompt_eval_count"]

    top = Client(server.url).rerank(reranker, "cat", DOCUMENTS, top_n=3,
                                    return_documents=True)
    assert [(r.index, r.document) for r in top.results] == [
        (r["index"], DOCUMENTS[r["index"]]) for r in results[:3]]

    async def with_the_async_client() -> list[int]:
        async with AsyncClient(server.url) as client:
            reply = await client.rerank(reranker, "cat", DOCUMENTS, top_n=1)
            return [r.index for r in reply.results]

    assert asyncio.run(with_the_async_client()) == [results[0]["index"]]


def test_a_pair_longer_than_the_context_is_a_400(api: httpx.Client, reranker: str) -> None:
    reply = api.post("/api/rerank", json={"model": reranker, "query": "cat",
                                          "documents": ["short", "cat " * 600],
                                          "options": {"num_ctx": 512}})
    assert reply.status_code == 400, reply.text
    assert "exceeds the context length" in reply.json()["error"]
