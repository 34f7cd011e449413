"""How a request's answer is read and constrained: thinking, tool calls, grammars.

The model's template says how it writes tool calls and thoughts: a Go TEMPLATE in
rendered mode (its `{{ if .ToolCalls }}` block, the text around `.Thinking`), the GGUF's
Jinja template in native mode (the tags it mentions). From that and the request
(`tools`, `tool_choice`, `think`, `grammar`) this module builds the parser that splits
the output and the grammar, if any, that constrains decoding. Both prompt modes go
through `/completion` and these same parsers, rather than llama-server's OpenAI
endpoint, so truncation, options, streaming and metrics stay one code path. A model
whose config names a built-in output parser (`harmony`) is read with that instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pasture.errors import BadRequestError
from pasture.prompt import grammars
from pasture.prompt.harmony import HarmonyParser
from pasture.prompt.render import PromptTemplate, Think
from pasture.prompt.reply import OutputParser, ReplyParser
from pasture.prompt.thinking import (
    ThinkingParser,
    go_template_tags,
    jinja_template_tags,
    opens_thought,
)
from pasture.prompt.tools import (
    ToolCallFormat,
    ToolCallParser,
    ToolChoice,
    go_template_format,
    jinja_template_format,
)
from pasture.server.rendering import model_template
from pasture.store.model import LocalModel
from pasture.store.show import model_gguf


@dataclass
class ReplyPlan:
    """What `completion.generate` needs to read and constrain one answer: `fmt` is the
    request's `format` left for the engine, None once `grammar` enforces it after a
    thought."""

    parser: OutputParser | None = None
    grammar: str | grammars.Constrained | None = None
    fmt: str | dict[str, Any] | None = None


@dataclass
class TemplateFormats:
    """The tool-call format and thinking tags a model's template teaches."""

    tools: ToolCallFormat
    thinking: tuple[str, str] | None

    @classmethod
    async def of(cls, model: LocalModel, template: PromptTemplate | None = None
                 ) -> TemplateFormats:
        template = template or model_template(model)
        if template is not None:
            return cls(go_template_format(template.template),
                       go_template_tags(template.template))
        info = await asyncio.to_thread(model_gguf, model)
        chat_template = info.chat_template or ""
        return cls(jinja_template_format(chat_template), jinja_template_tags(chat_template))


def offered_tools(tools: list[dict[str, Any]] | None, choice: ToolChoice
                  ) -> list[dict[str, Any]] | None:
    """The tools the template sees: none at all with `tool_choice: none`."""
    return None if choice.mode == "none" else tools


async def plan_reply(model: LocalModel, prompt: str, *, capabilities: list[str], think: Think,
                     tools: list[dict[str, Any]] | None = None,
                     choice: ToolChoice | None = None, grammar: str | None = None,
                     fmt: str | dict[str, Any] | None = None,
                     template: PromptTemplate | None = None) -> ReplyPlan:
    """The parser and grammar for an answer to `prompt` (already rendered).

    A forced tool call or a `format` leaves the model room to think first, in its own
    tags, when thinking is on or the prompt opened the thought (`grammars.Thought`).
    """
    choice = choice or ToolChoice()
    tools = offered_tools(tools, choice)
    wants_thinking = "thinking" in capabilities
    if model.config.parser == "harmony" and wants_thinking:  # not in raw mode (no capabilities)
        if choice.forced:
            raise BadRequestError("tool_choice cannot force a call on a harmony model")
        return ReplyPlan(HarmonyParser(tools, think.enabled, prompt=prompt), grammar, fmt)
    if not tools and not wants_thinking and not choice.forced:
        return ReplyPlan(grammar=grammar, fmt=fmt)
    formats = await TemplateFormats.of(model, template)
    thinking, thought = None, None
    if wants_thinking and formats.thinking is not None:
        thinking = ThinkingParser(*formats.thinking, prompt=prompt)
        opened = opens_thought(prompt, formats.thinking[0])
        if think.enabled or opened:
            thought = grammars.Thought(*formats.thinking, opened=opened)
    tool_parser = ToolCallParser(formats.tools, tools) if tools else None
    constraint: str | grammars.Constrained | None = grammar
    if choice.forced:
        if grammar is not None:
            raise BadRequestError("grammar cannot be combined with a forced tool_choice")
        constraint = grammars.tool_call_grammar(formats.tools, tools or [], choice, thought)
    elif thought is not None and grammar is None:
        schema = grammars.format_schema(fmt)
        if schema is not None:
            constraint, fmt = grammars.format_grammar(schema, thought), None
    parser = None
    if thinking is not None or tool_parser is not None:
        parser = ReplyParser(thinking, think.enabled, tool_parser)
    return ReplyPlan(parser, constraint, fmt)
