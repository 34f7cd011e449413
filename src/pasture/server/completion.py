"""One generation on the engine: the request payload going in, text and metrics coming out.

Shared by every API family (native generate/chat now, OpenAI and Anthropic later), so
that options, formats and metrics mean the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.prompt import grammars
from pasture.prompt.reply import OutputParser, Split
from pasture.runner.base import Runner
from pasture.server import images as engine_images

_DONE_REASONS = {"limit": "length"}  # llama-server stop_type → Ollama done_reason
_IMAGE_TAG = re.compile(r"\[img-(\d+)\]")  # where an image goes (`prompt.render.tag_images`)
MAX_TOP_LOGPROBS = 20


@dataclass
class Piece:
    """Text the model produced, with the tokens behind it.

    With a `ReplyParser`, `text` is the answer's content only; the thought and the tool
    calls parsed out of the output come in `thinking` and `tool_calls`. `logprobs` has
    one entry per token of this piece when asked for (Ollama's shape).
    """

    text: str
    tokens: list[int] = field(default_factory=list)
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Finish:
    """The end of a generation: why it stopped and what it cost (durations in ns)."""

    done_reason: str
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int
    stop_word: str | None = None  # the stop sequence that ended it, if one did


def format_fields(fmt: str | dict[str, Any] | None) -> dict[str, Any]:
    """llama-server fields constraining output for Ollama's `format`."""
    schema = grammars.format_schema(fmt)
    return {} if schema is None else {"json_schema": schema}


def check_constraints(fmt: str | dict[str, Any] | None,
                      grammar: str | grammars.Constrained | None) -> None:
    """400 for a `format` or grammar that cannot be honoured, before anything loads:
    either is checked, and both at once are refused."""
    if grammar is None:
        grammars.format_schema(fmt)
    elif fmt not in (None, ""):
        raise BadRequestError("format cannot be combined with a grammar or a forced tool_choice")
    elif isinstance(grammar, str):
        grammars.check_grammar(grammar)


def constraint_fields(fmt: str | dict[str, Any] | None,
                      grammar: str | grammars.Constrained | None,
                      runner: Runner) -> dict[str, Any]:
    """llama-server fields for `format` or a grammar (a user's GBNF/Lark, or one Pasture
    composed), written for the runner's engine build."""
    if grammar is None:
        return format_fields(fmt)  # reading the format checks it
    check_constraints(fmt, grammar)
    if isinstance(grammar, grammars.Constrained):
        return {"grammar": grammar.lark() if runner.llguidance else grammar.gbnf()}
    if not runner.llguidance and grammars.is_lark(grammar):
        raise BadRequestError(f"invalid grammar: this model runs on engine build "
                              f"'{runner.engine}', built without llguidance: write the "
                              "grammar in GBNF")
    return {"grammar": grammar}


def check_top_logprobs(logprobs: bool | None, top_logprobs: int | None) -> int | None:
    """How many alternatives per token to return (None: no logprobs); 400 outside 0–20."""
    if top_logprobs is not None and not 0 <= top_logprobs <= MAX_TOP_LOGPROBS:
        raise BadRequestError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
    return (top_logprobs or 0) if logprobs else None


def token_logprobs(chunk: dict[str, Any], top: int) -> list[dict[str, Any]]:
    """llama-server's `completion_probabilities` as Ollama's `logprobs` entries."""
    def entry(item: dict[str, Any]) -> dict[str, Any]:
        return {"token": item.get("token", ""), "logprob": item.get("logprob", 0.0),
                "bytes": item.get("bytes") or []}

    return [{**entry(item), "top_logprobs": [entry(alt) for alt in
                                             (item.get("top_logprobs") or [])[:top]]}
            for item in chunk.get("completion_probabilities") or []]


def engine_prompt(prompt: str | list[int], images: Sequence[str], marker: str | None
                  ) -> str | list[int] | dict[str, Any]:
    """llama-server's `prompt` for a prompt whose `[img-N]` tags stand for `images[N]`
(base64 as the engine takes it: `images.for_engine`).

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


async def generate(runner: Runner, prompt: str | list[int], options: dict[str, Any],
                   fmt: str | dict[str, Any] | None = None, *,
                   grammar: str | grammars.Constrained | None = None,
                   reply: OutputParser | None = None, top_logprobs: int | None = None,
                   images: Sequence[str] = ()) -> AsyncIterator[Piece | Finish]:
    """Run one completion, yielding `Piece`s and then exactly one `Finish`.

    `grammar` constrains decoding (instead of `fmt`); `reply` splits the output into
    thinking, content and tool calls; `top_logprobs` (0–20) asks for per-token logprobs;
    `images` (base64) are what the prompt's `[img-N]` tags show the model.
    """
    if runner.media_marker is not None and images:
        images = await engine_images.for_engine(images)
    payload: dict[str, Any] = {
        "prompt": engine_prompt(prompt, images, runner.media_marker),
        "stream": True,
        "cache_prompt": True,
        "return_tokens": True,
        **opts.engine_sampling(options, runner.spec.num_ctx),
        **constraint_fields(fmt, grammar, runner),
    }
    if reply is not None and reply.markers:  # a tag that is a control token (Qwen's
        payload["preserved_tokens"] = list(reply.markers)  # <think>, [TOOL_CALLS]) must show
    if top_logprobs is not None:  # the engine sends probabilities only for n_probs > 0
        payload.update(n_probs=max(1, top_logprobs), post_sampling_probs=False)
    # aclosing: if our consumer stops early (a client disconnect), the engine request is
    # cancelled now, not whenever the garbage collector finalises the generators.
    async with contextlib.aclosing(runner.completion(payload)) as chunks:
        async for chunk in chunks:
            if chunk.get("content") or chunk.get("tokens"):
                text = chunk.get("content", "")
                split = reply.feed(text) if reply is not None else Split(text)
                yield Piece(split.content, chunk.get("tokens") or [], split.thinking,
                            split.tool_calls, [] if top_logprobs is None
                            else token_logprobs(chunk, top_logprobs))
            if chunk.get("stop"):
                if reply is not None and (rest := reply.finish()):
                    yield Piece(rest.content, [], rest.thinking, rest.tool_calls)
                yield _finish(chunk)
                return


def _finish(chunk: dict[str, Any]) -> Finish:
    """The `Finish` for llama-server's final chunk."""
    timings = chunk.get("timings", {})
    return Finish(
        done_reason=_DONE_REASONS.get(chunk.get("stop_type", ""), "stop"),
        prompt_eval_count=int(chunk.get("tokens_evaluated", timings.get("prompt_n", 0))),
        prompt_eval_duration=int(timings.get("prompt_ms", 0) * 1e6),
        eval_count=int(timings.get("predicted_n", chunk.get("tokens_predicted", 0))),
        eval_duration=int(timings.get("predicted_ms", 0) * 1e6),
        stop_word=chunk.get("stopping_word") or None
        if chunk.get("stop_type") == "word" else None,
    )
