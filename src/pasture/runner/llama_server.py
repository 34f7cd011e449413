"""llama-server's JSON, written and read in one place.

The rest of Pasture asks a runner for a `CompletionRequest` and reads back `EngineChunk`s
and one `EngineDone`; only this module knows the `/completion` payload's field names,
the sampling defaults llama-server would otherwise apply, how images become its media
markers, and what its streamed chunks, timings and errors look like.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError, RunnerError
from pasture.runner.base import (
    CompletionRequest,
    EngineChunk,
    EngineDone,
    Ranking,
    TokenLogprob,
)

# Ollama's sampling options and llama-server's names for them.
_SAMPLING_FIELDS = {
    "num_keep": "n_keep", "seed": "seed", "num_predict": "n_predict", "top_k": "top_k",
    "top_p": "top_p", "min_p": "min_p", "typical_p": "typical_p",
    "repeat_last_n": "repeat_last_n", "temperature": "temperature",
    "repeat_penalty": "repeat_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty", "stop": "stop",
}
_DONE_REASONS = {"limit": "length"}  # llama-server stop_type → Ollama done_reason
_IMAGE_TAG = re.compile(r"\[img-(\d+)\]")  # where an image goes (`prompt.render.tag_images`)


def sampling_fields(options: dict[str, Any], num_ctx: int) -> dict[str, Any]:
    """The llama-server `/completion` fields for merged Ollama options.

    Every sampling field is sent explicitly because llama-server's own defaults differ
    from Ollama's (e.g. its min_p is 0.05 and top_p 0.95). `num_predict` is capped at
    ten contexts, as Ollama does (`llm/server.go`), so a runaway generation always ends
    even with context shift: unbounded (-1), fill-the-context (-2) and larger asks alike.
    """
    fields = {_SAMPLING_FIELDS[name]: options[name] for name in opts.SAMPLING
              if options.get(name) is not None}
    if not 0 <= fields.get("n_predict", -1) <= 10 * num_ctx:
        fields["n_predict"] = 10 * num_ctx
    if fields.get("seed", -1) < 0:
        fields.pop("seed", None)
    fields.setdefault("stop", [])
    return fields


def engine_prompt(prompt: str | list[int], images: Sequence[str], marker: str | None
                  ) -> str | list[int] | dict[str, Any]:
    """llama-server's `prompt` for a prompt whose `[img-N]` tags stand for `images[N]`
    (base64 as the engine takes it: `runner.media.for_engine`).

    With a projector loaded (`marker` set), each tag of a given image becomes the engine's
    media marker and the image joins `multimodal_data`, in the order the tags appear: the
    engine pairs markers and images by position. Tags of no given image stay text. An
    image may not end the prompt: the engine samples from the last text token and aborts
    without one.
    """
    if marker is None or not images or not isinstance(prompt, str):
        return prompt
    data: list[str] = []

    def swap(tag: re.Match[str]) -> str:
        index = int(tag.group(1))
        if index >= len(images):
            return tag.group(0)
        data.append(images[index])
        return marker

    text = _IMAGE_TAG.sub(swap, prompt)
    if text.endswith(marker):
        raise BadRequestError("an image cannot end the prompt: put text after it")
    return {"prompt_string": text, "multimodal_data": data} if data else prompt


def completion_payload(request: CompletionRequest, num_ctx: int, marker: str | None,
                       images: Sequence[str]) -> dict[str, Any]:
    """The `/completion` body for `request` (with `images` ready for the engine)."""
    payload: dict[str, Any] = {
        "prompt": engine_prompt(request.prompt, images, marker),
        "stream": True,
        "cache_prompt": True,
        "return_tokens": True,
        **sampling_fields(request.options, num_ctx),
    }
    if request.grammar is not None:
        payload["grammar"] = request.grammar
    elif request.json_schema is not None:
        payload["json_schema"] = request.json_schema
    if request.preserved_tokens:  # a tag that is a control token (Qwen's <think>,
        payload["preserved_tokens"] = list(request.preserved_tokens)  # [TOOL_CALLS]) shows
    if request.top_logprobs is not None:  # probabilities come only for n_probs > 0
        payload.update(n_probs=max(1, request.top_logprobs), post_sampling_probs=False)
    if request.lora is not None:  # every adapter listed: one left out would get 0 anyway,
        # but an empty list would mean "the load scales" to llama-server
        payload["lora"] = [{"id": index, "scale": scale}
                           for index, scale in enumerate(request.lora)]
    return payload


def read_chunk(chunk: dict[str, Any], top_logprobs: int | None
               ) -> tuple[EngineChunk | None, EngineDone | None]:
    """What one streamed chunk says: text generated, the end, or both."""
    piece = None
    if chunk.get("content") or chunk.get("tokens"):
        piece = EngineChunk(chunk.get("content", ""), list(chunk.get("tokens") or []),
                            [] if top_logprobs is None else _logprobs(chunk, top_logprobs))
    return piece, (_done(chunk) if chunk.get("stop") else None)


def _logprobs(chunk: dict[str, Any], top: int) -> list[TokenLogprob]:
    """llama-server's `completion_probabilities`, each with its `top` best alternatives."""
    def entry(item: dict[str, Any], alternatives: tuple[TokenLogprob, ...] = ()
              ) -> TokenLogprob:
        return TokenLogprob(item.get("token", ""), item.get("logprob", 0.0),
                            list(item.get("bytes") or []), alternatives)

    return [entry(item, tuple(entry(alt) for alt in (item.get("top_logprobs") or [])[:top]))
            for item in chunk.get("completion_probabilities") or []]


def _done(chunk: dict[str, Any]) -> EngineDone:
    """The `EngineDone` for llama-server's final chunk (its `timings` in ms)."""
    timings = chunk.get("timings", {})
    return EngineDone(
        done_reason=_DONE_REASONS.get(chunk.get("stop_type", ""), "stop"),
        prompt_eval_count=int(chunk.get("tokens_evaluated", timings.get("prompt_n", 0))),
        prompt_eval_duration=int(timings.get("prompt_ms", 0) * 1e6),
        eval_count=int(timings.get("predicted_n", chunk.get("tokens_predicted", 0))),
        eval_duration=int(timings.get("predicted_ms", 0) * 1e6),
        stop_word=chunk.get("stopping_word") or None
        if chunk.get("stop_type") == "word" else None,
        cached_tokens=int(timings.get("cache_n", 0)),
        draft_tokens=int(timings.get("draft_n", 0)),
        draft_accepted=int(timings.get("draft_n_accepted", 0)),
    )


def ranking(reply: dict[str, Any], count: int) -> Ranking:
    """The scores in `/rerank`'s Jina-style reply (sorted best first) in document order."""
    scores = [0.0] * count
    for result in reply.get("results", []):
        scores[int(result["index"])] = float(result["relevance_score"])
    return Ranking(scores, int(reply.get("usage", {}).get("prompt_tokens", 0)))


def error_message(body: dict[str, Any]) -> str:
    """The message of llama-server's `{"error": ...}` (a string or an object)."""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message", "engine error"))
    return str(error or "engine error")


def http_error(status: int, body: bytes) -> RunnerError | BadRequestError:
    """llama-server's non-200 answer as ours: its 4xx are the request's fault (400)."""
    try:
        message = error_message(json.loads(body))
    except ValueError:
        message = body.decode(errors="replace")[:200] or f"engine answered {status}"
    if 400 <= status < 500:
        return BadRequestError(message)
    return RunnerError(message)


def template_body(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                  thinking: bool, effort: str | None) -> dict[str, Any]:
    """The `/apply-template` body: Ollama's messages and tools as the engine's Jinja
    templates take them (OpenAI's shape), and `think` as the variables thinking-aware
    templates read."""
    body: dict[str, Any] = {"messages": template_messages(messages)}
    if tools:
        body["tools"] = tools
    kwargs: dict[str, Any] = {"enable_thinking": thinking}
    if effort in opts.THINK_LEVELS:  # as Ollama passes it (`llamaServerChatTemplateKwargs`)
        kwargs["reasoning_effort"] = effort
    body["chat_template_kwargs"] = kwargs
    return body


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ollama's messages in OpenAI's shape: tool calls typed, with arguments as a JSON
    string; `tool_name` as `name`; prior thinking as `reasoning_content`."""
    converted = []
    for message in messages:
        entry = {k: v for k, v in message.items()
                 if k not in ("tool_calls", "tool_name", "thinking", "images")}
        if message.get("tool_calls"):
            entry["tool_calls"] = [{
                "type": "function",
                **({"id": call["id"]} if call.get("id") else {}),
                "function": {"name": call.get("function", {}).get("name", ""),
                             "arguments": json.dumps(call.get("function", {}).get("arguments")
                                                     or {})},
            } for call in message["tool_calls"]]
        if message.get("tool_name"):
            entry["name"] = message["tool_name"]
        if message.get("thinking"):
            entry["reasoning_content"] = message["thinking"]
        converted.append(entry)
    return converted
