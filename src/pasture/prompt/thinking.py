"""Thinking in a model's output: the part between its thinking tags, split from the answer.

A thinking model writes `<think> … </think>` (or whatever tags its template uses) before
its answer. As Ollama's generic parser does, the text inside the tags becomes `thinking`
and the rest `content`, whitespace around the tags trimmed, and a tag split across
streamed chunks is held back until it can be told apart from ordinary text. When the
prompt itself ends with the opening tag (a template that opens the thought for the
model), the output starts inside the thought.
"""

from __future__ import annotations

from pasture.prompt.gotemplate import Template
from pasture.prompt.render import thinking_tags
from pasture.prompt.tools import partial_suffix


def go_template_tags(template: Template) -> tuple[str, str] | None:
    """The thinking tags a Go template writes around `.Thinking`, if it has both."""
    opening, closing = thinking_tags(template)
    return (opening, closing) if opening and closing else None


def jinja_template_tags(chat_template: str) -> tuple[str, str] | None:
    """`<think>`/`</think>` when a GGUF Jinja template uses them (what Ollama looks for)."""
    return ("<think>", "</think>") if "<think>" in chat_template and "</think>" in \
        chat_template else None


def opens_thought(prompt: str, opening: str) -> bool:
    """Whether the prompt ends by opening the thought, leaving the model inside it."""
    return prompt.rstrip().endswith(opening)


class ThinkingParser:
    """Split streamed output into (thinking, content).

        parser = ThinkingParser("<think>", "</think>")
        thinking, content = parser.feed(chunk)
        thinking, content = parser.finish()
    """

    _OPENING, _THINKING, _AFTER, _CONTENT = range(4)

    def __init__(self, opening: str, closing: str, *, prompt: str = "") -> None:
        self.opening, self.closing = opening, closing
        self.state = self._THINKING if opens_thought(prompt, opening) else self._OPENING
        self.buffer = ""
        self.started = False  # some thinking text was given out (leading blanks trimmed)

    def feed(self, text: str) -> tuple[str, str]:
        self.buffer += text
        thinking, content = "", ""
        if self.state == self._OPENING:
            stripped = self.buffer.lstrip()
            if not stripped or (len(stripped) < len(self.opening)
                                and self.opening.startswith(stripped)):
                return "", ""  # maybe the opening tag, still arriving
            if stripped.startswith(self.opening):
                self.buffer = stripped[len(self.opening):]
                self.state = self._THINKING
            else:
                self.state = self._CONTENT
        if self.state == self._THINKING:
            thinking = self._think()
        if self.state == self._AFTER:
            self.buffer = self.buffer.lstrip()
            if self.buffer:
                self.state = self._CONTENT
        if self.state == self._CONTENT:
            content, self.buffer = self.buffer, ""
        return thinking, content

    def finish(self) -> tuple[str, str]:
        """What is held at the end: unfinished thinking stays thinking."""
        rest, self.buffer = self.buffer, ""
        if self.state == self._THINKING:
            return (rest if self.started else rest.lstrip()).rstrip(), ""
        return "", rest

    def _think(self) -> str:
        """Thinking that can be given out now; trailing blanks and a partial closing tag
        are held, since they may turn out to sit right before the closing tag."""
        if not self.started:
            self.buffer = self.buffer.lstrip()
        at = self.buffer.find(self.closing)
        if at >= 0:
            thinking = self.buffer[:at].rstrip()
            self.buffer = self.buffer[at + len(self.closing):]
            self.state = self._AFTER
        else:
            keep = partial_suffix(self.buffer, self.closing)
            body = self.buffer[:len(self.buffer) - keep]
            thinking = body.rstrip()
            self.buffer = body[len(thinking):] + self.buffer[len(body):]
        if thinking:
            self.started = True
        return thinking
