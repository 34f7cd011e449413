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
from pasture.prompt.render import Think
from pasture.prompt.tools import ToolChoice
from pasture.runner.base import RunnerCrashed
from pasture.server import completion, prompting
from pasture.server.completion import Finish, Piece
from pasture.server.rendering import check_capabilities
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
                   top_logprobs: int | None = None) -> AsyncIterator[Piece | Finish]:
        """Generate the assistant's reply to `messages`: `Piece`s, then one `Finish`.

        `tools` and `tool_choice` work as on `/api/chat` (calls come in `Piece.tool_calls`);
        `top_logprobs` (None: off) asks for per-token logprobs.
        """
        completion.format_fields(fmt)  # a bad format fails before anything loads
        capabilities = await self.state.model_capabilities(self.model)
        check_capabilities(self.name.display, capabilities, tools=bool(tools))
        choice = ToolChoice.of(tool_choice, tools)
        spec = self.state.load_spec(self.model, self.options)
        async with self.state.scheduler.lease(self.display, self.model.digest, spec,
                                              self.keep_alive, self.model.size) as lease:
            prompt = await prompting.chat_prompt(lease.runner, self.model, messages,
                                                 offered_tools(tools, choice))
            plan = await plan_reply(self.model, prompt, capabilities=capabilities,
                                    think=Think.of(False), tools=tools, choice=choice)
            async with contextlib.aclosing(completion.generate(
                        lease.runner, prompt, self.options, fmt, grammar=plan.grammar,
                        reply=plan.parser, top_logprobs=top_logprobs)) as events:
                async for event in events:
                    yield event


@dataclass
class Collected:
    """A whole generation, for non-streaming answers."""

    text: str
    finish: Finish
    tool_calls: list[dict[str, Any]]
    logprobs: list[dict[str, Any]]


async def collect_all(events: AsyncIterator[Piece | Finish]) -> Collected:
    """Everything a generation produced and its `Finish`. The iterator is run to its
    end, so the runner's lease is released before this returns."""
    parts: list[str] = []
    calls: list[dict[str, Any]] = []
    logprobs: list[dict[str, Any]] = []
    finish: Finish | None = None
    async for event in events:
        if isinstance(event, Piece):
            parts.append(event.text)
            calls.extend(event.tool_calls)
            logprobs.extend(event.logprobs)
        else:
            finish = event
    if finish is None:  # generate() always finishes; a bare end means the engine broke off
        raise RunnerCrashed()
    return Collected("".join(parts), finish, calls, logprobs)


async def collect(events: AsyncIterator[Piece | Finish]) -> tuple[str, Finish]:
    """All the text of a generation and its `Finish` (see `collect_all`)."""
    collected = await collect_all(events)
    return collected.text, collected.finish


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
