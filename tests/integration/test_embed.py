"""`/api/embed` and `/api/embeddings` on the real engine: SmolLM2 (decoder embeddings, as
Ollama allows) in the shared server, and a tiny random BERT embedding model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pasture.server.pipeline.embedding import GROUP_INPUTS
from tests.embedding_ggufs import write_tiny_bert
from tests.integration.conftest import MODEL, RunningServer, import_model
from tests.loop_probe import STALL_LIMIT, HTTPProbe

BERT = "tiny-bert:latest"


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


@pytest.fixture(scope="module")
def bert(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert.gguf")
    import_model(server.url, Path(path), BERT)
    yield BERT
    # Unload it so that later tests see only the shared model loaded.
    unload = httpx.post(server.url + "/api/generate", json={"model": BERT, "keep_alive": 0},
                        timeout=30)
    assert unload.json()["done_reason"] == "unload"


def test_embed_returns_one_unit_vector_per_input_with_token_count(api: httpx.Client) -> None:
    reply = api.post("/api/embed", json={"model": MODEL, "input": ["hello world", "blue sky"]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == MODEL
    first, second = body["embeddings"]
    assert len(first) == len(second) == 576  # SmolLM2-135M's hidden size
    assert norm(first) == pytest.approx(1.0, abs=1e-5)
    assert first != second
    assert body["prompt_eval_count"] >= 4
    assert body["total_duration"] >= body["load_duration"] >= 0


def test_embed_batch_matches_single_inputs(api: httpx.Client) -> None:
    batch = api.post("/api/embed", json={"model": MODEL, "input": ["hello world", "why"]}).json()
    single = api.post("/api/embed", json={"model": MODEL, "input": "why"}).json()
    cosine = sum(a * b for a, b in zip(batch["embeddings"][1], single["embeddings"][0],
                                       strict=True))
    assert cosine == pytest.approx(1.0, abs=1e-3)


def test_embed_dimensions_truncates_then_renormalises(api: httpx.Client) -> None:
    full = api.post("/api/embed", json={"model": MODEL, "input": "sky"}).json()["embeddings"][0]
    cut = api.post("/api/embed", json={"model": MODEL, "input": "sky", "dimensions": 8}).json()
    vector = cut["embeddings"][0]
    assert len(vector) == 8
    assert norm(vector) == pytest.approx(1.0, abs=1e-6)
    expected = [x / norm(full[:8]) for x in full[:8]]
    assert vector == pytest.approx(expected, abs=1e-4)


def test_embed_empty_input_returns_no_vectors(api: httpx.Client) -> None:
    for empty in ("", []):
        reply = api.post("/api/embed", json={"model": MODEL, "input": empty})
        assert reply.status_code == 200
        assert reply.json()["embeddings"] == []


@pytest.mark.parametrize("bad", [[1, 2], ["ok", None], 5, {"text": "x"}])
def test_embed_non_string_input_is_400(api: httpx.Client, bad: object) -> None:
    reply = api.post("/api/embed", json={"model": MODEL, "input": bad})
    assert reply.status_code == 400
    assert reply.json() == {"error": "invalid input type"}


def test_embed_unknown_model_is_404(api: httpx.Client) -> None:
    reply = api.post("/api/embed", json={"model": "no-such-model", "input": "x"})
    assert reply.status_code == 404
    assert "not found" in reply.json()["error"]


def test_legacy_embeddings_are_the_raw_vector(api: httpx.Client) -> None:
    raw = api.post("/api/embeddings", json={"model": MODEL, "prompt": "sky"})
    assert raw.status_code == 200, raw.text
    vector = raw.json()["embedding"]
    assert abs(norm(vector) - 1.0) > 0.01  # not normalised, as Ollama's legacy endpoint
    unit = api.post("/api/embed", json={"model": MODEL, "input": "sky"}).json()["embeddings"][0]
    assert [x / norm(vector) for x in vector] == pytest.approx(unit, abs=1e-4)


def test_legacy_embeddings_empty_prompt_only_loads(api: httpx.Client) -> None:
    reply = api.post("/api/embeddings", json={"model": MODEL, "prompt": ""})
    assert reply.status_code == 200
    assert reply.json() == {"embedding": []}


def test_chat_and_embed_share_one_runner(api: httpx.Client, server: RunningServer) -> None:
    api.post("/api/embed", json={"model": MODEL, "input": "sky"}).raise_for_status()
    before = set(server.children())
    api.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                    "options": {"num_predict": 1}}).raise_for_status()
    api.post("/api/embed", json={"model": MODEL, "input": "sky"}).raise_for_status()
    assert set(server.children()) == before  # no reload between generate and embed


def test_embedding_model_embeds_and_refuses_generation(api: httpx.Client, bert: str) -> None:
    show = api.post("/api/show", json={"model": bert}).json()
    assert show["capabilities"] == ["embedding"]
    reply = api.post("/api/embed", json={"model": bert, "input": ["hello world", "the sky"]})
    assert reply.status_code == 200, reply.text
    vectors = reply.json()["embeddings"]
    assert [len(v) for v in vectors] == [64, 64]
    assert norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    chat = api.post("/api/chat", json={"model": bert, "messages": [
        {"role": "user", "content": "hi"}]})
    assert chat.status_code == 400
    assert chat.json() == {"error": f'"{bert}" does not support chat'}
    generate = api.post("/api/generate", json={"model": bert, "prompt": "hi"})
    assert generate.status_code == 400
    assert generate.json() == {"error": f'"{bert}" does not support generate'}


def test_embed_over_long_input_truncates_or_is_400(api: httpx.Client, bert: str) -> None:
    long_text = "the sky " * 400  # 800 words: past the model's 512-token context
    refused = api.post("/api/embed", json={"model": bert, "input": long_text, "truncate": False})
    assert refused.status_code == 400
    assert refused.json() == {"error": "the input length exceeds the context length"}
    cut = api.post("/api/embed", json={"model": bert, "input": long_text})
    assert cut.status_code == 200, cut.text
    assert cut.json()["prompt_eval_count"] == 512


def test_a_thousand_inputs_embed_without_stalling_or_killing_the_runner(
        api: httpx.Client, server: RunningServer) -> None:
    # Issue #15, item 8: 1000 inputs of "a" at once killed the runner (and 500 took 91 s).
    api.post("/api/embed", json={"model": MODEL, "input": "a"}).raise_for_status()
    runners = set(server.children())
    with HTTPProbe(server.url) as probe:
        reply = api.post("/v1/embeddings", json={"model": MODEL, "input": ["a"] * 1000})
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert len(data) == 1000 and data[0]["embedding"] == data[999]["embedding"]
    assert probe.answers > 0 and probe.worst < STALL_LIMIT
    assert set(server.children()) == runners  # the same runner, still serving
    assert api.post("/api/embed", json={"model": MODEL, "input": "b"}).status_code == 200


def test_distinct_inputs_past_one_group_keep_their_order(api: httpx.Client) -> None:
    texts = [f"item {n}: the sky" for n in range(GROUP_INPUTS + 3)]  # two engine calls
    batch = api.post("/api/embed", json={"model": MODEL, "input": texts})
    assert batch.status_code == 200, batch.text
    vectors = batch.json()["embeddings"]
    assert len(vectors) == len(texts)
    for index in (0, GROUP_INPUTS - 1, GROUP_INPUTS + 2):
        single = api.post("/api/embed", json={"model": MODEL, "input": texts[index]})
        cosine = sum(a * b for a, b in zip(vectors[index], single.json()["embeddings"][0],
                                           strict=True))
        assert cosine == pytest.approx(1.0, abs=1e-3)


def test_more_inputs_than_the_cap_is_400(api: httpx.Client) -> None:
    reply = api.post("/api/embed", json={"model": MODEL, "input": ["a"] * 2049})
    assert reply.status_code == 400
    assert "too many inputs: 2049" in reply.json()["error"]
