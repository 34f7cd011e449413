"""`/api/generate` and `/api/chat`: Ollama's native inference endpoints."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture import options as opts
from pasture.api.ollama import (
    ChatRequest,
    ChatResponse,
    DebugInfo,
    GenerateRequest,
    GenerateResponse,
    Logprob,
    Message,
    ToolCall,
)
from pasture.errors import BadRequestError
from pasture.prompt.render import PromptTemplate, Think, parse_template, tag_images
from pasture.prompt.tools import ToolChoice
from pasture.runner.base import Runner
from pasture.server import completion, images
from pasture.server.prompting import conversation
from pasture.server.rendering import (
    Prompt,
    build_chat_prompt,
    check_capabilities,
    model_template,
    think_for,
)
from pasture.server.replies import offered_tools, plan_reply
from pasture.server.state import ServerState, state_of
from pasture.server.streaming import json_response, ndjson_response, unless_disconnected
from pasture.store.model import LocalModel

router = APIRouter()


async def _context_text(runner: Runner, context: list[int]) -> str:
    """The text of a `context` (the token ids an earlier answer returned); 400 for ids
    no vocabulary holds (the engine reads them as 32-bit, so larger ones would wrap)."""
    outside = BadRequestError("invalid context: token ids outside this model's vocabulary")
    if any(not 0 <= token < 2**31 for token in context):
        raise outside
    try:
        return await runner.detokenize(context)
    except BadRequestError:
        raise outside from None


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
        # Reject a bad format, grammar or top_logprobs before anything runs.
        completion.check_constraints(body.format, body.grammar)
        self.top_logprobs = completion.check_top_logprobs(body.logprobs, body.top_logprobs)

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


@router.post("/api/generate")
async def generate(body: GenerateRequest, request: Request) -> Response:
    turn = _Turn(state_of(request), body)
    if body.prompt or turn.keep_alive != 0:  # unloading works for every model (`stop`)
        await turn.state.require_capability(body.model, turn.model, "completion", "generate")
    if body.raw and (body.template or body.system or body.context):
        raise BadRequestError("raw mode does not support template, system, or context")
    await images.check(body.images or [], turn.state.settings.max_image_bytes)
    capabilities = await turn.state.model_capabilities(turn.model)
    check_capabilities(body.model, capabilities, suffix=bool(body.suffix),
                       images=bool(body.images))
    think = think_for(body.think, capabilities, body.model)
    template = parse_template(body.template) if body.template else None
    rendered = body.raw or template is not None or model_template(turn.model) is not None

    async def chunks() -> AsyncIterator[GenerateResponse]:
        if not body.prompt:
            reason, load_ns = await turn.load_or_unload()
            yield GenerateResponse(model=turn.display, created_at=_now(), done=True,
                                   done_reason=reason, load_duration=load_ns)
            return
        if body.debug_render_only:
            debug = await _debug_render(turn, rendered, lambda runner: _generate_prompt(
                runner, turn.model, body, template, think))
            yield GenerateResponse(model=turn.display, created_at=_now(), done=True,
                                   debug_info=debug)
            return
        async with turn.lease() as lease:
            runner = lease.runner
            built = await _generate_prompt(runner, turn.model, body, template, think)
            prompt = built.text
            if body.context:  # deprecated, but still sent by some clients: prepend as text
                prompt = await _context_text(runner, body.context) + prompt
            # `context` (prompt + answer tokens) is returned unless raw; only then is the
            # prompt tokenized here rather than by the engine.
            tokens = None if body.raw else await runner.tokenize(prompt)
            plan = await plan_reply(turn.model, prompt, capabilities=[] if body.raw
                                    else capabilities, think=think, grammar=body.grammar,
                                    fmt=body.format, template=template)
            produced: list[int] = []
            async with contextlib.aclosing(completion.generate(
                        runner, prompt if built.images else tokens or prompt, turn.options,
                        plan.fmt, grammar=plan.grammar, reply=plan.parser,
                        top_logprobs=turn.top_logprobs, images=built.images)) as events:
                async for event in events:
                    if isinstance(event, completion.Piece):
                        produced.extend(event.tokens)
                        if event.text or event.thinking or event.logprobs:
                            yield GenerateResponse(
                                model=turn.display, created_at=_now(), response=event.text,
                                thinking=event.thinking or None, done=False,
                                logprobs=_logprobs(event))
                    else:
                        yield GenerateResponse(
                            model=turn.display, created_at=_now(), done=True,
                            context=None if tokens is None else tokens + produced,
                            **turn.metrics(event, lease.load_duration),
                        )

    if body.stream:
        return await ndjson_response(chunks(), request)
    parts = await unless_disconnected(request, _collect(chunks()))
    final = parts[-1]
    final.response = "".join(p.response for p in parts)
    final.thinking = "".join(p.thinking or "" for p in parts) or None
    final.logprobs = [lp for p in parts for lp in p.logprobs or []] or None
    return json_response(final)


def _logprobs(piece: completion.Piece) -> list[Logprob] | None:
    return [Logprob.model_validate(entry) for entry in piece.logprobs] or None


async def _generate_prompt(runner: Runner | None, model: LocalModel, body: GenerateRequest,
                           template: PromptTemplate | None, think: Think) -> Prompt:
    """The prompt: as given when raw, fill-in-the-middle with a suffix, a template the
    request passed run directly, else a one-turn chat through the chat path."""
    pictures = list(body.images or [])
    if body.raw:  # the prompt's own `[img-N]` tags place the images
        return Prompt(body.prompt, pictures)
    if body.suffix:  # the insert capability was checked: the model has a Go template
        insert_template = template or model_template(model)
        assert insert_template is not None
        return Prompt(insert_template.render_insert(body.prompt, body.suffix, think), pictures)
    user = Message(role="user", content=body.prompt, images=body.images).wire()
    messages = conversation(model, [user], body.system or None)
    if template is not None:
        tagged, _ = tag_images(messages)
        return Prompt(template.render(tagged, [], think), images.of_messages(messages))
    return await build_chat_prompt(model, messages, [], think, runner,
                                   truncate=body.truncate is not False)


async def _debug_render(turn: _Turn, rendered: bool,
                        build: Callable[[Runner | None], Awaitable[Prompt]]) -> DebugInfo:
    """`_debug_render_only`: the prompt without running the model; a Go template needs no
    runner, the GGUF's own template needs the engine to apply it."""
    if rendered:
        prompt = await build(None)
    else:
        async with turn.lease() as lease:
            prompt = await build(lease.runner)
    return DebugInfo(rendered_template=prompt.text, image_count=prompt.image_count)


@router.post("/api/chat")
async def chat(body: ChatRequest, request: Request) -> Response:
    turn = _Turn(state_of(request), body)
    if body.messages or turn.keep_alive != 0:  # unloading works for every model
        await turn.state.require_capability(body.model, turn.model, "completion", "chat")
    pictures = [image for message in body.messages for image in message.images or []]
    await images.check(pictures, turn.state.settings.max_image_bytes)
    capabilities = await turn.state.model_capabilities(turn.model)
    check_capabilities(body.model, capabilities, tools=bool(body.tools),  # [] is fine
                       images=bool(pictures))
    think = think_for(body.think, capabilities, body.model)
    tools = None if body.tools is None else [tool.wire() for tool in body.tools]
    choice = ToolChoice.of(body.tool_choice, tools)
    prompt_tools = offered_tools(tools, choice)
    messages = conversation(turn.model, [m.wire() for m in body.messages])
    truncate = body.truncate is not False

    async def chunks() -> AsyncIterator[ChatResponse]:
        if not body.messages:
            reason, load_ns = await turn.load_or_unload()
            yield ChatResponse(model=turn.display, created_at=_now(), done=True,
                               message=Message(role="assistant"), done_reason=reason,
                               load_duration=load_ns)
            return
        if body.debug_render_only:
            debug = await _debug_render(
                turn, model_template(turn.model) is not None,
                lambda runner: build_chat_prompt(turn.model, messages, prompt_tools, think,
                                                 runner, truncate))
            yield ChatResponse(model=turn.display, created_at=_now(), done=True,
                               message=Message(role="assistant"), debug_info=debug)
            return
        async with turn.lease() as lease:
            prompt = await build_chat_prompt(turn.model, messages, prompt_tools, think,
                                             lease.runner, truncate)
            plan = await plan_reply(turn.model, prompt.text, capabilities=capabilities,
                                    think=think, tools=tools, choice=choice,
                                    grammar=body.grammar, fmt=body.format)
            async with contextlib.aclosing(completion.generate(
                        lease.runner, prompt.text, turn.options, plan.fmt, grammar=plan.grammar,
                        reply=plan.parser, top_logprobs=turn.top_logprobs,
                        images=prompt.images)) as events:
                async for event in events:
                    if isinstance(event, completion.Piece):
                        if event.text or event.thinking or event.tool_calls or event.logprobs:
                            calls = [ToolCall.model_validate(c) for c in event.tool_calls]
                            yield ChatResponse(
                                model=turn.display, created_at=_now(), done=False,
                                message=Message(role="assistant", content=event.text,
                                                thinking=event.thinking or None,
                                                tool_calls=calls or None),
                                logprobs=_logprobs(event))
                    else:
                        yield ChatResponse(model=turn.display, created_at=_now(), done=True,
                                           message=Message(role="assistant"),
                                           **turn.metrics(event, lease.load_duration))

    if body.stream:
        return await ndjson_response(chunks(), request)
    parts = await unless_disconnected(request, _collect(chunks()))
    final = parts[-1]
    final.message.content = "".join(p.message.content for p in parts)
    final.message.thinking = "".join(p.message.thinking or "" for p in parts) or None
    final.message.tool_calls = [c for p in parts for c in p.message.tool_calls or []] or None
    final.logprobs = [lp for p in parts for lp in p.logprobs or []] or None
    return json_response(final)


async def _collect(chunks: AsyncIterator[Any]) -> list[Any]:
    """Every chunk of a non-streaming answer, closing the generation if we are cancelled."""
    async with contextlib.aclosing(chunks) as items:
        return [item async for item in items]
