"""Streaming one chat answer to the terminal: thinking, word wrap, stats, Ctrl+C.

Shared by `pasture run PROMPT` (one shot) and the interactive REPL, which keeps the
conversation in `Session.messages` between answers. Messages are kept as they go on the
wire (`{"role": ..., "content": ...}`) and sent through the light client, so a one-shot
`pasture run` imports neither httpx nor the pydantic wire types.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from pasture.cli.render import stats, text_writer
from pasture.client.light import LightClient

Json = dict[str, Any]

_DIM, _RESET = "\x1b[2m", "\x1b[0m"


@dataclass
class Session:
    """What one `pasture run` keeps between turns; the REPL's `/set` commands change it."""

    model: str
    messages: list[Json] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    format: str | None = None
    keep_alive: str | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False
    word_wrap: bool = True

    def request_options(self) -> dict[str, Any] | None:
        return dict(self.options) or None


class _ThinkingPrinter:
    """Frames the model's reasoning as Ollama does: `Thinking...` … `...done thinking.`"""

    def __init__(self, out: TextIO, hidden: bool) -> None:
        self.out = out
        self.hidden = hidden
        self.open = False
        self.colour = out.isatty()

    def write(self, text: str) -> None:
        if self.hidden or not text:
            return
        if not self.open:
            self.out.write(("Thinking...\n" + _DIM) if self.colour else "Thinking...\n")
            self.open = True
        self.out.write(text)
        self.out.flush()

    def close(self) -> None:
        if self.open:
            self.out.write((_RESET if self.colour else "") + "\n...done thinking.\n\n")
            self.open = False


def message(role: str, content: str, thinking: str | None = None) -> Json:
    """A chat message as sent on the wire (no `thinking` key when there was none)."""
    return {"role": role, "content": content, **({"thinking": thinking} if thinking else {})}


def stream_answer(
    client: LightClient,
    session: Session,
    messages: list[Json],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> Json:
    """Send `messages`, print the answer as it streams, return the assistant's message.

    Ctrl+C raises KeyboardInterrupt after the stream is closed, which tells the server
    to stop generating; the caller decides whether that ends the program.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    writer = text_writer(session.word_wrap, out)
    thinking = _ThinkingPrinter(out, session.hide_thinking)
    content: list[str] = []
    thought: list[str] = []
    final: Json | None = None
    stream = client.chat_stream(
        session.model,
        messages,
        format=session.format,
        options=session.request_options(),
        keep_alive=session.keep_alive,
        think=session.think,
    )
    try:
        for part in stream:
            said = part.get("message") or {}
            if said.get("thinking"):
                thought.append(said["thinking"])
                thinking.write(said["thinking"])
            if said.get("content"):
                thinking.close()
                content.append(said["content"])
                writer.write(said["content"])
            if part.get("done"):
                final = part
    finally:
        stream.close()
        thinking.close()
        writer.flush()
    text = "".join(content)
    if text and not text.endswith("\n"):
        out.write("\n")
        out.flush()
    if session.verbose and final is not None:
        err.write(stats(final))
        err.flush()
    return message("assistant", text, "".join(thought) or None)
