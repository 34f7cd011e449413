"""From a turn's messages to the prompt the model sees, rendered once.

*Rendered* mode: the model has a Go TEMPLATE (from its Modelfile or a pulled Ollama
model), or generate passes `template`; Pasture's interpreter renders it, in a worker
thread (a template is untrusted input with a time cap). *Native* mode: the engine applies
the GGUF's own chat template (`Runner.apply_template`). Both truncate the history to the
context the same way (`prompt.render.truncate_history`): the render that fits is the
prompt, and the tokens counted to see it fit go to the engine, so the prompt is neither
rendered nor tokenized twice (unless images must be tagged in it after truncation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pasture.errors import BadRequestError
from pasture.prompt.render import IMAGE_TOKENS, PromptTemplate, Think, tag_images, truncate_history
from pasture.runner.base import Runner
from pasture.store.model import LocalModel

Render = Callable[[list[dict[str, Any]]], Awaitable[str]]


@dataclass
class Prompt:
    """A prompt ready for the engine: its text, the images (base64) its `[img-N]` tags
    refer to (tag N is `images[N]`), and its tokens when they were counted."""

    text: str
    images: list[str] = field(default_factory=list)
    tokens: list[int] | None = None

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


async def chat_prompt(messages: list[dict[str, Any]], render: Render, runner: Runner | None,
                      truncate: bool = True) -> Prompt:
    """The prompt for a conversation: history truncated to the runner's context (none
    without a runner, as for debug rendering of a Go template), images tagged."""
    start, kept, text, tokens = 0, messages, None, None
    if truncate and runner is not None:
        kept, start, text, tokens = await truncate_history(
            messages, render, runner.tokenize, runner.spec.num_ctx, IMAGE_TOKENS)
    tagged, image_count = tag_images(messages, start)
    if text is not None and not image_count:  # the render that fitted is the prompt
        return Prompt(text, tokens=tokens)
    system = kept[:len(kept) - (len(messages) - start)]
    shown = [image for message in messages for image in message.get("images") or []]
    shown = shown[-image_count:] if image_count else []
    return Prompt(await render(system + tagged[start:]), shown)


async def insert_prompt(template: PromptTemplate, prompt: str, suffix: str, think: Think,
                        pictures: list[str]) -> Prompt:
    """The fill-in-the-middle prompt for generate with a `suffix`."""
    text = await asyncio.to_thread(template.render_insert, prompt, suffix, think)
    return Prompt(text, pictures)
