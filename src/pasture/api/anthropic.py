"""Anthropic's Messages API (`POST /v1/messages`), as pydantic models.

Requests accept what the official `anthropic` SDK sends; `tools` and `tool_choice` work
as on `/api/chat` (answers carry `tool_use` blocks), `thinking` is Ollama's `think`
(answers carry `thinking` blocks; `budget_tokens` is not enforced, as in Ollama);
`metadata` is accepted and ignored. Beyond Anthropic, a `grammar` (GBNF, as on
`/api/chat`) may be sent with the SDK's `extra_body`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pasture.api.ollama import WireModel


class ContentBlock(WireModel):
    """A request content block: text, image, an earlier turn's thinking or tool use, or a
    tool result."""

    type: str
    text: str | None = None
    source: dict[str, Any] | None = None  # image
    thinking: str | None = None
    content: str | list[dict[str, Any]] | None = None  # tool_result
    tool_use_id: str | None = None
    id: str | None = None  # tool_use (an earlier call, in the history)
    name: str | None = None
    input: dict[str, Any] | None = None


class MessageParam(WireModel):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class SystemBlock(WireModel):
    type: Literal["text"] = "text"
    text: str


class CountTokensRequest(WireModel):
    """`/v1/messages/count_tokens`: what of a Messages request makes its prompt."""

    model: str
    messages: list[MessageParam]
    system: str | list[SystemBlock] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None  # {"type": "enabled", "budget_tokens": N}
    output_config: dict[str, Any] | None = None  # {"effort": "low" | … | "max"}


class CountTokensResponse(WireModel):
    input_tokens: int


class MessagesRequest(CountTokensRequest):
    max_tokens: int
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    grammar: str | None = None  # Pasture: as on /api/chat


class TextBlock(WireModel):
    type: Literal["text"] = "text"
    text: str


class ThinkingBlock(WireModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str = ""  # Anthropic signs its thoughts; a local model's are not


class ToolUseBlock(WireModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class Usage(WireModel):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int | None = None  # prompt tokens reused from the engine's cache


StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class Message(WireModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ThinkingBlock | TextBlock | ToolUseBlock] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage


class ErrorDetail(WireModel):
    type: str
    message: str


class ErrorResponse(WireModel):
    type: Literal["error"] = "error"
    error: ErrorDetail
