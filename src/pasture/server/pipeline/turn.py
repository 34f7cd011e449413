"""A `Turn`: one inference request in Ollama's terms, whichever API family sent it.

Every inference route (`/api/chat`, `/api/generate`, OpenAI's chat completions,
completions and responses, Anthropic's messages) translates its request into a `Turn`
and nothing else; the pipeline reads only this. Fields are Ollama's, so a model behaves
the same whichever API reaches it. `Constraint` is a turn's `format` or grammar once
checked, which is how the pipeline carries it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pasture.api.ollama import Message
from pasture.errors import BadRequestError
from pasture.prompt import grammars

PREFIX_CHARS = 2048  # of a prompt's start, for routing to a replica (`prefix_key`)


@dataclass
class Turn:
    """What to ask which model, and how."""

    model: str  # as the request spelled it
    messages: list[Message]  # the conversation; none: only load (or unload) the model
    action: str = "chat"  # what a model that cannot complete "does not support"
    # Option layers, later ones winning, on top of the model's PARAMETERs.
    options: tuple[dict[str, Any] | None, ...] = ()
    keep_alive: float | str | None = None  # None: the server's default
    system: str | None = None  # replaces the model's SYSTEM (generate's `system`)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    think: bool | str | None = None  # None: the model's default (on for thinking models)
    relax_think: bool = False  # drop `think` for a model that cannot think (Anthropic's)
    format: str | dict[str, Any] | None = None
    grammar: str | None = None
    logprobs: bool = False
    top_logprobs: int | None = None  # alternatives per token, with `logprobs`
    truncate: bool = True  # fit the prompt into the context (drop old turns, cut text)
    shift: bool = True  # cut the last turns' text to fit; let the answer pass the context
    # /api/generate only: the last message's content is the prompt.
    raw: bool = False  # sent as written, without a template
    suffix: str | None = None  # fill in the middle, through the template's `.Suffix`
    template: str | None = None  # a Go TEMPLATE for this request alone
    context: list[int] = field(default_factory=list)  # an earlier answer's `context`
    return_context: bool = False  # the answer carries prompt + answer token ids

    @property
    def prefix_key(self) -> str:
        """A hash of how the prompt starts (the system prompt, then the first messages'
        text, `PREFIX_CHARS` in all): turns alike in it share a prompt-cache prefix, so
        the scheduler sends them to the replica that served the last one."""
        parts = [self.system or "", *(f"{m.role}:{m.content}" for m in self.messages)]
        return hashlib.sha256("\0".join(parts)[:PREFIX_CHARS].encode()).hexdigest()

    @property
    def images(self) -> list[str]:
        """Every image in the conversation (base64)."""
        return [image for message in self.messages for image in message.images or []]


@dataclass
class Constraint:
    """What a request asks the answer to follow, checked once before anything loads: a
    JSON schema (Ollama's `format`) or a user's grammar (GBNF or llguidance Lark)."""

    schema: dict[str, Any] | None = None
    grammar: str | None = None

    @classmethod
    def of(cls, fmt: str | dict[str, Any] | None, grammar: str | None,
           forced_call: bool) -> Constraint:
        """400 for a `format` or grammar that cannot be honoured, or for two at once (a
        forced tool call is a grammar too). Compiles a schema: run it off the loop."""
        if grammar is not None or forced_call:
            if fmt not in (None, ""):
                raise BadRequestError("format cannot be combined with a grammar or a forced "
                                      "tool_choice")
            if grammar is not None and forced_call:
                raise BadRequestError("grammar cannot be combined with a forced tool_choice")
        if grammar is not None:
            grammars.check_grammar(grammar)
            return cls(grammar=grammar)
        return cls(schema=grammars.format_schema(fmt))


def options_of(**fields: Any) -> dict[str, Any]:
    """The Ollama options among a translator's keyword fields, unset (None) ones left out."""
    return {name: value for name, value in fields.items() if value is not None}


def messages_of(entries: list[dict[str, Any]]) -> list[Message]:
    """Translated messages (Ollama's wire shape) as the pipeline takes them."""
    return [Message.model_validate(entry) for entry in entries]
