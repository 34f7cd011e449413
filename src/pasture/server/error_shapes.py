"""Error bodies in the shape each API family's clients expect, chosen by request path.

`/api/*` answers Ollama's `{"error": message}`; `/v1/messages` answers Anthropic's
`{"type": "error", "error": {"type", "message"}}`; the rest of `/v1/*` answers OpenAI's
`{"error": {"message", "type", "param", "code"}}`. The status code is the same in all.
"""

from __future__ import annotations

from typing import Any

from pasture.api import anthropic, openai
from pasture.server.edge.requests import note_error

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}


def openai_error(status: int, message: str) -> dict[str, Any]:
    kind = _OPENAI_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = openai.ErrorResponse(error=openai.ErrorDetail(message=message, type=kind))
    return body.model_dump(mode="json")


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return anthropic.ErrorResponse(
        error=anthropic.ErrorDetail(type=kind, message=message)
    ).model_dump(mode="json")


def shaped_error(path: str, status: int, message: str) -> dict[str, Any]:
    """The error body for a request to `path` (and the reason for its log line)."""
    note_error(message)
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return anthropic_error(status, message)
    if path.startswith("/v1/"):
        return openai_error(status, message)
    return {"error": message}
