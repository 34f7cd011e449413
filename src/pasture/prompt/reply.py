"""A model's raw output, split into what Ollama answers with: thinking, content, tool calls.

Thinking comes first in the output, so its parser sees the raw text and the tool-call
parser sees only the content after it. With `think: false` on a thinking model the
thought is still parsed out, and dropped, in case the model thinks anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pasture.prompt.thinking import ThinkingParser
from pasture.prompt.tools import ToolCallParser


@dataclass
class Split:
    """One step of parsed output."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.content or self.thinking or self.tool_calls)


class OutputParser(Protocol):
    """What a generation's output is read with: `ReplyParser`, or the parser of a model's
    own output format (`harmony.HarmonyParser`)."""

    def feed(self, text: str) -> Split: ...

    def finish(self) -> Split: ...

    @property
    def markers(self) -> tuple[str, ...]:
        """The tags the parser looks for. The engine prints a control token only when
        asked to, so these are sent as `preserved_tokens`."""
        ...


class ReplyParser:
    """Feed raw text as it streams; `finish()` once it has ended."""

    def __init__(self, thinking: ThinkingParser | None = None, keep_thinking: bool = True,
                 tools: ToolCallParser | None = None) -> None:
        self.thinking = thinking
        self.keep_thinking = keep_thinking
        self.tools = tools

    @property
    def markers(self) -> tuple[str, ...]:
        tags = (self.thinking.opening, self.thinking.closing) if self.thinking else ()
        if self.tools is not None and not self.tools.format.bare:
            tags += (self.tools.format.prefix, self.tools.format.suffix)
        return tuple(tag for tag in tags if tag)

    def feed(self, text: str) -> Split:
        thought, content = self.thinking.feed(text) if self.thinking else ("", text)
        return self._content(thought, content, final=False)

    def finish(self) -> Split:
        thought, content = self.thinking.finish() if self.thinking else ("", "")
        return self._content(thought, content, final=True)

    def _content(self, thought: str, content: str, final: bool) -> Split:
        calls: list[dict[str, Any]] = []
        if self.tools is not None:
            content, calls = self.tools.feed(content) if content else ("", [])
            if final:
                more, last = self.tools.finish()
                content, calls = content + more, calls + last
        return Split(content, thought if self.keep_thinking else "", calls)
