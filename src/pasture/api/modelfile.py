"""Modelfile parser and writer, following Ollama's `parser/parser.go` state machine.

Syntax: `INSTRUCTION value` per line, instructions case-insensitive, `#` comments, values
bare or wrapped in `"…"` / `\"\"\"…\"\"\"` to span lines. As in Ollama there are no escape
sequences: a quoted value ends at the first line end where the text so far closes the
quote, and control characters other than tab and line breaks are dropped.

Where Ollama's parser is fragile we are a little kinder, never stricter: line numbers
count a CRLF once and name the line of the offending character, and extra spaces after
`PARAMETER` or `MESSAGE` are skipped. Values are kept as raw strings; typing parameters
is the options module's job.

One addition, for values Ollama's grammar cannot carry (a line ending in `\"\"\"` inside
a multi-line value, characters other than tab and line breaks that are not printable):
a value written as `<<TAG` (`TAG` upper-case letters, digits and `_`) is every character
of the following lines, verbatim, up to a line that is exactly `TAG`::

    TEMPLATE <<EOF
    def f():
        \"\"\"docstring\"\"\"
    EOF

`show --modelfile` writes this form only for such values. Ollama would read `<<TAG` as a
one-line value and then fail on the `TAG` line, so no Modelfile Ollama accepts changes
meaning unless a line `TAG` sits inside a later quoted value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pasture.errors import ModelfileError

COMMANDS = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)
ROLES = ("system", "user", "assistant")
INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", '
    '"renderer", "parser", "parameter", "message", or "requires"'
)
INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'

_NIL, _NAME, _VALUE, _PARAMETER, _MESSAGE, _COMMENT = range(6)
_SPACE = " \t"
_NEWLINE = "\r\n"
_LINE_END = re.compile(r"[\r\n]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEREDOC = re.compile(r"<<([A-Z][A-Z0-9_]*)")


@dataclass(frozen=True)
class Command:
    """One instruction: `name` is the lower-cased instruction, `key` the parameter or role."""

    name: str
    args: str
    line: int = 0
    key: str = ""

    def __str__(self) -> str:
        if self.name == "parameter":
            return f"PARAMETER {self.key} {quote(self.args)}"
        if self.name == "message":
            return f"MESSAGE {self.key} {quote(self.args)}"
        return f"{self.name.upper()} {quote(self.args)}"


@dataclass
class Modelfile:
    """Parsed commands in file order, with helpers for the parts `create` needs."""

    commands: list[Command] = field(default_factory=list)

    def _args(self, name: str) -> list[str]:
        return [c.args for c in self.commands if c.name == name]

    def _last(self, name: str) -> str | None:
        values = self._args(name)
        return values[-1] if values else None

    @property
    def froms(self) -> list[str]:
        """Every FROM value; several FROM files merge (e.g. model plus projector)."""
        return self._args("from")

    @property
    def from_(self) -> str | None:
        values = self.froms
        return values[0] if values else None

    @property
    def parameters(self) -> list[tuple[str, str, int]]:
        """(name, raw value, line) per PARAMETER, in order; repeated `stop`s all kept."""
        return [(c.key, c.args, c.line) for c in self.commands if c.name == "parameter"]

    @property
    def messages(self) -> list[tuple[str, str]]:
        return [(c.key, c.args) for c in self.commands if c.name == "message"]

    @property
    def system(self) -> str | None:
        return self._last("system")

    @property
    def template(self) -> str | None:
        return self._last("template")

    @property
    def licenses(self) -> list[str]:
        return self._args("license")

    @property
    def adapters(self) -> list[str]:
        return self._args("adapter")

    @property
    def draft(self) -> str | None:
        return self._last("draft")

    @property
    def requires(self) -> str | None:
        return self._last("requires")

    @property
    def renderer(self) -> str | None:
        return self._last("renderer")

    @property
    def parser(self) -> str | None:
        return self._last("parser")

    def __str__(self) -> str:
        return render(self)


class _Value:
    """A value being read, kept as parts so each line-end check is O(1), not O(length).

    Parts are runs of text between line breaks (spaces and tabs included) and the line
    breaks themselves.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.first = -1  # index of the first part with non-space text
        self.last = -1  # index of the last part with non-space text
        self.lead = 0  # length of the leading space
        self.end = 0  # length up to the last non-space character

    def add(self, part: str) -> None:
        if not part:
            return
        self.parts.append(part)
        stripped = part.rstrip()
        if stripped:
            if self.first < 0:
                self.first = len(self.parts) - 1
                self.lead = self.length + len(part) - len(part.lstrip())
            self.last = len(self.parts) - 1
            self.end = self.length + len(stripped)
        self.length += len(part)

    def closed(self) -> bool:
        """Ollama's `unquote` succeeds: no quote opened, or the opened one is closed."""
        if self.first < 0:
            return True
        size = self.end - self.lead
        head = "".join(self.parts[self.first : self.first + 3]).lstrip()[:3]
        tail = "".join(self.parts[max(self.first, self.last - 2) : self.last + 1]).rstrip()
        if size >= 3 and head == '"""':
            return size >= 6 and tail.endswith('"""')
        if head[0] == '"':
            return size >= 2 and tail.endswith('"')
        return True

    def heredoc_tag(self) -> str | None:
        """`TAG` when the value so far is a heredoc opener `<<TAG` on its own line."""
        if len(self.parts) != 1:  # empty, or past the command's own line
            return None
        match = _HEREDOC.fullmatch(self.parts[0].strip())
        return match[1] if match else None

    def text(self) -> str:
        s = "".join(self.parts).strip()
        if s.startswith('"""'):
            return s[3:-3]
        if s.startswith('"'):
            return s[1:-1]
        return s


def _printable(text: str) -> str:
    """Drop characters Go's strconv.IsPrint rejects (controls, non-ASCII spaces), not tabs."""
    if text.isprintable():
        return text
    return "".join(c for c in text if c.isprintable() or c == "\t")


def _error(line: int, message: str) -> ModelfileError:
    return ModelfileError(f"(line {line}): {message}")


def parse(text: str | bytes) -> Modelfile:
    """Parse a Modelfile; ModelfileError naming the line on any problem.

    >>> parse("FROM llama3\\nPARAMETER temperature 0.2").parameters
    [('temperature', '0.2', 2)]
    """
    if isinstance(text, bytes):
        text = _decode(text)
    if text.startswith("\ufeff"):
        text = text[1:]
    commands: list[Command] = []
    state = _NIL
    word: list[str] = []
    value = _Value()
    name = key = ""
    line = cmd_line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if state in (_VALUE, _COMMENT) and ch not in _NEWLINE:
            match = _LINE_END.search(text, i)
            end = match.start() if match else n
            if state == _VALUE:
                value.add(_printable(text[i:end]))
            i = end
            continue
        i += 1
        newline = ch == "\n" or (ch == "\r" and (i >= n or text[i] != "\n"))

        if state == _NIL:
            if ch == "#":
                state = _COMMENT
            elif ch not in _SPACE and ch not in _NEWLINE:
                state, word, cmd_line = _NAME, [ch] if ch.isprintable() else [], line
        elif state == _NAME:
            if ch.isascii() and ch.isalpha():
                word.append(ch)
            elif ch in _SPACE:
                name = "".join(word).lower()
                if name not in COMMANDS:
                    raise _error(line, INVALID_COMMAND)
                state, word, key = _VALUE, [], ""
                if name == "parameter":
                    state = _PARAMETER
                elif name == "message":
                    state = _MESSAGE
                value = _Value()
            else:
                raise _error(line, INVALID_COMMAND)
        elif state == _PARAMETER:
            if ch.isascii() and (ch.isalnum() or ch == "_"):
                word.append(ch)
            elif ch in _SPACE:
                if word:
                    state, key, word = _VALUE, "".join(word), []
            else:
                raise _error(line, "invalid or missing parameter name")
        elif state == _MESSAGE:
            if ch.isascii() and ch.isalpha():
                word.append(ch)
            elif ch in _SPACE and not word:
                pass
            else:
                role = "".join(word)
                if ch not in _SPACE or role not in ROLES:
                    raise _error(line, INVALID_ROLE)
                state, key, word = _VALUE, role, []
        elif state == _VALUE and (tag := value.heredoc_tag()):  # ch is a line break
            opener = i - 1
            body, i = _heredoc(text, opener, tag, cmd_line)
            commands.append(Command(name, body, cmd_line, key))
            line += len(_LINE_BREAK.findall(text, opener, i))
            state, newline = _NIL, False
        elif state == _VALUE:  # ch is a line break
            if not value.closed():
                value.add(ch)
            else:
                commands.append(Command(name, value.text(), cmd_line, key))
                state = _NIL
        elif state == _COMMENT:
            state = _NIL
        if newline:
            line += 1

    if state == _VALUE:
        if tag := value.heredoc_tag():
            raise _unterminated(tag, cmd_line)
        if not value.closed():
            raise _error(cmd_line, "unexpected EOF: unterminated quoted value")
        commands.append(Command(name, value.text(), cmd_line, key))
    elif state not in (_NIL, _COMMENT):
        raise _error(line, "unexpected EOF")
    if not any(c.name == "from" for c in commands):
        raise ModelfileError("no FROM line")
    return Modelfile(commands)


def _heredoc(text: str, start: int, tag: str, line: int) -> tuple[str, int]:
    """The `<<TAG` value whose opening line ends at `start`, and where its `TAG` ends.

    The line break after the opener and the one before `TAG` are not part of the value.
    """
    match = _LINE_BREAK.match(text, start)
    assert match is not None  # the caller stands on a line break
    begin = match.end()
    if text.startswith(tag, begin) and _ends_line(text, begin + len(tag)):
        return "", begin + len(tag)
    closing = re.compile(rf"(?:\r\n|\r|\n){tag}(?=[\r\n]|\Z)")
    found = closing.search(text, begin)
    if found is None:
        raise _unterminated(tag, line)
    return text[begin:found.start()], found.end()


def _unterminated(tag: str, line: int) -> ModelfileError:
    return _error(line, f"unexpected EOF: no line {tag} ends the <<{tag} value")


def _ends_line(text: str, pos: int) -> bool:
    return pos == len(text) or text[pos] in _NEWLINE


def _decode(data: bytes) -> str:
    """UTF-8 (BOM optional) or BOM-marked UTF-16, as Go's unicode.BOMOverride."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _parses_back(candidate: str, value: str) -> bool:
    try:
        mf = parse(f"FROM x\nSYSTEM {candidate}\n")
    except ModelfileError:
        return False
    return mf.commands[-1].args == value


def quote(value: str) -> str:
    """The first spelling of `value` that parses back to it: bare, `"…"`, `\"\"\"…\"\"\"`,
    and for values Ollama's grammar cannot carry, Pasture's `<<TAG` form."""
    bare = [value] if value and "\n" not in value and "\r" not in value else []
    for candidate in [*bare, f'"{value}"', f'"""{value}"""']:
        if _parses_back(candidate, value):
            return candidate
    lines = set(_LINE_BREAK.split(value))
    tag = next(t for t in ("EOF", *(f"EOF{n}" for n in range(len(lines)))) if t not in lines)
    # The break before TAG is not part of the value: a value ending in CR takes CR, so
    # the two do not read as one CRLF.
    end = "\r" if value.endswith("\r") else "\n"
    return f"<<{tag}\n{value}{end}{tag}"


def render(modelfile: Modelfile) -> str:
    """A Modelfile text that parses back to the same commands (line numbers aside)."""
    return "".join(f"{command}\n" for command in modelfile.commands)
