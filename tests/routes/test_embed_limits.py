"""Embedding requests are bounded: a cap on inputs per request, and the engine gets them
in small groups, each distinct input once (issue #15, item 8: a thousand inputs at once
killed the runner)."""

from __future__ import annotations

import pytest

from pasture.server.pipeline.embedding import GROUP_INPUTS
from tests.routes.conftest import Serve, Server

EMBED_PATHS = ["/api/embed", "/v1/embeddings"]


@pytest.mark.parametrize("path", EMBED_PATHS)
def test_more_inputs_than_the_cap_is_400_naming_it_and_loads_nothing(
        serve: Serve, path: str) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, model="embedder", input=["a"] * 2049)
        assert reply.status_code == 400, reply.text
        assert "too many inputs: 2049" in reply.text and "at most 2048" in reply.text
        assert "PASTURE_MAX_EMBED_INPUTS" in reply.text
        assert server.engine.started == []  # refused before any model loaded

    serve(scenario)


def test_the_input_cap_is_a_setting(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        over = await server.post("/api/embed", model="embedder", input=["a"] * 5)
        assert over.status_code == 400 and "at most 4" in over.text
        at = await server.post("/api/embed", model="embedder", input=["a"] * 4)
        assert at.status_code == 200 and len(at.json()["embeddings"]) == 4

    serve(scenario, MAX_EMBED_INPUTS="4")


@pytest.mark.parametrize("path", EMBED_PATHS)
def test_many_inputs_reach_the_engine_in_bounded_groups_in_order(
        serve: Serve, path: str) -> None:
    texts = [f"{n}" + "x" * (n % 50) for n in range(1000)]  # all distinct

    async def scenario(server: Server) -> None:
        reply = await server.post(path, model="embedder", input=texts)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        vectors = body["embeddings"] if path == "/api/embed" else \
            [row["embedding"] for row in body["data"]]
        # The fake's vector for a text is [its length, 1]: each answer is its own input's.
        assert [round(v[0] / v[1]) for v in vectors] == [len(text) for text in texts]
        calls = server.runner.embedded
        assert sum(len(call) for call in calls) == 1000
        assert len(calls) > 1
        assert max(len(call) for call in calls) <= GROUP_INPUTS
        context = server.runner.spec.num_ctx
        assert max(sum(len(tokens) for tokens in call) for call in calls) <= context

    serve(scenario)


def test_a_group_holds_at_most_one_context_of_tokens(serve: Serve) -> None:
    texts = [f"{n:02d}" + "y" * 58 for n in range(10)]  # 60 tokens each (the fake's)

    async def scenario(server: Server) -> None:
        reply = await server.post("/api/embed", model="embedder", input=texts,
                                  options={"num_ctx": 100})
        assert reply.status_code == 200, reply.text
        assert [len(call) for call in server.runner.embedded] == [1] * 10

    serve(scenario)


def test_repeated_inputs_are_computed_once_and_counted_each_time(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/v1/embeddings", model="embedder",
                                  input=["a"] * 1000 + ["bc"])
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert len(body["data"]) == 1001 and body["usage"]["prompt_tokens"] == 1002
        assert body["data"][0]["embedding"] == body["data"][999]["embedding"]
        assert body["data"][1000]["embedding"] != body["data"][0]["embedding"]
        assert server.runner.embedded == [[[ord("a")], [ord("b"), ord("c")]]]

    serve(scenario)
