"""Go's `fmt` printing of operands (`pp.printArg`, `printValue` and `format.go`): what
`print`, `println` and `printf` write, and what a template's `{{ value }}` shows.

Operands are the values templates hold: nil, bool, int, float64, string, and the lists,
maps and structs of `values`, whose elements are printed one by one with the same verb
and flags, as Go's `printValue` does. A pointer to a struct prints `&{…}` at the top,
except where text/template prints what it points to. Output is built in a
`BoundedText`, so nothing larger than `limit` is ever assembled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pasture.prompt.gotemplate.strconv import strconv_float
from pasture.prompt.gotemplate.values import (
    MAX_TEXT,
    BoundedText,
    GoStruct,
    JSONList,
    JSONMap,
    quote,
    sort_key,
    stringer_text,
    type_name,
)


@dataclass
class Flags:
    """Go's `fmt.fmtFlags` with the width and precision of one verb."""

    sharp: bool = False
    zero: bool = False
    plus: bool = False
    minus: bool = False
    space: bool = False
    sharp_v: bool = False
    plus_v: bool = False
    wid: int = 0
    wid_present: bool = False
    prec: int = 0
    prec_present: bool = False


def sprint_value(value: Any, *, indirect: bool = False) -> str:
    """One operand as `%v` prints it. `indirect`: a pointer prints as what it points to,
    as text/template's `printableValue` does for `{{ value }}`."""
    if isinstance(value, str):  # most of what templates print: as is, without a printer
        return value
    if type(value) is int:  # an index or a count: %v is its decimal digits
        return str(value)
    printer = Printer(MAX_TEXT)
    # Below the top level fmt prints a struct pointer's fields without `&`, as Go does once
    # text/template has followed the pointer.
    printer.print_arg(value, "v", depth=1 if indirect else 0)
    return printer.out.text()


def sprint(args: list[Any], limit: int = MAX_TEXT) -> str:
    """`fmt.Sprint`: operands joined, a space only between two non-strings; TooLarge as
    soon as the text passes `limit` (`{{ print $.Big $.Big … }}` never builds the total)."""
    printer = Printer(limit)
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            printer.out.add(" ")
        printer.print_arg(arg, "v")
    return printer.out.text()


def sprintln(args: list[Any], limit: int = MAX_TEXT) -> str:
    """`fmt.Sprintln`: operands always space-separated, newline at the end."""
    printer = Printer(limit)
    for i, arg in enumerate(args):
        if i > 0:
            printer.out.add(" ")
        printer.print_arg(arg, "v")
    printer.out.add("\n")
    return printer.out.text()


class Printer:
    """Go's `pp` for printing operands: the flags of the verb at hand, a bounded buffer."""

    def __init__(self, limit: int) -> None:
        self.out = BoundedText(limit)
        self.limit = limit
        self.f = Flags()

    # ----- one operand (Go's printArg and printValue) ------------------------------------

    def print_arg(self, arg: Any, verb: str, depth: int = 0) -> None:
        if arg is None:
            if depth > 0 or verb in "Tv":
                self._pad("<nil>")
            else:
                self._bad_verb(arg, verb)
            return
        if verb == "T":
            self._fmt_s(type_name(arg))
            return
        if isinstance(arg, bool):
            if verb in "tv":
                self._pad("true" if arg else "false")
            else:
                self._bad_verb(arg, verb)
        elif isinstance(arg, int):
            self._fmt_integer(arg, verb)
        elif isinstance(arg, float):
            self._fmt_float(arg, verb)
        elif isinstance(arg, str):
            self._fmt_string(arg, verb)
        elif self._handle_methods(arg, verb):
            return
        elif isinstance(arg, GoStruct):
            self._print_struct(arg, verb, depth)
        elif isinstance(arg, dict):
            self._print_map(arg, verb, depth)
        elif isinstance(arg, list | tuple):
            self._print_list(arg, verb, depth)
        else:
            self._bad_verb(arg, verb)

    def _handle_methods(self, arg: Any, verb: str) -> bool:
        """A Go type with a `String()` method prints its text for %v %s %x %X %q."""
        if self.f.sharp_v or verb not in "vsxXq":
            return False
        if hasattr(arg, "go_string"):
            self._fmt_string(str(arg.go_string()), verb)
            return True
        if isinstance(arg, JSONMap | JSONList) or (isinstance(arg, GoStruct) and arg.stringer):
            self._fmt_string(stringer_text(arg), verb)
            return True
        return False

    def _print_struct(self, arg: GoStruct, verb: str, depth: int) -> None:
        if self.f.sharp_v:
            self.out.add(arg.go_type.lstrip("*") + "{")
        elif arg.go_type.startswith("*") and depth == 0:
            self.out.add("&{")
        else:
            self.out.add("{")
        for n, (name, value) in enumerate(arg.fields.items()):
            if n:
                self.out.add(", " if self.f.sharp_v else " ")
            if self.f.plus_v or self.f.sharp_v:
                self.out.add(name + ":")
            self.print_arg(value, verb, depth + 1)
        self.out.add("}")

    def _print_map(self, arg: dict[Any, Any], verb: str, depth: int) -> None:
        self.out.add("map[string]interface {}{" if self.f.sharp_v else "map[")
        for n, key in enumerate(sorted(arg, key=sort_key)):
            if n:
                self.out.add(", " if self.f.sharp_v else " ")
            self.print_arg(key, verb, depth + 1)
            self.out.add(":")
            self.print_arg(arg[key], verb, depth + 1)
        self.out.add("}" if self.f.sharp_v else "]")

    def _print_list(self, arg: list[Any] | tuple[Any, ...], verb: str, depth: int) -> None:
        self.out.add("[]interface {}{" if self.f.sharp_v else "[")
        for n, item in enumerate(arg):
            if n:
                self.out.add(", " if self.f.sharp_v else " ")
            self.print_arg(item, verb, depth + 1)
        self.out.add("}" if self.f.sharp_v else "]")

    def _bad_verb(self, arg: Any, verb: str) -> None:
        """`%!verb(type=value)`, the value printed with %v and the verb's flags."""
        self.out.add(f"%!{verb}(")
        self._typed_value(arg)
        self.out.add(")")

    def _typed_value(self, arg: Any) -> None:
        """`type=value` (the value with %v), or `<nil>`: how fmt reports a misused argument."""
        if arg is None:
            self.out.add("<nil>")
        else:
            self.out.add(type_name(arg) + "=")
            self.print_arg(arg, "v")

    # ----- padding (format.go) -------------------------------------------------------------

    def _padding(self, n: int) -> None:
        if n > 0:
            self.out.add(("0" if self.f.zero and not self.f.minus else " ") * n)

    def _pad(self, text: str) -> None:
        f = self.f
        if not f.wid_present or f.wid == 0:
            self.out.add(text)
        elif f.minus:
            self.out.add(text)
            self._padding(f.wid - len(text))
        else:
            self._padding(f.wid - len(text))
            self.out.add(text)

    def _pad_no_zero(self, text: str) -> None:
        zero, self.f.zero = self.f.zero, False
        self._pad(text)
        self.f.zero = zero

    # ----- strings ---------------------------------------------------------------------

    def _truncate(self, text: str) -> str:
        return text[:self.f.prec] if self.f.prec_present else text

    def _fmt_s(self, text: str) -> None:
        self._pad(self._truncate(text))

    def _fmt_string(self, text: str, verb: str) -> None:
        if verb == "v":
            if self.f.sharp_v:
                self._fmt_q(text)
            else:
                self._fmt_s(text)
        elif verb == "s":
            self._fmt_s(text)
        elif verb in "xX":
            self._fmt_sx(text.encode("utf-8", "surrogatepass"), verb)
        elif verb == "q":
            self._fmt_q(text)
        else:
            self._bad_verb(text, verb)

    def _fmt_q(self, text: str) -> None:
        text = self._truncate(text)
        if self.f.sharp and _can_backquote(text):
            self._pad("`" + text + "`")
        else:
            self._pad(quote(text, ascii_only=self.f.plus))

    def _fmt_sx(self, data: bytes, verb: str) -> None:
        """Go's `fmtSbx`: hex of the bytes, `% x` spaced, `%#x` with 0x."""
        f = self.f
        length = min(len(data), f.prec) if f.prec_present else len(data)
        width = 2 * length
        if width <= 0:
            if f.wid_present:
                self._padding(f.wid)
            return
        if f.space:
            width = width * 2 if f.sharp else width
            width += length - 1
        elif f.sharp:
            width += 2
        if f.wid_present and f.wid > width and not f.minus:
            self._padding(f.wid - width)
        prefix = "0" + verb if f.sharp else ""
        pieces = [format(byte, "02x" if verb == "x" else "02X") for byte in data[:length]]
        if f.space:
            self.out.add(" ".join(prefix + piece for piece in pieces))
        else:
            self.out.add(prefix + "".join(pieces))
        if f.wid_present and f.wid > width and f.minus:
            self._padding(f.wid - width)

    # ----- integers --------------------------------------------------------------------

    def _fmt_integer(self, value: int, verb: str) -> None:
        if verb in "vd":
            self._integer(value, 10, verb)
        elif verb == "b":
            self._integer(value, 2, verb)
        elif verb in "oO":
            self._integer(value, 8, verb)
        elif verb in "xX":
            self._integer(value, 16, verb)
        elif verb == "c":
            self._pad(_rune(value))
        elif verb == "q":
            self._pad(_quote_rune(_rune(value), ascii_only=self.f.plus))
        elif verb == "U":
            self._fmt_unicode(value)
        else:
            self._bad_verb(value, verb)

    def _integer(self, value: int, base: int, verb: str) -> None:
        """Go's `fmtInteger`: precision is the least number of digits, `0` pads after
        the sign, `#` adds a base prefix."""
        f = self.f
        negative = value < 0
        magnitude = -value if negative else value
        prec = 0
        if f.prec_present:
            prec = f.prec
            if prec == 0 and value == 0:
                zero, f.zero = f.zero, False
                self._padding(f.wid if f.wid_present else 0)
                f.zero = zero
                return
        elif f.zero and not f.minus and f.wid_present:
            prec = f.wid - (1 if negative or f.plus or f.space else 0)
        digits = {10: "d", 2: "b", 8: "o", 16: "x"}[base]
        text = format(magnitude, digits)
        if verb == "X":
            text = text.upper()
        text = text.rjust(prec, "0")
        if f.sharp:
            if base == 2:
                text = "0b" + text
            elif base == 8 and not text.startswith("0"):
                text = "0" + text
            elif base == 16:
                text = "0" + ("X" if verb == "X" else "x") + text
        if verb == "O":
            text = "0o" + text
        sign = "-" if negative else "+" if f.plus else " " if f.space else ""
        self._pad_no_zero(sign + text)

    def _fmt_unicode(self, value: int) -> None:
        """`%U`: `U+0041`, with `%#U` the quoted character too when printable."""
        code = value if value >= 0 else value + (1 << 64)
        prec = self.f.prec if self.f.prec_present and self.f.prec > 4 else 4
        text = "U+" + format(code, "X").rjust(prec, "0")
        if self.f.sharp and code <= 0x10FFFF and _is_print(code):
            text += " '" + chr(code) + "'"
        self._pad_no_zero(text)

    # ----- floats ----------------------------------------------------------------------

    def _fmt_float(self, value: float, verb: str) -> None:
        if verb == "v":
            self._float(value, "g", -1)
        elif verb in "bgGxX":
            self._float(value, verb, -1)
        elif verb in "feEF":
            self._float(value, verb, 6)
        else:
            self._bad_verb(value, verb)

    def _float(self, value: float, verb: str, prec: int) -> None:
        """Go's `fmt.fmtFloat`: sign handling, `#`, and zero padding after the sign."""
        f = self.f
        if f.prec_present:
            prec = f.prec
        num = strconv_float(value, verb, prec)
        num = num if num[0] in "+-" else "+" + num
        if f.space and num[0] == "+" and not f.plus:
            num = " " + num[1:]
        if num[1] in "IN":  # infinities and NaN are never zero padded
            if num[1] == "N" and not f.space and not f.plus:
                num = num[1:]
            self._pad_no_zero(num)
            return
        if f.sharp and verb != "b":
            num = _sharp_float(num, verb, prec)
        if f.plus or num[0] != "+":
            if f.zero and not f.minus and f.wid_present and f.wid > len(num):
                self.out.add(num[0])
                self._padding(f.wid - len(num))
                self.out.add(num[1:])
                return
            self._pad(num)
            return
        self._pad(num[1:])



def _sharp_float(num: str, verb: str, prec: int) -> str:
    """`%#g` keeps trailing zeros and `%#.0f` its point (Go's `fmtFloat` with f.sharp)."""
    digits = (6 if prec == -1 else prec) if verb in "vgGx" else 0
    tail = ""
    has_point = False
    seen_nonzero = False
    body = num
    for i in range(1, len(num)):
        char = num[i]
        if char == ".":
            has_point = True
        elif char in "pP" or (char in "eE" and verb not in "xX"):
            body, tail = num[:i], num[i:]
            break
        else:
            if char != "0":
                seen_nonzero = True
            if seen_nonzero:
                digits -= 1
    if not has_point:
        if len(body) == 2 and body[1] == "0":
            digits -= 1
        body += "."
    return body + "0" * max(digits, 0) + tail



def _rune(value: int) -> str:
    """Go's rune conversion for `%c`/`%q`: an invalid code point is U+FFFD."""
    if 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
        return chr(value)
    return "\ufffd"


def _is_print(code: int) -> bool:
    return not 0xD800 <= code <= 0xDFFF and chr(code).isprintable()


def _can_backquote(text: str) -> bool:
    """`strconv.CanBackquote`: one line, no backquote, no control character but tab."""
    return all(char == "\t" or (char != "`" and char != "\ufeff" and ord(char) >= 0x20
                                and char != "\x7f" and not 0xD800 <= ord(char) <= 0xDFFF)
               for char in text)


def _quote_rune(char: str, ascii_only: bool = False) -> str:
    """`strconv.QuoteRune`: `'a'`, `'\\''`, `'\\n'`."""
    inner = quote(char, ascii_only=ascii_only)[1:-1]
    return "'" + inner.replace('\\"', '"').replace("'", "\\'") + "'"
