"""An Open WebUI-sized prompt (6,000+ tokens with tools) on a 4,096-token context, through
the real engine: Pasture answers as Ollama does, with a `truncated` field and a WARN line
in the server's log; `truncate: false` restores the engine's 400, `shift: false` gives
Ollama's, and an answer past the context goes on (context shift) unless `shift` is false."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import MODEL, RunningServer, create_variant

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl"
              ).read_text()

TOOLS = [{"type": "function", "function": {
    "name": f"tool_{i}", "description": "Looks something up in the knowledge base. " * 3,
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string", "description": "What to look up."}},
        "required": ["query"]}}} for i in range(12)]
DOCUMENT = " ".join(f"Paragraph {i}: the river rose and the town moved uphill." for i in
                    range(500))  # about 7,000 tokens


@pytest.fixture
def tooled(api: httpx.Client) -> str:
    """SmolLM2 with a Qwen 2.5-style template that lists the tools in the prompt."""
    return create_variant(api, "smollm2-qwen-tools", QWEN_TOOLS)


def _chat(api: httpx.Client, model: str, **fields: object) -> httpx.Response:
    return api.post("/api/chat", json={
        "model": model, "stream": False, "tools": TOOLS,
        "messages": [{"role": "system", "content": "You answer from the document."},
                     {"role": "user", "content": DOCUMENT + "\n\nWhere did the town move?"}],
        # the answer may be long, so half the context stays free for it (a shorter prompt
        # to read, too); a grammar keeps it short all the same
        "grammar": "root ::= [a-zA-Z ]{1,12}",
        "options": {"num_ctx": 4096, "num_predict": 4096, "temperature": 0}, **fields},
        timeout=600)


def test_an_open_webui_sized_prompt_is_fitted_and_answered(
        api: httpx.Client, server: RunningServer, tooled: str) -> None:
    logged = len(server.log())  # the shared server's log: only this request's lines count
    reply = _chat(api, tooled)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["truncated"]["prompt_tokens"] > 6000
    assert body["prompt_eval_count"] == body["truncated"]["kept"] <= 4096 // 2
    assert "truncating input prompt" in server.log()[logged:]

    refused = _chat(api, tooled, truncate=False)
    assert refused.status_code == 400
    assert "exceeds the available context size" in refused.json()["error"]
    unshifted = _chat(api, tooled, shift=False)
    assert unshifted.status_code == 400
    assert unshifted.json()["error"].startswith("the prompt is longer than the context length")


def test_an_answer_runs_past_the_context_unless_shift_is_false(api: httpx.Client) -> None:
    def generate(**fields: object) -> dict:
        reply = api.post("/api/generate", json={
            "model": MODEL, "prompt": "Say a many times.", "grammar": 'root ::= "a "{200,}',
            "stream": False, "options": {"num_ctx": 64, "num_predict": 100}, **fields},
            timeout=600)
        assert reply.status_code == 200, reply.text
        return reply.json()

    shifted = generate()
    assert shifted["eval_count"] == 100 and shifted["done_reason"] == "length"
    stopped = generate(shift=False)
    assert stopped["done_reason"] == "length"
    assert stopped["prompt_eval_count"] + stopped["eval_count"] < 64
