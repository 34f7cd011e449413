"""OpenAI's Responses API (`POST /v1/responses`), stateless and text-only, as in Ollama.

The input (a string or message items) and `instructions` become a chat, run through
`server.compat` like every other chat; streaming sends the typed SSE events the `openai`
SDK's `responses.stream()` consumes, each with a `sequence_number`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pasture.api import openai as oa
from pasture.errors import BadRequestError
from pasture.server import compat
from pasture.server.completion import Finish, Piece
from pasture.server.routes.openai import OPENAI_DEFAULTS, dump, error_event
from pasture.server.sse import event, sse_response
from pasture.server.state import state_of

router = APIRouter()

_TEXT_PARTS = ("input_text", "output_text", "text")


def _item_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequestError("invalid input: message content must be a string or a list")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _TEXT_PARTS:
            raise BadRequestError(f"unsupported content part type: {kind}")
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)


def input_messages(body: oa.ResponsesRequest) -> list[dict[str, Any]]:
    """`instructions` and `input` as Ollama chat messages."""
    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    if isinstance(body.input, str):
        return [*messages, {"role": "user", "content": body.input}]
    for item in body.input:
        kind = item.get("type", "message")
        if kind == "message":
            role = str(item.get("role", "user"))
            messages.append({"role": "system" if role == "developer" else role,
                             "content": _item_text(item.get("content", ""))})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": str(item.get("output", "")),
                             "tool_call_id": item.get("call_id")})
        else:
            raise BadRequestError(f"unsupported input item type: {kind}")
    if not messages:
        raise BadRequestError("input must not be empty")
    return messages


def text_format(text: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """`text.format` as Ollama's `format`."""
    fmt = (text or {}).get("format") or {}
    kind = fmt.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"]
    raise BadRequestError("invalid text.format: expected text, json_object or json_schema "
                          "with a schema")


@router.post("/v1/responses")
async def responses(body: oa.ResponsesRequest, request: Request) -> Response:
    messages = input_messages(body)
    fmt = text_format(body.text)
    sampling = compat.sampling_options(num_predict=body.max_output_tokens,
                                       temperature=body.temperature, top_p=body.top_p)
    generation = await compat.Generation.open(state_of(request), body.model, OPENAI_DEFAULTS,
                                              body.options, sampling)
    events = generation.chat(messages, fmt)
    response_id, message_id, created = compat.new_id("resp_"), compat.new_id("msg_"), compat.now()

    def response(status: str, text: str | None = None,
                 finish: Finish | None = None) -> oa.Response:
        output = []
        if text is not None:
            item_status = "incomplete" if status == "incomplete" else "completed"
            output.append(oa.OutputMessage(id=message_id, status=item_status,
                                           content=[oa.OutputText(text=text)]))
        return oa.Response(
            id=response_id, created_at=created, status=status, model=generation.display,
            output=output, instructions=body.instructions,
            max_output_tokens=body.max_output_tokens,
            temperature=generation.options.get("temperature"),
            top_p=generation.options.get("top_p"),
            text=body.text or {"format": {"type": "text"}},
            tools=body.tools or [], metadata=body.metadata or {},
            incomplete_details={"reason": "max_output_tokens"}
            if status == "incomplete" else None,
            usage=oa.ResponseUsage(
                input_tokens=finish.prompt_eval_count, output_tokens=finish.eval_count,
                total_tokens=finish.prompt_eval_count + finish.eval_count,
            ) if finish else None,
        )

    def final_status(finish: Finish) -> str:
        return "incomplete" if finish.done_reason == "length" else "completed"

    if not body.stream:
        text, finish = await compat.collect(events)
        return JSONResponse(dump(response(final_status(finish), text, finish)))

    sequence = 0

    def frame(kind: str, **fields: Any) -> bytes:
        nonlocal sequence
        payload = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        return event(payload, kind)

    where = {"item_id": message_id, "output_index": 0, "content_index": 0}

    async def frames() -> AsyncIterator[bytes]:
        first = await anext(events)  # loads the model: failures here keep their status
        yield frame("response.created", response=dump(response("in_progress")))
        yield frame("response.in_progress", response=dump(response("in_progress")))
        empty_item = oa.OutputMessage(id=message_id, status="in_progress", content=[])
        yield frame("response.output_item.added", output_index=0, item=dump(empty_item))
        yield frame("response.content_part.added", **where, part=dump(oa.OutputText(text="")))
        parts: list[str] = []
        async for item in compat.prepend(first, events):
            if isinstance(item, Piece):
                if item.text:
                    parts.append(item.text)
                    yield frame("response.output_text.delta", **where, delta=item.text,
                                logprobs=[])
                continue
            text = "".join(parts)
            done = response(final_status(item), text, item)
            yield frame("response.output_text.done", **where, text=text, logprobs=[])
            yield frame("response.content_part.done", **where,
                        part=dump(oa.OutputText(text=text)))
            yield frame("response.output_item.done", output_index=0, item=dump(done.output[0]))
            kind = "response.completed" if done.status == "completed" else "response.incomplete"
            yield frame(kind, response=dump(done))

    return await sse_response(compat.closing(frames(), events), error_event)
