"""`/api/generate` and `/api/chat`: Ollama's native inference endpoints."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture import options as opts
from pasture.api.ollama import ChatRequest, ChatResponse, GenerateRequest, GenerateResponse, Message
from pasture.errors import BadRequestError
from pasture.runner.base import Runner
from pasture.server import completion
from pasture.server.state import ServerState, state_of
from pasture.server.streaming import json_response, ndjson_response
from pasture.store.model import LocalModel

router = APIRouter()


def _now() -> datetime:
    return datetime.now(UTC)


class _Turn:
    """The shared shape of a generate or chat request once its model is resolved."""

    def __init__(self, state: ServerState, body: GenerateRequest | ChatRequest) -> None:
        self.state = state
        self.started = time.perf_counter()
        self.name, self.model = state.model(body.model)
        self.options = opts.merge(self.model.params, opts.validate(body.options))
        self.keep_alive = state.keep_alive(body.keep_alive)
        self.spec = state.load_spec(self.model, self.options)
        self.display = self.name.display
        completion.format_fields(body.format)  # reject a bad format before anything runs

    def lease(self) -> Any:
        return self.state.scheduler.lease(
            self.display, self.model.digest, self.spec, self.keep_alive, self.model.size
        )

    async def load_or_unload(self) -> tuple[str, int]:
        """An empty request only loads the model, or unloads it with keep_alive 0."""
        if self.keep_alive == 0:
            await self.state.scheduler.unload(self.display)
            return "unload", 0
        async with self.lease() as lease:
            return "load", int(lease.load_duration * 1e9)

    def metrics(self, finish: completion.Finish, load_duration: float) -> dict[str, Any]:
        return {
            "done_reason": finish.done_reason,
            "total_duration": int((time.perf_counter() - self.started) * 1e9),
            "load_duration": int(load_duration * 1e9),
            "prompt_eval_count": finish.prompt_eval_count,
            "prompt_eval_duration": finish.prompt_eval_duration,
            "eval_count": finish.eval_count,
            "eval_duration": finish.eval_duration,
        }


def _messages_for(model: LocalModel, request_messages: list[Message],
                  system: str | None = None) -> list[dict[str, Any]]:
    """The conversation the template sees: system prompt, Modelfile MESSAGEs, request."""
    messages = [m.wire() for m in request_messages]
    history = [dict(m) for m in model.messages]
    system = system if system is not None else model.system
    starts_with_system = bool(messages) and messages[0].get("role") == "system"
    if system and not starts_with_system:
        history.insert(0, {"role": "system", "content": system})
    return history + messages


@router.post("/api/generate")
async def generate(body: GenerateRequest, request: Request) -> Response:
    turn = _Turn(state_of(request), body)
    if body.raw and (body.template or body.system or body.context):
        raise BadRequestError("raw mode does not support template, system, or context")

    async def chunks() -> AsyncIterator[GenerateResponse]:
        if not body.prompt:
            reason, load_ns = await turn.load_or_unload()
            yield GenerateResponse(model=turn.display, created_at=_now(), done=True,
                                   done_reason=reason, load_duration=load_ns)
            return
        async with turn.lease() as lease:
            runner = lease.runner
            prompt = await _generate_prompt(runner, turn.model, body)
            if body.context:  # deprecated, but still sent by some clients: prepend as text
                prompt = await runner.detokenize(body.context) + prompt
            tokens = await runner.tokenize(prompt)
            produced: list[int] = []
            async for event in completion.generate(runner, tokens, turn.options, body.format):
                if isinstance(event, completion.Piece):
                    produced.extend(event.tokens)
                    if event.text:
                        yield GenerateResponse(model=turn.display, created_at=_now(),
                                               response=event.text, done=False)
                else:
                    yield GenerateResponse(
                        model=turn.display, created_at=_now(), done=True,
                        context=None if body.raw else tokens + produced,
                        **turn.metrics(event, lease.load_duration),
                    )

    if body.stream:
        return await ndjson_response(chunks())
    parts = [chunk async for chunk in chunks()]
    final = parts[-1]
    final.response = "".join(p.response for p in parts)
    return json_response(final)


async def _generate_prompt(runner: Runner, model: LocalModel, body: GenerateRequest) -> str:
    """The prompt text: as given when raw, else a one-turn chat through the template."""
    if body.raw:
        return body.prompt
    user = Message(role="user", content=body.prompt)
    return await runner.apply_template(_messages_for(model, [user], body.system))


@router.post("/api/chat")
async def chat(body: ChatRequest, request: Request) -> Response:
    turn = _Turn(state_of(request), body)

    async def chunks() -> AsyncIterator[ChatResponse]:
        if not body.messages:
            reason, load_ns = await turn.load_or_unload()
            yield ChatResponse(model=turn.display, created_at=_now(), done=True,
                               message=Message(role="assistant"), done_reason=reason,
                               load_duration=load_ns)
            return
        async with turn.lease() as lease:
            prompt = await lease.runner.apply_template(_messages_for(turn.model, body.messages))
            async for event in completion.generate(lease.runner, prompt, turn.options,
                                                   body.format):
                if isinstance(event, completion.Piece):
                    if event.text:
                        yield ChatResponse(model=turn.display, created_at=_now(), done=False,
                                           message=Message(role="assistant", content=event.text))
                else:
                    yield ChatResponse(model=turn.display, created_at=_now(), done=True,
                                       message=Message(role="assistant"),
                                       **turn.metrics(event, lease.load_duration))

    if body.stream:
        return await ndjson_response(chunks())
    parts = [chunk async for chunk in chunks()]
    final = parts[-1]
    final.message.content = "".join(p.message.content for p in parts)
    return json_response(final)
