"""OpenAI-compatible endpoints: chat and legacy completions, embeddings and models.

Each request is translated into a `Turn` and run through the generation pipeline (chat
and completions) or `pipeline.embedding`, exactly as the native routes run; only the
wire formats differ. As in Ollama, an absent `temperature` or `top_p` means 1.0 (OpenAI's
default), not the model's; `reasoning_effort` is Ollama's `think`, and the thought comes
back in `message.reasoning` (`delta.reasoning` when streaming); `image_url` data URIs are
the native `images`. Beyond Ollama, an `options` object of Ollama options is accepted
(the SDK's `extra_body={"options": {"num_ctx": 8192}}`), and legacy completions return
`logprobs` in their own shape.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api import openai as oa
from pasture.errors import BadRequestError, ModelNotFoundError, PastureError
from pasture.runner.base import TokenLogprob
from pasture.server.pipeline import embedding, images
from pasture.server.pipeline.generation import Finish, Generation, Piece, collect, prepend
from pasture.server.pipeline.turn import Turn, messages_of, options_of
from pasture.server.routes.openai_wire import (
    OPENAI_DEFAULTS,
    dump,
    error_event,
    json_out,
    new_id,
    now,
    ollama_tool_call,
    openai_logprobs,
    openai_tool_call,
    think_from_effort,
    usage,
)
from pasture.server.state import state_of
from pasture.server.streaming import (
    event,
    spliced_json,
    sse_framing,
    stream,
    unless_disconnected,
)
from pasture.store.model import load_local_model
from pasture.store.names import ModelName

router = APIRouter()


# ----- translation into Ollama terms ------------------------------------------------------


def message_text(content: str | list[oa.ContentPart] | None) -> tuple[str, list[str]]:
    """A message's text and its images (base64), from a string or content parts."""
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    found: list[str] = []
    for part in content:
        if part.type in ("text", "input_text"):
            texts.append(part.text or "")
        elif part.type == "image_url":
            url = part.image_url.url if isinstance(part.image_url, oa.ImageURL) else part.image_url
            found.append(images.from_url(url or ""))
        else:
            raise BadRequestError(f"unsupported content part type: {part.type}")
    return "\n".join(texts), found


def chat_messages(messages: list[oa.ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI messages as Ollama's: images as base64 `images`, `reasoning` as `thinking`."""
    if not messages:
        raise BadRequestError("[] is too short - 'messages'")
    converted = []
    for message in messages:
        text, found = message_text(message.content)
        entry: dict[str, Any] = {"role": message.role, "content": text}
        if found:
            entry["images"] = found
        if message.reasoning:
            entry["thinking"] = message.reasoning
        if message.tool_call_id:
            entry["tool_call_id"] = message.tool_call_id
        if message.role.lower() == "tool" and message.name:
            entry["tool_name"] = message.name
        if message.tool_calls:
            entry["tool_calls"] = [ollama_tool_call(call) for call in message.tool_calls]
        converted.append(entry)
    return converted


def legacy_logprobs(entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """Token logprobs in legacy completions' shape; `offset`: where in the completion's
    text the first token starts (streamed chunks go on from the previous one)."""
    offsets = []
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.token)
    return {
        "tokens": [entry.token for entry in entries],
        "token_logprobs": [entry.logprob for entry in entries],
        "top_logprobs": [{alt.token: alt.logprob for alt in entry.top} for entry in entries],
        "text_offset": offsets,
    }


def response_format(fmt: oa.ResponseFormat | None) -> str | dict[str, Any] | None:
    """OpenAI's `response_format` as Ollama's `format` (a JSON schema or "json")."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return "json"
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise BadRequestError("response_format json_schema requires a schema")
    return fmt.json_schema.schema_


def sampling(body: oa._SamplingRequest, max_tokens: int | None) -> dict[str, Any]:
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    return options_of(
        num_predict=max_tokens, temperature=body.temperature, top_p=body.top_p,
        seed=body.seed, stop=stop, frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
    )


# ----- chat completions -------------------------------------------------------------------


def chat_turn(body: oa.ChatCompletionRequest) -> Turn:
    return Turn(
        model=body.model, messages=messages_of(chat_messages(body.messages)),
        options=(OPENAI_DEFAULTS, body.options,
                 sampling(body, body.max_completion_tokens or body.max_tokens)),
        tools=body.tools or None, tool_choice=body.tool_choice,
        think=think_from_effort(body.reasoning.effort if body.reasoning
                                else body.reasoning_effort),
        format=response_format(body.response_format), grammar=body.grammar,
        logprobs=bool(body.logprobs), top_logprobs=body.top_logprobs)


@router.post("/v1/chat/completions")
async def chat_completions(body: oa.ChatCompletionRequest, request: Request) -> Response:
    generation = await Generation.open(state_of(request), chat_turn(body))
    reply_id, created, display = new_id("chatcmpl-"), now(), generation.display
    if not body.stream:
        reply = await unless_disconnected(request, collect(generation.events()))
        calls = [openai_tool_call(call) for call in reply.tool_calls]
        return json_out(oa.ChatCompletion(
            id=reply_id, created=created, model=display, usage=usage(reply.finish),
            choices=[oa.ChatChoice(
                message=oa.AssistantMessage(content=reply.text, tool_calls=calls or None,
                                            reasoning=reply.thinking or None),
                finish_reason="tool_calls" if calls else reply.finish.done_reason,
                logprobs=openai_logprobs(reply.logprobs))],
        ))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: oa.Delta, finish_reason: str | None = None,
              logprobs: list[TokenLogprob] | None = None) -> bytes:
        return event(dump(oa.ChatCompletionChunk(
            id=reply_id, created=created, model=display,
            choices=[oa.ChunkChoice(delta=delta, finish_reason=finish_reason,
                                    logprobs=openai_logprobs(logprobs or []))],
        )))

    async def frames() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(generation.events()) as events:
            first = await anext(events)  # loads the model: failures here keep their status
            yield chunk(oa.Delta(role="assistant", content=""))
            called = False
            async for item in prepend(first, events):
                if isinstance(item, Piece):
                    logprobs = item.logprobs  # go with the first chunk made of this piece
                    if item.thinking:  # as Ollama: the thought and the answer apart
                        yield chunk(oa.Delta(reasoning=item.thinking), logprobs=logprobs)
                        logprobs = []
                    if item.tool_calls:
                        called = True
                        yield chunk(oa.Delta(tool_calls=[
                            openai_tool_call(call, streaming=True) for call in item.tool_calls]),
                            logprobs=logprobs)
                        logprobs = []
                    if item.text or logprobs:
                        yield chunk(oa.Delta(content=item.text), logprobs=logprobs)
                    continue
                yield chunk(oa.Delta(), "tool_calls" if called else item.done_reason)
                if include_usage:
                    yield event(dump(oa.ChatCompletionChunk(
                        id=reply_id, created=created, model=display, choices=[],
                        usage=usage(item),
                    )))
            yield event("[DONE]")

    return await stream(frames(), sse_framing(error_event), request)


# ----- legacy completions -----------------------------------------------------------------


@router.post("/v1/completions")
async def completions(body: oa.CompletionRequest, request: Request) -> Response:
    # As in Ollama, a generate: the prompt goes through the model's template as one user
    # turn, or with a `suffix` fills in the middle (a template with `.Suffix`: `insert`).
    # `logprobs: N` asks for the N likeliest alternatives to each token (0: none).
    generation = await Generation.open(state_of(request), Turn(
        model=body.model, messages=messages_of([{"role": "user", "content": body.prompt}]),
        action="generate", suffix=body.suffix or None,
        options=(OPENAI_DEFAULTS, body.options, sampling(body, body.max_tokens)),
        logprobs=body.logprobs is not None, top_logprobs=body.logprobs))
    reply_id, created, display = new_id("cmpl-"), now(), generation.display
    wants_logprobs = body.logprobs is not None
    if not body.stream:
        reply = await unless_disconnected(request, collect(generation.events()))
        return json_out(oa.Completion(
            id=reply_id, created=created, model=display, usage=usage(reply.finish),
            choices=[oa.CompletionChoice(
                text=reply.text, finish_reason=reply.finish.done_reason,
                logprobs=legacy_logprobs(reply.logprobs) if wants_logprobs else None)],
        ))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(text: str, logprobs: dict[str, Any] | None = None,
              finish: Finish | None = None) -> bytes:
        return event(dump(oa.Completion(
            id=reply_id, created=created, model=display,
            choices=[oa.CompletionChoice(text=text, logprobs=logprobs,
                                         finish_reason=finish.done_reason if finish else None)],
            usage=usage(finish) if finish and include_usage else None,
        )))

    async def frames() -> AsyncIterator[bytes]:
        offset = 0  # of the next token in the completion's text
        async with contextlib.aclosing(generation.events()) as events:
            async for item in events:
                if isinstance(item, Piece):
                    if item.text or item.logprobs:
                        logprobs = legacy_logprobs(item.logprobs, offset) if wants_logprobs \
                            else None
                        offset += sum(len(entry.token) for entry in item.logprobs)
                        yield chunk(item.text, logprobs)
                else:
                    yield chunk("", finish=item)
            yield event("[DONE]")

    return await stream(frames(), sse_framing(error_event), request)


# ----- embeddings -------------------------------------------------------------------------


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes in base64: what the SDK decodes by default."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post("/v1/embeddings")
async def embeddings(body: oa.EmbeddingRequest, request: Request) -> Response:
    inputs = embedding.text_inputs(body.input)
    if not inputs:
        raise BadRequestError("invalid input: input must not be empty")
    embedding.check_dimensions(body.dimensions)
    result = await embedding.embed(state_of(request), body.model, inputs, options=body.options)
    # Thousands of vectors take seconds to normalise and encode: not on the event loop.
    return await asyncio.to_thread(_embedding_list, result, body)


def _embedding_list(result: embedding.EmbedResult, body: oa.EmbeddingRequest) -> Response:
    vectors = (embedding.normalize(v, body.dimensions) for v in result.vectors)
    data = (
        oa.Embedding(index=i, embedding=encode_base64(v) if body.encoding_format == "base64"
                     else v)
        for i, v in enumerate(vectors)
    )
    shell = oa.EmbeddingList(
        data=[], model=result.model,
        usage=oa.EmbeddingUsage(prompt_tokens=result.prompt_tokens,
                                total_tokens=result.prompt_tokens),
    )
    return spliced_json(shell, "data", data)


# ----- models -----------------------------------------------------------------------------


def _model_entry(name: ModelName, modified_at: datetime) -> oa.Model:
    return oa.Model(id=name.display, created=int(modified_at.timestamp()),
                    owned_by=name.namespace)


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    store = state_of(request).store
    entries = []
    for name in await asyncio.to_thread(store.manifests.list):
        try:
            modified = await asyncio.to_thread(store.manifests.modified_at, name)
        except PastureError:
            continue
        entries.append(_model_entry(name, modified))
    entries.sort(key=lambda m: m.created, reverse=True)
    return json_out(oa.ModelList(data=entries))


@router.get("/v1/models/{model:path}")
async def retrieve_model(model: str, request: Request) -> Response:
    state = state_of(request)
    try:
        local = await asyncio.to_thread(load_local_model, state.store, ModelName.parse(model))
    except (ModelNotFoundError, BadRequestError):
        raise ModelNotFoundError(model) from None
    return json_out(_model_entry(local.name, local.modified_at))
