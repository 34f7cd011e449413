"""`/api/generate` and `/api/chat`: Ollama's native inference endpoints, translated into a
`Turn` for the generation pipeline and its pieces back into Ollama's chunks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import (
    ChatRequest,
    ChatResponse,
    DebugInfo,
    GenerateRequest,
    GenerateResponse,
    Logprob,
    Message,
    QueueStatus,
    ToolCall,
    TopLogprob,
)
from pasture.runner.base import TokenLogprob
from pasture.server.pipeline.generation import (
    Collected,
    Finish,
    Generation,
    Piece,
    Queued,
    collect,
    reporting_queue,
)
from pasture.server.pipeline.turn import Turn
from pasture.server.state import state_of
from pasture.server.streaming import json_response, ndjson_response, unless_disconnected

router = APIRouter()
Reply = TypeVar("Reply", GenerateResponse, ChatResponse)


def _now() -> datetime:
    return datetime.now(UTC)


def logprobs(entries: list[TokenLogprob]) -> list[Logprob] | None:
    """Token logprobs in Ollama's shape."""
    return [Logprob(token=e.token, logprob=e.logprob, bytes=e.bytes,
                    top_logprobs=[TopLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes)
                                  for t in e.top]) for e in entries] or None


def metrics(finish: Finish) -> dict[str, Any]:
    """The final chunk's `done_reason` and Ollama's metrics."""
    if finish.done_reason in ("load", "unload"):
        return {"done_reason": finish.done_reason, "load_duration": finish.load_duration}
    return {"done_reason": finish.done_reason, "total_duration": finish.total_duration,
            "load_duration": finish.load_duration,
            "prompt_eval_count": finish.prompt_eval_count,
            "prompt_eval_duration": finish.prompt_eval_duration,
            "eval_count": finish.eval_count, "eval_duration": finish.eval_duration,
            "truncated": finish.truncation and finish.truncation.wire(),
            "stats": finish.stats()}


def generate_turn(body: GenerateRequest) -> Turn:
    """A generate request as a one-message turn (none: load or unload the model)."""
    user = Message(role="user", content=body.prompt, images=body.images)
    return Turn(
        model=body.model, messages=[user] if body.prompt else [], action="generate",
        options=(body.options,), keep_alive=body.keep_alive, system=body.system or None,
        think=body.think, format=body.format, grammar=body.grammar,
        logprobs=bool(body.logprobs), top_logprobs=body.top_logprobs,
        truncate=body.truncate is not False, shift=body.shift is not False, raw=body.raw,
        suffix=body.suffix or None, template=body.template or None, context=body.context or [],
        return_context=not body.raw)


def chat_turn(body: ChatRequest) -> Turn:
    """A chat request as a turn. `tool_choice` may also come in `options` (beyond Ollama):
    Ollama's clients, and the libraries built on them, have no argument for it but pass
    any options through."""
    options = dict(body.options or {})
    choice = options.pop("tool_choice", None)
    return Turn(
        model=body.model, messages=body.messages, options=(options,),
        keep_alive=body.keep_alive,
        tools=None if body.tools is None else [tool.wire() for tool in body.tools],
        tool_choice=body.tool_choice if body.tool_choice is not None else choice,
        think=body.think, format=body.format,
        grammar=body.grammar, logprobs=bool(body.logprobs), top_logprobs=body.top_logprobs,
        truncate=body.truncate is not False, shift=body.shift is not False)


async def _answer(request: Request, generation: Generation, debug: bool,
                  chunk: Callable[[Piece | Finish | DebugInfo], Reply | None],
                  whole: Callable[[Collected], Reply], stream: bool) -> Response:
    """Stream the turn's chunks, or answer them collected; `_debug_render_only` answers
    the prompt instead."""
    report = stream and request.headers.get("x-pasture-queue", "").lower() == "report"

    async def chunks() -> AsyncIterator[Reply | QueueStatus]:
        if debug and generation.turn.messages:
            built = await generation.render_only()
            yield chunk(DebugInfo(rendered_template=built.text, image_count=built.image_count))
            return
        events = reporting_queue(generation) if report else generation.events()
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, Queued):
                    yield QueueStatus(position=event.position)
                elif (item := chunk(event)) is not None:
                    yield item

    if stream or (debug and generation.turn.messages):
        return await ndjson_response(chunks(), request)
    return json_response(whole(await unless_disconnected(request, collect(generation.events()))))


@router.post("/api/generate")
async def generate(body: GenerateRequest, request: Request) -> Response:
    generation = await Generation.open(state_of(request), generate_turn(body))
    display = generation.display

    def chunk(event: Piece | Finish | DebugInfo) -> GenerateResponse | None:
        if isinstance(event, DebugInfo):
            return GenerateResponse(model=display, created_at=_now(), done=True,
                                    debug_info=event)
        if isinstance(event, Piece):
            if not (event.text or event.thinking or event.logprobs):
                return None
            return GenerateResponse(model=display, created_at=_now(), response=event.text,
                                    thinking=event.thinking or None, done=False,
                                    logprobs=logprobs(event.logprobs))
        return GenerateResponse(model=display, created_at=_now(), done=True,
                                context=event.context, **metrics(event))

    def whole(reply: Collected) -> GenerateResponse:
        final = chunk(reply.finish)
        assert final is not None
        final.response, final.thinking = reply.text, reply.thinking or None
        final.logprobs = logprobs(reply.logprobs)
        return final

    return await _answer(request, generation, bool(body.debug_render_only), chunk, whole,
                         body.stream)


@router.post("/api/chat")
async def chat(body: ChatRequest, request: Request) -> Response:
    generation = await Generation.open(state_of(request), chat_turn(body))
    display = generation.display

    def chunk(event: Piece | Finish | DebugInfo) -> ChatResponse | None:
        if isinstance(event, DebugInfo):
            return ChatResponse(model=display, created_at=_now(), done=True,
                                message=Message(role="assistant"), debug_info=event)
        if isinstance(event, Piece):
            if not (event.text or event.thinking or event.tool_calls or event.logprobs):
                return None
            return ChatResponse(model=display, created_at=_now(), done=False,
                                message=_message(event), logprobs=logprobs(event.logprobs))
        return ChatResponse(model=display, created_at=_now(), done=True,
                            message=Message(role="assistant"), **metrics(event))

    def whole(reply: Collected) -> ChatResponse:
        final = chunk(reply.finish)
        assert final is not None
        final.message = _message(reply.piece())
        final.logprobs = logprobs(reply.logprobs)
        return final

    return await _answer(request, generation, bool(body.debug_render_only), chunk, whole,
                         body.stream)


def _message(piece: Piece) -> Message:
    calls = [ToolCall.model_validate(call) for call in piece.tool_calls]
    return Message(role="assistant", content=piece.text, thinking=piece.thinking or None,
                   tool_calls=calls or None)
