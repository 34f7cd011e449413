"""OpenAI's harmony output format (gpt-oss), split into thinking, content and tool calls.

A model whose config says `parser: harmony` writes messages rather than plain text:

    <|channel|>analysis<|message|>thinking…<|end|>
    <|start|>assistant<|channel|>final<|message|>answer<|return|>
    <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json
        <|message|>{"city": "Paris"}<|call|>

The prompt ends with `<|start|>assistant`, so the output begins inside a message header.
As Ollama's `harmony/harmonyparser.go` does, the `analysis` channel becomes `thinking`,
a message addressed `to=functions.NAME` (on `analysis` or `commentary`) a tool call whose
body is its JSON arguments, and everything else `content`. `<|return|>` and `<|call|>`
end a message as `<|end|>` does (they stop generation, so often never arrive: `finish`
completes the last message). Tags split across streamed chunks are held back until they
can be told apart from text. Ollama's renderer renames tools to TypeScript identifiers
(`harmony_name`); a call to a renamed tool is mapped back to the name the request gave.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pasture.prompt.reply import Split
from pasture.prompt.tools import new_call_id, partial_suffix, tool_names

START, MESSAGE, CHANNEL, CONSTRAIN = "<|start|>", "<|message|>", "<|channel|>", "<|constrain|>"
ENDS = ("<|end|>", "<|return|>", "<|call|>")
_BUILT_INS = ("browser.open", "browser.search", "browser.find", "python")


@dataclass
class Header:
    """A message's header: who writes it, on which channel, to whom."""

    role: str = ""
    channel: str = ""
    recipient: str = ""


def parse_header(raw: str) -> Header:
    """Ollama's reading: `<|channel|>NAME` anywhere, the first word the role (or
    `to=RECIPIENT`, making the role `tool`), else the second word `to=RECIPIENT`."""
    header = Header()
    raw = raw.replace(CONSTRAIN, " " + CONSTRAIN, 1).strip()
    at = raw.find(CHANNEL)
    if at >= 0:
        after = raw[at + len(CHANNEL):]
        name = after.split(maxsplit=1)[0] if after.strip() and not after[0].isspace() else ""
        header.channel = name
        raw = (raw[:at] + after[len(name):]).strip()
    words = raw.split()
    if not words:
        return header
    if words[0].startswith("to="):
        header.role, header.recipient = "tool", words[0][3:]
    else:
        header.role = words[0]
        if len(words) > 1 and words[1].startswith("to="):
            header.recipient = words[1][3:]
    return header


def _valid_chars(name: str) -> str:
    """A tool name as a TypeScript-ish identifier (Ollama's `convertToValidChars`)."""
    kept = "".join("_" if c in " -." else c for c in name
                   if c in " -._$" or c.isalpha() or c.isdecimal())
    if not kept:
        return "unnamed"
    return "_" + kept if kept[0].isdecimal() else kept


def harmony_names(names: list[str]) -> dict[str, str]:
    """Each tool's harmony name → its own name, duplicates numbered `_2`, `_3`, … (Ollama's
    `FunctionNameMap`; built-in tools keep their names)."""
    found: dict[str, str] = {}
    for name in names:
        base = name if name in _BUILT_INS else _valid_chars(name)
        candidate, count = base, 2
        while candidate in found:
            candidate, count = f"{base}_{count}", count + 1
        found[candidate] = name
    return found


class HarmonyParser:
    """Split streamed harmony output into a `Split` per step, as `ReplyParser` does.

        parser = HarmonyParser(tools, keep_thinking=True)
        split = parser.feed(chunk)
        split = parser.finish()
    """

    _BETWEEN, _HEADER, _BODY = range(3)

    def __init__(self, tools: list[dict[str, Any]] | None = None, keep_thinking: bool = True,
                 *, prompt: str = "") -> None:
        names = tool_names(tools)
        self.names = {**harmony_names(names), **{name: name for name in names}}
        self.keep_thinking = keep_thinking
        self.state, self.buffer = self._HEADER, ""  # the prompt opened the message
        self.header = Header()
        self.call = ""  # the body of a tool call so far
        self.count = 0  # calls emitted so far: the next call's index
        opened = prompt.rfind(START)
        if prompt.endswith(MESSAGE) and opened >= 0:  # a prefilled message: start in its body
            self.header = parse_header(prompt[opened + len(START):-len(MESSAGE)])
            self.state = self._BODY

    markers = (START, CHANNEL, MESSAGE, CONSTRAIN, *ENDS)  # control tokens in gpt-oss

    def feed(self, text: str) -> Split:
        self.buffer += text
        split = Split()
        while self._step(split):
            pass
        return self._kept(split)

    def finish(self) -> Split:
        """The last message, ended: its held text and its tool call, if it was one."""
        split = Split()
        if self.state == self._BODY:
            self._emit(split, self.buffer)
            self._end(split)
        self.buffer = ""
        return self._kept(split)

    def _kept(self, split: Split) -> Split:
        return split if self.keep_thinking else Split(split.content, "", split.tool_calls)

    def _step(self, split: Split) -> bool:
        """Consume what the buffer settles; True while the state changed (go on)."""
        if self.state == self._BETWEEN:  # text between messages is dropped, as by Ollama
            at = self.buffer.find(START)
            if at < 0:
                self.buffer = self.buffer[len(self.buffer) - partial_suffix(self.buffer, START):]
                return False
            self.buffer, self.state = self.buffer[at + len(START):], self._HEADER
            return True
        if self.state == self._HEADER:
            at = self.buffer.find(MESSAGE)
            if at < 0:
                return False
            raw = self.buffer[:at]
            self.header = parse_header(raw[raw.rfind(START) + len(START):] if START in raw
                                       else raw)  # a model restating `<|start|>` itself
            self.buffer, self.state = self.buffer[at + len(MESSAGE):], self._BODY
            return True
        ends = [(at, tag) for tag in ENDS if (at := self.buffer.find(tag)) >= 0]
        if ends:
            at, tag = min(ends)
            self._emit(split, self.buffer[:at])
            self.buffer = self.buffer[at + len(tag):]
            self._end(split)
            return True
        keep = max(partial_suffix(self.buffer, tag) for tag in ENDS)
        self._emit(split, self.buffer[:len(self.buffer) - keep])
        self.buffer = self.buffer[len(self.buffer) - keep:]
        return False

    def _emit(self, split: Split, text: str) -> None:
        """Body text of the current message, to where its channel says."""
        if self._is_call():
            self.call += text
        elif self.header.channel == "analysis":
            split.thinking += text
        else:
            split.content += text

    def _is_call(self) -> bool:
        return bool(self.header.recipient) and self.header.channel in ("analysis", "commentary")

    def _end(self, split: Split) -> None:
        """Close the current message: a tool call is complete now."""
        if self._is_call():
            name = self.header.recipient.removeprefix("functions.")
            body, self.call = self.call, ""
            try:
                arguments = json.loads(body) if body.strip() else {}
            except ValueError:
                arguments = None
            if isinstance(arguments, dict):
                split.tool_calls.append({"id": new_call_id(), "function": {
                    "index": self.count, "name": self.names.get(name, name),
                    "arguments": arguments}})
                self.count += 1
            else:  # not a call after all: shown as it came rather than lost
                split.content += body
        self.state, self.header = self._BETWEEN, Header()
