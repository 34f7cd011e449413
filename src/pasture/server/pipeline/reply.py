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
from pasture.runner.base import Runner
from pasture.server.pipeline.model import ResolvedModel
from pasture.server.pipeline.turn import Constraint


@dataclass
class ReplyPlan:
    """How one answer is read (`parser`) and constrained: `grammar` is one Pasture
    composed (a forced call, or a `format` after room for a thought) or the user's, and
    `schema` the request's `format` left to the engine."""

    parser: OutputParser | None = None
    grammar: str | grammars.Constrained | None = None
    schema: dict[str, Any] | None = None

    def engine_constraint(self, runner: Runner) -> tuple[dict[str, Any] | None, str | None]:
        """The JSON schema and grammar for the engine, written for the runner's build:
        Lark where it has llguidance, GBNF where it does not (which may refuse a schema
        keyword GBNF cannot enforce, or a user's Lark grammar)."""
        if self.composed is not None:
            return None, self.composed.lark() if runner.llguidance else self.composed.gbnf()
        if self.grammar is not None and not runner.llguidance \
                and grammars.is_lark(self.grammar):
            raise BadRequestError(f"invalid grammar: this model runs on engine build "
                                  f"'{runner.engine}', built without llguidance: write the "
                                  "grammar in GBNF")
        return (None, self.grammar) if self.grammar is not None else (self.schema, None)

    @property
    def composed(self) -> grammars.Constrained | None:
        """The grammar Pasture composed (written per engine build), if any."""
        return self.grammar if isinstance(self.grammar, grammars.Constrained) else None

    @property
    def preserved_tokens(self) -> tuple[str, ...]:
        """Tags the parser reads that may be control tokens (shown as text, not hidden)."""
        return tuple(self.parser.markers) if self.parser is not None else ()


@dataclass
class TemplateFormats:
    """The tool-call format and thinking tags a model's template teaches."""

    tools: ToolCallFormat
    thinking: tuple[str, str] | None

    @classmethod
    def of(cls, model: ResolvedModel, template: PromptTemplate | None) -> TemplateFormats:
        if template is not None:
            return cls(go_template_format(template.template),
                       go_template_tags(template.template))
        chat_template = model.info.chat_template or ""
        return cls(jinja_template_format(chat_template), jinja_template_tags(chat_template))


def offered_tools(tools: list[dict[str, Any]] | None, choice: ToolChoice
                  ) -> list[dict[str, Any]] | None:
    """The tools the template sees: none at all with `tool_choice: none`."""
    return None if choice.mode == "none" else tools


def plan_reply(model: ResolvedModel, template: PromptTemplate | None, prompt: str, *,
               capabilities: tuple[str, ...], think: Think, constraint: Constraint,
               tools: list[dict[str, Any]] | None = None,
               choice: ToolChoice | None = None) -> ReplyPlan:
    """The parser and grammar for an answer to `prompt` (already rendered), for a model
    prompted through `template` (None: its GGUF template). Compiles grammars: run it off
    the loop.

    A forced tool call or a `format` leaves the model room to think first, in its own
    tags, when thinking is on or the prompt opened the thought (`grammars.Thought`).
    """
    choice = choice or ToolChoice()
    tools = offered_tools(tools, choice)
    grammar, schema = constraint.grammar, constraint.schema
    wants_thinking = "thinking" in capabilities
    if model.local.config.parser == "harmony" and wants_thinking:  # not raw (no capabilities)
        if choice.forced:
            raise BadRequestError("tool_choice cannot force a call on a harmony model")
        return ReplyPlan(HarmonyParser(tools, think.enabled, prompt=prompt), grammar, schema)
    if not tools and not wants_thinking and not choice.forced:
        return ReplyPlan(grammar=grammar, schema=schema)
    formats = TemplateFormats.of(model, template)
    thinking, thought = None, None
    if wants_thinking and formats.thinking is not None:
        thinking = ThinkingParser(*formats.thinking, prompt=prompt)
        opened = opens_thought(prompt, formats.thinking[0])
        if think.enabled or opened:
            thought = grammars.Thought(*formats.thinking, opened=opened)
    tool_parser = ToolCallParser(formats.tools, tools) if tools else None
    composed: str | grammars.Constrained | None = grammar
    if choice.forced:
        composed = grammars.tool_call_grammar(formats.tools, tools or [], choice, thought)
    elif thought is not None and grammar is None and schema is not None:
        composed, schema = grammars.format_grammar(schema, thought), None
    parser = None
    if thinking is not None or tool_parser is not None:
        parser = ReplyParser(thinking, think.enabled, tool_parser)
    return ReplyPlan(parser, composed, schema)
