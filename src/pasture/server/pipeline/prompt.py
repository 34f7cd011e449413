"""From a turn's messages to the prompt the model sees, rendered once.

*Rendered* mode: the model has a Go TEMPLATE (from its Modelfile or a pulled Ollama
model), or generate passes `template`; Pasture's interpreter renders it, in a worker
thread (a template is untrusted input with a time cap). *Native* mode: the engine applies
the GGUF's own chat template (`Runner.apply_template`). Both fit the conversation into
the context the same way (`prompt.fit`): the render that fits is the prompt, and the
tokens counted to see it fit go to the engine, so the prompt is neither rendered nor
tokenized twice (unless images must be tagged in it after truncation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pasture.errors import BadRequestError
from pasture.prompt import fit
from pasture.prompt.render import PromptTemplate, Think, tag_images
from pasture.runner.base import Runner
from pasture.store.model import LocalModel

Render = Callable[[list[dict[str, Any]]], Awaitable[str]]
log = logging.getLogger("pasture")
# Ollama's words for a prompt that cannot be fitted into the context.
TOO_LONG = ("the prompt is longer than the context length currently available to the "
            "model; shorten the prompt, adjust the context length in settings, or use a "
            "model with a longer context length")


@dataclass
class Prompt:
    """A prompt ready for the engine: its text, the images (base64) its `[img-N]` tags
    refer to (tag N is `images[N]`), and its tokens when they were counted."""

    text: str
    images: list[str] = field(default_factory=list)
    tokens: list[int] | None = None
    truncation: fit.Truncation | None = None  # what fitting the context cut

    @property
    def image_count(self) -> int:
        return len(self.images)


def conversation(model: LocalModel, messages: list[dict[str, Any]],
                 system: str | None = None) -> list[dict[str, Any]]:
    """The messages the template sees: system prompt, Modelfile MESSAGEs, then `messages`.

    `system` overrides the model's SYSTEM; a conversation that begins with a system
    message keeps its own and gets no other.
    """
    history = [dict(m) for m in model.messages]
    system = system if system is not None else model.system
    starts_with_system = bool(messages) and messages[0].get("role") == "system"
    if system and not starts_with_system:
        history.insert(0, {"role": "system", "content": system})
    return history + [dict(m) for m in messages]


def renderer(template: PromptTemplate | None, runner: Runner | None,
             tools: list[dict[str, Any]] | None, think: Think) -> Render:
    """How messages become prompt text in the model's mode."""
    if template is not None:
        async def render(kept: list[dict[str, Any]]) -> str:
            return await asyncio.to_thread(template.render, kept, tools, think)
        return render
    if runner is None:
        raise BadRequestError("native prompt rendering needs the model loaded")

    async def apply(kept: list[dict[str, Any]]) -> str:
        return await runner.apply_template(kept, tools or None, think.enabled,
                                           think.level or None)
    return apply


@dataclass(frozen=True)
class Fitting:
    """How a prompt is fitted into the turn's context (`num_ctx`, the request's, which a
    runner lent without a slot may not have): Ollama's `truncate` (may turns be dropped
    and text cut at all) and `shift` (may the last turns' text be cut, and may the answer
    run past the context), both on unless a request says false."""

    num_ctx: int
    truncate: bool = True
    shift: bool = True
    num_predict: int | None = None  # how long an answer to leave room for
    num_keep: int = 4  # the head a token cut keeps (Ollama's option and default)

    @classmethod
    def of(cls, num_ctx: int, truncate: bool, shift: bool, options: dict[str, Any]
           ) -> Fitting:
        return cls(num_ctx, truncate, shift, options.get("num_predict"),
                   options.get("num_keep", 4))


async def chat_prompt(messages: list[dict[str, Any]], render: Render, runner: Runner | None,
                      fitting: Fitting | None = None) -> Prompt:
    """The prompt for a conversation, fitted to the runner's context (`prompt.fit`; not
    without a runner, as for debug rendering of a Go template, nor with `truncate`
    false), images tagged."""
    kept, start, text, tokens, truncation = messages, 0, None, None, None
    if fitting is not None and fitting.truncate and runner is not None:
        kept, start, text, tokens, truncation = await _fit(messages, render, runner, fitting)
    tagged, image_count = tag_images(kept, start)
    if text is not None and not image_count:  # the render that fitted is the prompt
        return Prompt(text, tokens=tokens, truncation=truncation)
    shown = [image for message in kept[start:] for image in message.get("images") or []]
    return Prompt(await render(tagged), shown, truncation=truncation)


async def _fit(messages: list[dict[str, Any]], render: Render, runner: Runner,
               fitting: Fitting
               ) -> tuple[list[dict[str, Any]], int, str, list[int], fit.Truncation | None]:
    """The messages kept (contents perhaps cut): the system messages before the kept
    history, then the history, which starts at the index returned; their prompt and
    tokens, and what was cut."""
    num_ctx = fitting.num_ctx
    history = await fit.truncate_history(messages, render, runner.tokenize, num_ctx,
                                         fit.IMAGE_TOKENS)
    kept, text, tokens = history.kept, history.text, history.tokens
    images = fit.IMAGE_TOKENS * fit.image_count(kept)
    cut_characters = cut_count = 0
    if len(tokens) + images > num_ctx - 1:
        if not fitting.shift:
            raise BadRequestError(TOO_LONG)
        limit = num_ctx - fit.answer_room(num_ctx, fitting.num_predict)
        cut = await fit.cut_messages(kept, render, runner.tokenize, limit, fit.IMAGE_TOKENS)
        if cut is not None:
            kept, text, tokens, cut_characters = cut
        elif images:  # a token cut could split an image's tag from its place
            raise BadRequestError(TOO_LONG)
        else:  # the framing alone is too long: keep its head and end, as Ollama does
            cut_count = len(tokens) - limit
            tokens = fit.cut_tokens(tokens, limit, fitting.num_keep)
    systems = len(kept) - (len(messages) - history.start)  # kept from before the start
    if history.whole == len(tokens) + images:
        return kept, systems, text, tokens, None
    truncation = fit.Truncation(history.whole, len(tokens) + images,
                                history.start - systems, cut_characters, cut_count)
    log.warning("truncating input prompt: limit=%d prompt=%d new=%d dropped_messages=%d "
                "cut_characters=%d cut_tokens=%d", num_ctx, truncation.prompt_tokens,
                truncation.kept, truncation.dropped_messages, cut_characters, cut_count)
    return kept, systems, text, tokens, truncation


async def fit_text(text: str, runner: Runner, fitting: Fitting) -> Prompt:
    """A raw prompt fitted to the runner's context: its middle cut when too long."""
    async def as_is(kept: list[dict[str, Any]]) -> str:
        return kept[0]["content"]
    _, _, fitted, tokens, truncation = await _fit([{"role": "user", "content": text}], as_is,
                                                  runner, fitting)
    return Prompt(fitted, tokens=tokens, truncation=truncation)


async def insert_prompt(template: PromptTemplate, prompt: str, suffix: str, think: Think,
                        pictures: list[str]) -> Prompt:
    """The fill-in-the-middle prompt for generate with a `suffix`."""
    text = await asyncio.to_thread(template.render_insert, prompt, suffix, think)
    return Prompt(text, pictures)
