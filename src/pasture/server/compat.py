"""What the OpenAI and Anthropic layers share: a request resolved onto the native internals.

A compatibility route translates its wire format into Ollama terms (chat messages as
`{"role", "content"}` dicts, Ollama options, a `format`) and runs them here, through the
same model lookup, options merge, scheduler lease, prompt building and engine call as
`/api/chat`, so that a model behaves the same whichever API it is reached by.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.prompt.tools import ToolChoice
from pasture.runner.base import RunnerCrashed
from pasture.server import completion, images, prompting
from pasture.server.completion import Finish, Piece
from pasture.server.rendering import check_capabilities, think_for
from pasture.server.replies import offered_tools, plan_reply
from pasture.server.state import ServerState
from pasture.store.model import LocalModel
from pasture.store.names import ModelName


def new_id(prefix: str) -> str:
    """A response id in the style of the API family (`chatcmpl-…`, `msg_…`)."""
    return prefix + secrets.token_hex(12)


def now() -> int:
    return int(time.time())


def sampling_options(**fields: Any) -> dict[str, Any]:
    """The Ollama options among keyword fields, unset (None) ones left out."""
    return {name: value for name, value in fields.items() if value is not None}


# OpenAI's reasoning efforts as Ollama's `think`, clamped to Ollama's tiers as Ollama does.
_EFFORTS: dict[str, bool | str] = {"none": False, "minimal": "low", "low": "low",
                                   "medium": "medium", "high": "high", "max": "max",
                                   "xhigh": "max", "ultra": "max"}


def think_from_effort(effort: str | None) -> bool | str | None:
    """`reasoning_effort` (or `reasoning.effort`) as `think`; None keeps the model's
    default (on for thinking models)."""
    if not effort:
        return None
    if effort not in _EFFORTS:
        raise BadRequestError(f'invalid reasoning value: "{effort}" (must be "minimal", "low", '
                              '"medium", "high", "xhigh", "ultra", "max", or "none")')
    return _EFFORTS[effort]


@dataclass
class Generation:
    """A model and merged options, ready to run chats or prompts on a leased runner."""

    state: ServerState
    name: ModelName
    model: LocalModel
    options: dict[str, Any]
    keep_alive: float

    @classmethod
    async def open(cls, state: ServerState, model_text: str, *layers: dict[str, Any] | None,
                   action: str = "chat") -> Generation:
        """Resolve `model_text` (404 if absent, 400 if it cannot generate) and merge the
        model's parameters with `layers` of request options (later layers win)."""
        name, model = state.model(model_text)
        await state.require_capability(model_text, model, "completion", action)
        merged = opts.merge(model.params, *(opts.validate(layer) for layer in layers))
        return cls(state, name, model, merged, state.keep_alive(None))

    @property
    def display(self) -> str:
        return self.name.display

    async def chat(self, messages: list[dict[str, Any]],
                   fmt: str | dict[str, Any] | None = None, *,
                   tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
                   top_logprobs: int | None = None, think: bool | str | None = None,
                   relax_think: bool = False, grammar: str | None = None
                   ) -> AsyncIterator[Piece | Finish]:
        """Generate the assistant's reply to `messages`: `Piece`s, then one `Finish`.

        Messages are Ollama's (`images` as base64, `thinking`, `tool_calls`). `tools`,
        `tool_choice`, `think` and `grammar` work as on `/api/chat` (calls come in
        `Piece.tool_calls`, the thought in `Piece.thinking`); `relax_think` drops `think`
        for a model that cannot think instead of refusing it (Ollama's Anthropic layer);
        `top_logprobs` (None: off) asks for per-token logprobs.
        """
        completion.check_constraints(fmt, grammar)  # a bad one fails before anything loads
        pictures = images.of_messages(messages)
        await images.check(pictures, self.state.settings.max_image_bytes)
        capabilities = await self.state.model_capabilities(self.model)
        check_capabilities(self.display, capabilities, tools=bool(tools), images=bool(pictures))
        if relax_think and "thinking" not in capabilities:
            think = None
        thinking = think_for(think, capabilities, self.display)
        choice = ToolChoice.of(tool_choice, tools)
        spec = self.state.load_spec(self.model, self.options)
        async with self.state.scheduler.lease(self.display, self.model.digest, spec,
                                              self.keep_alive, self.model.size) as lease:
            prompt = await prompting.chat_prompt(lease.runner, self.model, messages,
                                                 offered_tools(tools, choice), thinking)
            plan = await plan_reply(self.model, prompt.text, capabilities=capabilities,
                                    think=thinking, tools=tools, choice=choice, grammar=grammar,
                                    fmt=fmt)
            async with contextlib.aclosing(completion.generate(
                        lease.runner, prompt.text, self.options, plan.fmt, grammar=plan.grammar,
                        reply=plan.parser, top_logprobs=top_logprobs,
                        images=prompt.images)) as events:
                async for event in events:
                    yield event


@dataclass
class Collected:
    """A whole generation, for non-streaming answers."""

    text: str
    finish: Finish
    tool_calls: list[dict[str, Any]]
    logprobs: list[dict[str, Any]]
    thinking: str = ""

    def piece(self) -> Piece:
        """Everything generated as one `Piece`: thought, text, then calls."""
        return Piece(self.text, thinking=self.thinking, tool_calls=self.tool_calls,
                     logprobs=self.logprobs)


async def collect_all(events: AsyncIterator[Piece | Finish]) -> Collected:
    """Everything a generation produced and its `Finish`. The iterator is run to its
    end, so the runner's lease is released before this returns."""
    parts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    logprobs: list[dict[str, Any]] = []
    finish: Finish | None = None
    async for event in events:
        if isinstance(event, Piece):
            parts.append(event.text)
            thoughts.append(event.thinking)
            calls.extend(event.tool_calls)
            logprobs.extend(event.logprobs)
        else:
            finish = event
    if finish is None:  # generate() always finishes; a bare end means the engine broke off
        raise RunnerCrashed()
    return Collected("".join(parts), finish, calls, logprobs, "".join(thoughts))


async def prepend(first: Piece | Finish,
                  rest: AsyncIterator[Piece | Finish]) -> AsyncIterator[Piece | Finish]:
    """`first` followed by the rest of a generation (after peeking at its first event)."""
    yield first
    async for item in rest:
        yield item


async def closing(frames: AsyncIterator[bytes],
                  events: AsyncIterator[Piece | Finish]) -> AsyncIterator[bytes]:
    """`frames` rendered from `events`; closing it (the client left) ends the generation
    at once, so the runner's slot and lease are freed without waiting for the collector."""
    try:
        async for frame in frames:
            yield frame
    finally:
        await frames.aclose()  # type: ignore[attr-defined]
        await events.aclose()  # type: ignore[attr-defined]
