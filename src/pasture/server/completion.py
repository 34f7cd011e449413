"""One generation on the engine: the request payload going in, text and metrics coming out.

Shared by every API family (native generate/chat now, OpenAI and Anthropic later), so
that options, formats and metrics mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.runner.base import Runner

_DONE_REASONS = {"limit": "length"}  # llama-server stop_type → Ollama done_reason


@dataclass
class Piece:
    """Text the model produced, with the tokens behind it."""

    text: str
    tokens: list[int] = field(default_factory=list)


@dataclass
class Finish:
    """The end of a generation: why it stopped and what it cost (durations in ns)."""

    done_reason: str
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int


def format_fields(fmt: str | dict[str, Any] | None) -> dict[str, Any]:
    """llama-server fields constraining output for Ollama's `format`."""
    if fmt is None or fmt == "":
        return {}
    if fmt == "json":
        return {"json_schema": {"type": "object"}}
    if isinstance(fmt, dict):
        return {"json_schema": fmt}
    raise BadRequestError(f"invalid format: {fmt!r}")


async def generate(runner: Runner, prompt: str | list[int], options: dict[str, Any],
                   fmt: str | dict[str, Any] | None = None) -> AsyncIterator[Piece | Finish]:
    """Run one completion, yielding `Piece`s and then exactly one `Finish`."""
    payload: dict[str, Any] = {
        "prompt": prompt,
        "stream": True,
        "cache_prompt": True,
        "return_tokens": True,
        **opts.engine_sampling(options, runner.spec.num_ctx),
        **format_fields(fmt),
    }
    async for chunk in runner.completion(payload):
        if chunk.get("content") or chunk.get("tokens"):
            yield Piece(chunk.get("content", ""), chunk.get("tokens") or [])
        if chunk.get("stop"):
            timings = chunk.get("timings", {})
            yield Finish(
                done_reason=_DONE_REASONS.get(chunk.get("stop_type", ""), "stop"),
                prompt_eval_count=int(chunk.get("tokens_evaluated", timings.get("prompt_n", 0))),
                prompt_eval_duration=int(timings.get("prompt_ms", 0) * 1e6),
                eval_count=int(timings.get("predicted_n", chunk.get("tokens_predicted", 0))),
                eval_duration=int(timings.get("predicted_ms", 0) * 1e6),
            )
            return
