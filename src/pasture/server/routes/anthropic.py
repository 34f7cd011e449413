"""Anthropic's Messages API (`POST /v1/messages`), translated onto the native internals.

`system` and text blocks become an Ollama chat run through `server.compat`; `max_tokens`,
`stop_sequences`, `temperature`, `top_p` and `top_k` become Ollama options. The API key
and `anthropic-version` header are not checked, as in Ollama.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pasture.api import anthropic as an
from pasture.errors import BadRequestError
from pasture.server import compat
from pasture.server.completion import Finish, Piece
from pasture.server.error_shapes import anthropic_error
from pasture.server.sse import event, sse_response
from pasture.server.state import state_of

router = APIRouter()


def _block_text(block: an.ContentBlock) -> str:
    if block.type == "text":
        return block.text or ""
    if block.type == "tool_result":
        content = block.content
        if isinstance(content, list):
            return "\n".join(str(part.get("text", "")) for part in content
                             if part.get("type") == "text")
        return content or ""
    if block.type == "image":
        raise BadRequestError("image input is not supported by this server yet")
    if block.type == "tool_use":
        return ""  # carried as the message's tool call
    raise BadRequestError(f"unsupported content block type: {block.type}")


def chat_messages(body: an.MessagesRequest) -> list[dict[str, Any]]:
    """`system` and the messages as Ollama chat messages."""
    messages: list[dict[str, Any]] = []
    if body.system:
        system = body.system if isinstance(body.system, str) else \
            "\n".join(block.text for block in body.system)
        messages.append({"role": "system", "content": system})
    tool_names: dict[str, str] = {}  # tool_use id → the tool it called
    for message in body.messages:
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
            continue
        results = [b for b in message.content if b.type == "tool_result"]
        for block in results:
            messages.append({"role": "tool", "content": _block_text(block),
                             "tool_call_id": block.tool_use_id,
                             **({"tool_name": tool_names[block.tool_use_id]}
                                if block.tool_use_id in tool_names else {})})
        uses = [b for b in message.content if b.type == "tool_use"]
        texts = [_block_text(b) for b in message.content
                 if b.type not in ("tool_result", "tool_use")]
        if texts or uses or not results:
            entry: dict[str, Any] = {"role": message.role, "content": "\n".join(texts)}
            if uses:
                entry["tool_calls"] = [{"id": b.id, "function": {
                    "name": b.name or "", "arguments": b.input or {}}} for b in uses]
                tool_names.update({b.id: b.name or "" for b in uses if b.id})
            messages.append(entry)
    if not body.messages:
        raise BadRequestError("messages: at least one message is required")
    return messages


def ollama_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Anthropic tools (`name`, `description`, `input_schema`) as Ollama's."""
    if not tools:
        return None
    return [{"type": "function", "function": {
        "name": tool.get("name"), "description": tool.get("description", ""),
        "parameters": tool.get("input_schema") or {"type": "object"}}} for tool in tools]


def tool_choice(choice: dict[str, Any] | None) -> Any:
    """Anthropic's `auto`/`any`/`tool`/`none` as OpenAI's `tool_choice`."""
    if choice is None:
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind in ("auto", "any", "none"):
        return "required" if kind == "any" else kind
    raise BadRequestError(f"tool_choice: unsupported type {kind!r}")


def tool_use(call: dict[str, Any]) -> an.ToolUseBlock:
    function = call["function"]
    return an.ToolUseBlock(id=call["id"], name=function["name"], input=function["arguments"])


def stop_reason(finish: Finish, called: bool = False) -> str:
    if called:
        return "tool_use"
    if finish.done_reason == "length":
        return "max_tokens"
    return "stop_sequence" if finish.stop_word else "end_turn"


def error_event(status: int, message: str) -> bytes:
    return event(anthropic_error(status, message), "error")


@router.post("/v1/messages")
async def messages(body: an.MessagesRequest, request: Request) -> Response:
    if body.max_tokens < 1:
        raise BadRequestError("max_tokens: must be greater than or equal to 1")
    conversation = chat_messages(body)
    sampling = compat.sampling_options(
        num_predict=body.max_tokens, stop=body.stop_sequences, temperature=body.temperature,
        top_p=body.top_p, top_k=body.top_k,
    )
    generation = await compat.Generation.open(state_of(request), body.model, sampling)
    events = generation.chat(conversation, tools=ollama_tools(body.tools),
                             tool_choice=tool_choice(body.tool_choice))
    message_id = compat.new_id("msg_")

    if not body.stream:
        reply = await compat.collect_all(events)
        finish = reply.finish
        content: list[an.TextBlock | an.ToolUseBlock] = []
        if reply.text or not reply.tool_calls:
            content.append(an.TextBlock(text=reply.text))
        content.extend(tool_use(call) for call in reply.tool_calls)
        return JSONResponse(an.Message(
            id=message_id, model=generation.display, content=content,
            stop_reason=stop_reason(finish, bool(reply.tool_calls)),
            stop_sequence=finish.stop_word,
            usage=an.Usage(input_tokens=finish.prompt_eval_count,
                           output_tokens=finish.eval_count),
        ).model_dump(mode="json"))

    def frame(kind: str, **fields: Any) -> bytes:
        return event({"type": kind, **fields}, kind)

    async def frames() -> AsyncIterator[bytes]:
        first = await anext(events)  # loads the model: failures here keep their status
        start = an.Message(id=message_id, model=generation.display,
                           usage=an.Usage(input_tokens=0, output_tokens=0))
        yield frame("message_start", message=start.model_dump(mode="json"))
        yield frame("content_block_start", index=0, content_block={"type": "text", "text": ""})
        yield frame("ping")
        block, text_open, called = 0, True, False
        async for item in compat.prepend(first, events):
            if isinstance(item, Piece):
                if item.text:
                    if not text_open:  # text after a tool call opens a new text block
                        block, text_open = block + 1, True
                        yield frame("content_block_start", index=block,
                                    content_block={"type": "text", "text": ""})
                    yield frame("content_block_delta", index=block,
                                delta={"type": "text_delta", "text": item.text})
                for call in item.tool_calls:
                    if text_open:
                        yield frame("content_block_stop", index=block)
                        text_open = False
                    block, called = block + 1, True
                    start_block = tool_use(call).model_dump(mode="json") | {"input": {}}
                    yield frame("content_block_start", index=block, content_block=start_block)
                    yield frame("content_block_delta", index=block, delta={
                        "type": "input_json_delta",
                        "partial_json": json.dumps(call["function"]["arguments"])})
                    yield frame("content_block_stop", index=block)
                continue
            if text_open:
                yield frame("content_block_stop", index=block)
            yield frame("message_delta",
                        delta={"stop_reason": stop_reason(item, called),
                               "stop_sequence": item.stop_word},
                        usage={"input_tokens": item.prompt_eval_count,
                               "output_tokens": item.eval_count})
            yield frame("message_stop")

    return await sse_response(compat.closing(frames(), events), error_event)
