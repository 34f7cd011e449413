"""Which prompt mode a request uses, and the prompt it produces.

*Rendered* mode: the model has a Go TEMPLATE (from its Modelfile or a pulled Ollama
model), or generate passes `template`; our interpreter renders it into a raw prompt
and no runner is needed to build it. *Native* mode: the engine applies the GGUF's own
chat template (`runner.apply_template`). Both truncate chat history to the context the
same way (`prompt.render.truncate_history`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pasture.errors import BadRequestError
from pasture.prompt.render import (
    IMAGE_TOKENS,
    PromptTemplate,
    Think,
    chat_prompt,
    parse_template_cached,
    tag_images,
    truncate_history,
)
from pasture.runner.base import Runner
from pasture.server import images
from pasture.store.model import LocalModel


@dataclass
class Prompt:
    """A prompt ready for the engine, and the images (base64) its `[img-N]` tags refer
    to: tag N is `images[N]`."""

    text: str
    images: list[str] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return len(self.images)


def model_template(model: LocalModel) -> PromptTemplate | None:
    """The model's Go TEMPLATE, parsed (cached); None when the GGUF's own template rules."""
    return parse_template_cached(model.template) if model.template else None


def think_for(value: bool | str | None, capabilities: list[str], model_name: str) -> Think:
    """Ollama's `think` rules: on by default for thinking models, refused for the others."""
    if "thinking" in capabilities:
        return Think.of(True if value is None else value)
    if value is not None and Think.of(value).enabled:
        raise BadRequestError(f'"{model_name}" does not support thinking')
    return Think.of(value)


def check_capabilities(model_name: str, capabilities: list[str], *, tools: bool = False,
                       suffix: bool = False, images: bool = False) -> None:
    """400 `"<model>" does not support tools|insert|vision` for what the model cannot do."""
    if tools and "tools" not in capabilities:
        raise BadRequestError(f'"{model_name}" does not support tools')
    if suffix and "insert" not in capabilities:
        raise BadRequestError(f'"{model_name}" does not support insert')
    if images and "vision" not in capabilities:
        raise BadRequestError(f'"{model_name}" does not support vision')


async def build_chat_prompt(model: LocalModel, messages: list[dict[str, Any]],
                            tools: list[dict[str, Any]] | None, think: Think,
                            runner: Runner | None, truncate: bool = True,
                            template: PromptTemplate | None = None) -> Prompt:
    """The prompt for a conversation, in the model's mode.

    `runner` may be None in rendered mode (debug rendering): the history is then not
    truncated, since counting tokens needs the engine.
    """
    template = template or model_template(model)
    num_ctx = runner.spec.num_ctx if runner is not None else None
    if template is not None:
        async def count(text: str) -> int:
            assert runner is not None
            return len(await runner.tokenize(text))

        rendered = await chat_prompt(
            template, messages, tools, think, num_ctx if truncate else None,
            count if runner is not None else None, IMAGE_TOKENS)
        return Prompt(rendered.prompt, _last_images(messages, rendered.image_count))
    if runner is None:
        raise BadRequestError("native prompt rendering needs the model loaded")

    async def apply(kept: list[dict[str, Any]]) -> str:
        return await runner.apply_template(native_messages(kept), tools or None,
                                           native_template_kwargs(think))

    start, kept, prompt = 0, messages, None
    if truncate and num_ctx is not None:
        async def count_native(text: str) -> int:
            return len(await runner.tokenize(text))

        kept, start, prompt = await truncate_history(messages, apply, count_native, num_ctx,
                                                     IMAGE_TOKENS)
    tagged, image_count = tag_images(messages, start)
    if messages and prompt is not None and not image_count:  # already rendered, no images
        return Prompt(prompt)
    system = kept[:len(kept) - (len(messages) - start)]
    return Prompt(await apply(system + tagged[start:]), _last_images(messages, image_count))


def _last_images(messages: list[dict[str, Any]], count: int) -> list[str]:
    """The images the prompt tagged: those of the messages kept after truncation, which
    are the conversation's last `count` images."""
    return images.of_messages(messages)[-count:] if count else []


def native_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ollama's messages as the engine's Jinja templates take them (OpenAI's shape): tool
    calls typed, with arguments as a JSON string; `tool_name` as `name`; prior thinking
    as `reasoning_content`."""
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


def native_template_kwargs(think: Think) -> dict[str, Any]:
    """`think` as the variables thinking-aware Jinja templates read."""
    kwargs: dict[str, Any] = {"enable_thinking": think.enabled}
    if think.level in ("low", "medium", "high"):
        kwargs["reasoning_effort"] = think.level
    return kwargs
