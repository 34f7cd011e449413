"""From chat messages to the prompt text a model sees, for every API family.

The compatibility layers (OpenAI, Anthropic) translate their messages into Ollama's
`{"role", "content"}` dicts and build the prompt here, the same way `/api/chat` does:
the model's SYSTEM prompt (unless the conversation starts with its own), then the
Modelfile's MESSAGEs, then the request's turns, rendered in the model's prompt mode
(its Go TEMPLATE, or the GGUF's own template) by `server.rendering`.
"""

from __future__ import annotations

from typing import Any

from pasture.prompt.render import Think
from pasture.runner.base import Runner
from pasture.server.rendering import Prompt, build_chat_prompt
from pasture.store.model import LocalModel


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


async def chat_prompt(runner: Runner, model: LocalModel, messages: list[dict[str, Any]],
                      tools: list[dict[str, Any]] | None, think: Think) -> Prompt:
    """The prompt for a chat turn, history truncated to the context as `/api/chat` does,
    with the images its tags refer to."""
    return await build_chat_prompt(model, conversation(model, messages), tools, think, runner)
