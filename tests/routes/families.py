"""The inference routes of the four API families, as tables for parametrized tests: a
request body for each, and how each family shapes an error."""

from __future__ import annotations

from typing import Any

ASK = "What is the weather in Paris?"


def body(path: str, model: str, **extra: Any) -> dict[str, Any]:
    """A minimal request to `path` asking `ASK` of `model`."""
    if path == "/api/generate" or path == "/v1/completions":
        return {"model": model, "prompt": ASK, **extra}
    if path == "/v1/responses":
        return {"model": model, "input": ASK, **extra}
    if path == "/v1/messages":
        return {"model": model, "max_tokens": 100,
                "messages": [{"role": "user", "content": ASK}], **extra}
    return {"model": model, "messages": [{"role": "user", "content": ASK}], **extra}


OLLAMA = ("/api/chat", "/api/generate")
OPENAI = ("/v1/chat/completions", "/v1/completions", "/v1/responses")
ANTHROPIC = ("/v1/messages",)
ROUTES = (*OLLAMA, *OPENAI, *ANTHROPIC)
CHAT_ROUTES = ("/api/chat", "/v1/chat/completions", "/v1/responses", "/v1/messages")
OPENAI_TYPES = {400: "invalid_request_error", 404: "not_found_error", 500: "api_error",
                503: "api_error"}
ANTHROPIC_TYPES = {400: "invalid_request_error", 404: "not_found_error", 500: "api_error",
                   503: "overloaded_error"}


def error_message(path: str, status: int, payload: Any) -> str:
    """The message of an error body in `path`'s family shape (asserting the shape)."""
    if path in OLLAMA:
        assert set(payload) == {"error"} and isinstance(payload["error"], str), payload
        return payload["error"]
    if path in ANTHROPIC:
        assert payload["type"] == "error", payload
        assert payload["error"]["type"] == ANTHROPIC_TYPES[status], payload
        return payload["error"]["message"]
    error = payload["error"]
    assert set(error) >= {"message", "type", "param", "code"}, payload
    assert error["type"] == OPENAI_TYPES[status], payload
    return error["message"]
