"""`/api/rerank` and `/v1/rerank`: documents come back best first with their request
index, `top_n` keeps the best, each API family has its wire shape, and what no reranker
could answer is a 400 before any model loads. (The fake engine scores a document by the
letters it shares with the query: `tests.fake_runner.FakeRunner.rerank`.)"""

from __future__ import annotations

from typing import Any

import pytest

from pasture.server.pipeline.embedding import GROUP_INPUTS
from tests.routes.conftest import Serve, Server

DOCUMENTS = ["zzz", "the cat sat", "a cat", "dogs"]
QUERY = "cat"
BEST_FIRST = [1, 2, 0, 3]  # by the fake's scores: shared letters, then shorter


def results(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    assert body["model"] == "reranker:latest"
    if path == "/v1/rerank":
        assert body["object"] == "list" and body["id"].startswith("rerank-")
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    else:
        assert body["prompt_eval_count"] > 0 and body["total_duration"] > 0
    return body["results"]


@pytest.mark.parametrize("path", ["/api/rerank", "/v1/rerank"])
def test_documents_come_back_best_first_and_top_n_keeps_the_best(serve: Serve,
                                                                  path: str) -> None:
    async def scenario(server: Server) -> None:
        everything = await server.post(path, model="reranker", query=QUERY,
                                       documents=DOCUMENTS)
        assert everything.status_code == 200, everything.text
        ranked = results(path, everything.json())
        assert [r["index"] for r in ranked] == BEST_FIRST
        scores = [r["relevance_score"] for r in ranked]
        assert scores == sorted(scores, reverse=True)
        # /api/rerank leaves the texts out unless asked; /v1/rerank (Jina's default) not.
        texts = [r.get("document") for r in ranked]
        assert texts == ([None] * 4 if path == "/api/rerank"
                         else [{"text": DOCUMENTS[i]} for i in BEST_FIRST])

        # top_n, with return_documents the other way round
        native = path == "/api/rerank"
        best = await server.post(path, model="reranker", query=QUERY, documents=DOCUMENTS,
                                 top_n=2, return_documents=native)
        assert best.status_code == 200, best.text
        expected = [{"index": r["index"], "relevance_score": r["relevance_score"],
                     **({"document": DOCUMENTS[r["index"]]} if native else {})}
                    for r in ranked[:2]]
        assert results(path, best.json()) == expected
        assert server.engine.runner.spec.pooling == "rank"

    serve(scenario)


def test_v1_takes_documents_as_text_objects_as_cohere_and_jina_send_them(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/v1/rerank", model="reranker", query=QUERY,
                                  documents=[{"text": d} for d in DOCUMENTS],
                                  return_documents=False)
        assert reply.status_code == 200, reply.text
        assert [r["index"] for r in reply.json()["results"]] == BEST_FIRST
        assert "document" not in reply.json()["results"][0]

    serve(scenario)


@pytest.mark.parametrize(("path", "fields", "message"), [
    ("/api/rerank", {"query": ""}, "query must be a non-empty string"),
    ("/api/rerank", {"documents": []}, "documents must be a non-empty array of strings"),
    ("/v1/rerank", {"documents": "one"}, "documents must be a non-empty array of strings"),
    ("/api/rerank", {"documents": ["a", 3]}, "documents must be a non-empty array of strings"),
    ("/v1/rerank", {"top_n": 0}, "top_n must be a positive number"),
    ("/api/rerank", {"model": "embedder"}, '"embedder" does not support reranking'),
    ("/v1/rerank", {"model": "plain"}, '"plain" does not support reranking'),
])
def test_what_no_reranker_could_answer_is_a_400_before_loading(
        serve: Serve, path: str, fields: dict[str, Any], message: str) -> None:
    async def scenario(server: Server) -> None:
        request = {"model": "reranker", "query": QUERY, "documents": DOCUMENTS, **fields}
        reply = await server.post(path, **request)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]  # OpenAI's error object on /v1, Ollama's string
        assert message in (error["message"] if path == "/v1/rerank" else error)
        assert server.engine.started == []

    serve(scenario)


def test_a_reranker_is_not_an_embedding_model(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/embed", model="reranker", input="cat")
        assert reply.status_code == 400 and "is a reranker" in reply.text
        shown = await server.post("/api/show", model="reranker")
        assert shown.json()["capabilities"] == ["rerank"]

    serve(scenario)


def test_many_documents_reach_the_engine_in_bounded_groups_in_order(serve: Serve) -> None:
    documents = ["c" * n for n in range(1, 3 * GROUP_INPUTS)]  # longer: fewer shared, worse

    async def scenario(server: Server) -> None:
        reply = await server.post("/api/rerank", model="reranker", query="c",
                                  documents=documents, top_n=3)
        assert reply.status_code == 200, reply.text
        # every document shares the letter c once per character: longest first
        assert [r["index"] for r in reply.json()["results"]] == [
            len(documents) - 1, len(documents) - 2, len(documents) - 3]
        assert max(len(docs) for _, docs in server.engine.runner.reranked) == GROUP_INPUTS

    serve(scenario)
