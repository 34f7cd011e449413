"""Anthropic's Messages API (`POST /v1/messages`), translated onto the native internals.

`system` and text blocks become an Ollama chat run through `server.compat`; `max_tokens`,
`stop_sequences`, `temperature`, `top_p` and `top_k` become Ollama options. The API key
and `anthropic-version` header are not checked, as in Ollama.
"""

from __future__ import annotations

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
    raise BadRequestError(f"unsupported content block type: {block.type}")


def chat_messages(body: an.MessagesRequest) -> list[dict[str, Any]]:
    """`system` and the messages as Ollama chat messages."""
    messages: list[dict[str, Any]] = []
    if body.system:
        system = body.system if isinstance(body.system, str) else \
            "\n".join(block.text for block in body.system)
        messages.append({"role": "system", "content": system})
    for message in body.messages:
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
            continue
        results = [b for b in message.content if b.type == "tool_result"]
        for block in results:
            messages.append({"role": "tool", "content": _block_text(block),
                             "tool_call_id": block.tool_use_id})
        texts = [_block_text(b) for b in message.content if b.type != "tool_result"]
        if texts or not results:
            messages.append({"role": message.role, "content": "\n".join(texts)})
    if not body.messages:
        raise BadRequestError("messages: at least one message is required")
    return messages


def stop_reason(finish: Finish) -> str:
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
    events = generation.chat(conversation)
    message_id = compat.new_id("msg_")

    if not body.stream:
        text, finish = await compat.collect(events)
        return JSONResponse(an.Message(
            id=message_id, model=generation.display, content=[an.TextBlock(text=text)],
            stop_reason=stop_reason(finish), stop_sequence=finish.stop_word,
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
        async for item in compat.prepend(first, events):
            if isinstance(item, Piece):
                if item.text:
                    yield frame("content_block_delta", index=0,
                                delta={"type": "text_delta", "text": item.text})
                continue
            yield frame("content_block_stop", index=0)
            yield frame("message_delta",
                        delta={"stop_reason": stop_reason(item), "stop_sequence": item.stop_word},
                        usage={"input_tokens": item.prompt_eval_count,
                               "output_tokens": item.eval_count})
            yield frame("message_stop")

    return await sse_response(compat.closing(frames(), events), error_event)
