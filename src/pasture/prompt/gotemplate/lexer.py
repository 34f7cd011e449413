"""The lexer of Go's `text/template`: text, actions with trim markers, comments, tokens.

A port of `text/template/parse/lex.go`: `{{- ` trims the whitespace before it and ` -}}`
the whitespace after (the space is required, so `{{-3}}` is the number -3), comments
must touch their delimiters, and a lexing error becomes an `error` token that the
parser reports when it reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

_SPACE = " \t\r\n"
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "nil", "range",
             "template", "with"}


@dataclass
class Token:
    kind: str  # text, left, right, space, field, variable, ident, keyword, bool, number,
    pos: int  # char, string, rawstring, charconst, declare, assign, pipe, lparen,
    val: str  # rparen, eof, error


def _has_left_trim(text: str, at: int) -> bool:
    return text.startswith("-", at) and len(text) > at + 1 and text[at + 1] in _SPACE


def _at_right_delim(text: str, at: int) -> tuple[bool, bool]:
    if (len(text) > at + 1 and text[at] in _SPACE and text[at + 1] == "-"
            and text.startswith("}}", at + 2)):
        return True, True
    return text.startswith("}}", at), False


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class _Lexer:
    """Go's template lexer: text, `{{`/`}}` with trim markers, comments, action tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        try:
            self._lex()
        except _LexError as exc:
            self.tokens.append(Token("error", exc.pos, exc.message))
        return self.tokens

    def _lex(self) -> None:
        text, pos = self.text, 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                if pos < len(text):
                    self.tokens.append(Token("text", pos, text[pos:]))
                self.tokens.append(Token("eof", len(text), ""))
                return
            chunk = text[pos:start]
            after = start + 2
            trim = _has_left_trim(text, after)
            if trim:
                chunk = chunk.rstrip(_SPACE)
                after += 2
            if chunk:
                self.tokens.append(Token("text", pos, chunk))
            if text.startswith("/*", after):
                pos = self._comment(after)
                continue
            self.tokens.append(Token("left", start, "{{"))
            pos = self._action(after)

    def _comment(self, at: int) -> int:
        end = self.text.find("*/", at + 2)
        if end < 0:
            raise _LexError(at, "unclosed comment")
        at = end + 2
        delim, trim = _at_right_delim(self.text, at)
        if not delim:
            raise _LexError(at, "comment ends before closing delimiter")
        at += 4 if trim else 2
        return self._skip_space(at) if trim else at

    def _skip_space(self, at: int) -> int:
        while at < len(self.text) and self.text[at] in _SPACE:
            at += 1
        return at

    def _action(self, at: int) -> int:
        text, depth = self.text, 0
        emit = self.tokens.append
        while True:
            delim, trim = _at_right_delim(text, at)
            if delim:
                if depth:
                    raise _LexError(at, "unclosed left paren")
                if trim:
                    at += 2
                emit(Token("right", at, "}}"))
                at += 2
                return self._skip_space(at) if trim else at
            if at >= len(text):
                raise _LexError(at, "unclosed action")
            ch = text[at]
            if ch in _SPACE:
                end = self._skip_space(at)
                # " -}}": the space before a trim marker belongs to the delimiter
                if _at_right_delim(text, end - 1) == (True, True):
                    end -= 1
                if end > at:
                    emit(Token("space", at, text[at:end]))
                    at = end
                    continue
                at = end
                continue
            if ch == "=":
                emit(Token("assign", at, "="))
                at += 1
            elif ch == ":":
                if not text.startswith(":=", at):
                    raise _LexError(at, "expected :=")
                emit(Token("declare", at, ":="))
                at += 2
            elif ch == "|":
                emit(Token("pipe", at, "|"))
                at += 1
            elif ch == '"':
                at = self._quoted(at, '"', "string", "unterminated quoted string")
            elif ch == "'":
                at = self._quoted(at, "'", "charconst", "unterminated character constant")
            elif ch == "`":
                end = text.find("`", at + 1)
                if end < 0:
                    raise _LexError(at, "unterminated raw quoted string")
                emit(Token("rawstring", at, text[at:end + 1]))
                at = end + 1
            elif ch == "$":
                at = self._word(at, "variable")
            elif ch == "." and not (at + 1 < len(text) and text[at + 1].isdigit()):
                at = self._word(at, "field")
            elif ch in "+-." or ch.isdigit():
                at = self._number(at)
            elif _is_alnum(ch):
                at = self._word(at, "ident")
            elif ch == "(":
                emit(Token("lparen", at, "("))
                depth += 1
                at += 1
            elif ch == ")":
                emit(Token("rparen", at, ")"))
                depth -= 1
                if depth < 0:
                    raise _LexError(at, "unexpected right paren U+0029 ')'")
                at += 1
            elif ch.isascii() and ch.isprintable():
                emit(Token("char", at, ch))
                at += 1
            else:
                raise _LexError(at, f"unrecognized character in action: {_rune(ch)}")

    def _at_terminator(self, at: int) -> bool:
        if at >= len(self.text):
            return True
        ch = self.text[at]
        return ch in _SPACE or ch in ".,|:()" or ch == "}"

    def _word(self, at: int, kind: str) -> int:
        start = at
        if kind != "ident":
            at += 1  # the "." or "$"
        while at < len(self.text) and _is_alnum(self.text[at]):
            at += 1
        if not self._at_terminator(at):
            raise _LexError(at, f"bad character {_rune(self.text[at])}")
        word = self.text[start:at]
        if kind == "field" and word == ".":
            kind = "dot"
        elif kind == "ident" and word in _KEYWORDS:
            kind = "keyword"
        elif kind == "ident" and word in ("true", "false"):
            kind = "bool"
        self.tokens.append(Token(kind, start, word))
        return at

    def _quoted(self, at: int, quote: str, kind: str, error: str) -> int:
        i = at + 1
        while True:
            if i >= len(self.text) or self.text[i] == "\n":
                raise _LexError(at, error)
            if self.text[i] == "\\":
                i += 2
                continue
            if self.text[i] == quote:
                break
            i += 1
        self.tokens.append(Token(kind, at, self.text[at:i + 1]))
        return i + 1

    def _number(self, at: int) -> int:
        """Go's `scanNumber`: a sign, a base prefix (`0x`, `0o`, `0b`), digits with `_`, a
        fraction, an exponent (`e`, or `p` after hex digits) and an imaginary `i`."""
        text, start = self.text, at
        if at < len(text) and text[at] in "+-":
            at += 1
        digits = "0123456789_"
        if text.startswith("0", at):
            at += 1
            prefix = text[at:at + 1].lower()
            if prefix in ("x", "o", "b"):
                at += 1
                digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[prefix]
        while at < len(text) and text[at] in digits:
            at += 1
        if at < len(text) and text[at] == ".":
            at += 1
            while at < len(text) and text[at] in digits:
                at += 1
        exponent = {11: "eE", 23: "pP"}.get(len(digits), "")
        if at < len(text) and exponent and text[at] in exponent:
            at += 1
            if at < len(text) and text[at] in "+-":
                at += 1
            while at < len(text) and text[at] in "0123456789_":
                at += 1
        if at < len(text) and text[at] == "i":
            at += 1
        if at < len(text) and _is_alnum(text[at]):
            raise _LexError(start, f'bad number syntax: "{text[start:at + 1]}"')
        self.tokens.append(Token("number", start, text[start:at]))
        return at


class _LexError(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


def _rune(ch: str) -> str:
    return f"U+{ord(ch):04X} {ch!r}" if ch.isprintable() else f"U+{ord(ch):04X}"


def location(text: str, pos: int) -> str:
    """`line:column` of a character offset (column counted from 1, in characters)."""
    line = text.count("\n", 0, pos) + 1
    return f"{line}:{pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


def lex(text: str) -> list[Token]:
    """All tokens of `text`, ending with `eof` or an `error` token."""
    return _Lexer(text).run()
