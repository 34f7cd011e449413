"""Beyond Ollama, with the real engine: `/api/tokenize` and `/api/detokenize` through
Pasture's Python clients (sync and async), Anthropic's `count_tokens` through the official
`anthropic` client, and the per-request `stats` on the native and OpenAI answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import httpx
import pytest

from pasture.client import AsyncClient, Client, ResponseError
from tests.integration.conftest import MODEL, RunningServer, create_variant

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl").read_text()

SMOLLM2_VOCABULARY = 49152
SHORT = {"num_predict": 8, "temperature": 0, "seed": 1}


def test_tokenize_and_detokenize_round_trip(server: RunningServer) -> None:
    with Client(server.url) as client:
        text = "Hello, world! <|im_start|>user"
        tokens = client.tokenize(MODEL, text).tokens
        assert tokens and all(isinstance(token, int) for token in tokens)
        assert client.detokenize(MODEL, tokens).content == text
        special = client.tokenize(MODEL, "<|im_start|>").tokens
        assert len(special) == 1  # a special token written in the text is read as one
        assert special[0] in tokens


def test_add_special_adds_the_models_bos(server: RunningServer, gemma3: str) -> None:
    with Client(server.url) as client:
        plain = client.tokenize(gemma3, "Hi there").tokens
        with_bos = client.tokenize(gemma3, "Hi there", add_special=True).tokens
        assert with_bos == [2, *plain]  # Gemma's <bos>


def test_an_id_outside_the_vocabulary_is_a_400(server: RunningServer) -> None:
    with Client(server.url) as client:
        assert client.detokenize(MODEL, [SMOLLM2_VOCABULARY - 1]).content  # the last one
        for outside in ([SMOLLM2_VOCABULARY], [-1]):
            with pytest.raises(ResponseError) as refused:
                client.detokenize(MODEL, outside)
            assert refused.value.status_code == 400
            assert "outside this model's vocabulary (0 to 49151)" in refused.value.error


def test_the_async_client_tokenizes_too(server: RunningServer) -> None:
    async def run() -> None:
        async with AsyncClient(server.url) as client:
            tokens = (await client.tokenize(MODEL, "Async hello")).tokens
            assert (await client.detokenize(MODEL, tokens)).content == "Async hello"

    asyncio.run(run())


def test_count_tokens_is_the_prompt_messages_would_read(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as api:
        model = create_variant(api, "smollm2-count-tools", QWEN_TOOLS)  # a Go TEMPLATE
    request = {
        "model": model, "system": "You are terse.",
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "The weather in a city",
                   "input_schema": {"type": "object",
                                    "properties": {"city": {"type": "string"}}}}],
    }
    with anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0) as claude:
        counted = claude.messages.count_tokens(**request).input_tokens
        answered = claude.messages.create(max_tokens=1, **request).usage.input_tokens
        without_tools = claude.messages.count_tokens(
            **{k: v for k, v in request.items() if k != "tools"}).input_tokens
        native = {**request, "model": MODEL}  # the GGUF's own template, applied by the engine
        del native["tools"]
        native_counted = claude.messages.count_tokens(**native).input_tokens
        native_answered = claude.messages.create(max_tokens=1, **native).usage.input_tokens
    assert counted == answered
    assert without_tools < counted  # the tools' definitions are in the prompt
    assert native_counted == native_answered


def test_stats_come_with_the_durations(server: RunningServer) -> None:
    with Client(server.url) as client:
        reply = client.chat(MODEL, messages=[{"role": "user", "content": "Hi"}],
                            options=SHORT)
    stats = reply.stats
    assert stats is not None and stats.tokens_per_second
    assert stats.tokens_per_second == pytest.approx(
        reply.eval_count / (reply.eval_duration / 1e9), rel=1e-3)
    assert 0 < stats.time_to_first_token_seconds <= reply.total_duration / 1e9
    with httpx.Client(base_url=server.url, timeout=120) as api:
        usage = api.post("/v1/chat/completions", json={
            "model": MODEL, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}]}).json()["usage"]
    assert usage["stats"]["tokens_per_second"] > 0
    assert usage["stats"]["time_to_first_token_seconds"] > 0
