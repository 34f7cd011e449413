"""`fmt.Sprintf` as templates call it (`printf`): Go's verbs, error forms and size rules.

Follows `fmt/print.go` `doPrintf`: flags, a width and a precision either written in the
format or taken from an argument (`*`), and Go's `%!verb(type=value)` forms for mistakes.
Go refuses a width or precision over 1e6 (`tooLarge`): a written one that grows past it
ends the format (`%!(NOVERB)`), one from an argument prints `%!(BADWIDTH)` or
`%!(BADPREC)`. Whatever Go would accept, the result is also bounded by `limit`, so a
`{{ printf "%9999999d" 1 }}` fails as too large before it builds ten million spaces.
"""

from __future__ import annotations

from typing import Any

from pasture.prompt.gotemplate.values import (
    MAX_TEXT,
    BoundedText,
    TooLarge,
    format_float,
    quote,
    sprint_value,
    type_name,
)

MAX_WIDTH = 1_000_000  # Go's fmt `tooLarge`: the largest width or precision it honours


def sprintf(fmt: str, args: list[Any], limit: int = MAX_TEXT) -> str:
    """`fmt.Sprintf`; TooLarge when the result would pass `limit` characters."""
    out = BoundedText(limit)
    i, n, argn = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.add(fmt[i:])
            break
        out.add(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width: int | None
        if i < n and fmt[i] == "*":
            width, good, argn = _int_arg(args, argn)
            i += 1
            if not good:
                out.add("%!(BADWIDTH)")
                width = None
            elif width is not None and width < 0:
                width, flags = -width, flags.replace("0", "") + "-"
        else:
            width, i = _parsenum(fmt, i, n)
        prec: int | None = None
        if i + 1 < n and fmt[i] == ".":
            i += 1
            if fmt[i] == "*":
                prec, good, argn = _int_arg(args, argn)
                i += 1
                if not good or prec is None or prec < 0:
                    out.add("%!(BADPREC)")
                    prec = None
            else:
                prec, i = _parsenum(fmt, i, n)
                prec = prec or 0
        if i >= n:
            out.add("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.add("%")
            continue
        if argn >= len(args):
            out.add(f"%!{verb}(MISSING)")
            continue
        arg = args[argn]
        argn += 1
        if (width is not None and width > limit) or (
                prec is not None and prec > limit
                and verb in "eEfFdxXob" and isinstance(arg, int | float)):
            raise TooLarge(limit)  # padding or digits alone would pass the limit
        out.add(_pad(_format_arg(verb, flags, prec, arg), width, flags, prec))
    if argn < len(args):
        extra = ", ".join(f"{type_name(a)}={sprint_value(a)}" for a in args[argn:])
        out.add(f"%!(EXTRA {extra})")
    return out.text()


def _parsenum(fmt: str, i: int, n: int) -> tuple[int | None, int]:
    """Go's `parsenum`: a number past MAX_WIDTH abandons the rest of the format."""
    num: int | None = None
    while i < n and "0" <= fmt[i] <= "9":
        if num is not None and num > MAX_WIDTH:
            return None, n
        num = (num or 0) * 10 + ord(fmt[i]) - ord("0")
        i += 1
    return num, i


def _int_arg(args: list[Any], argn: int) -> tuple[int | None, bool, int]:
    """Go's `intFromArg`: a `*` width or precision, good only if an int within MAX_WIDTH."""
    if argn >= len(args):
        return None, False, argn
    value = args[argn]
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_WIDTH:
        return None, False, argn + 1
    return value, True, argn + 1


def _pad(text: str, width: int | None, flags: str, prec: int | None) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    zero = "0" in flags and prec is None  # Go: a precision turns zero padding off
    if zero and text[:1] in "+-" and text[1:2].isdigit():
        return text[0] + text[1:].rjust(width - 1, "0")
    if zero and text[:1].isdigit():
        return text.rjust(width, "0")
    return text.rjust(width)


def _format_arg(verb: str, flags: str, prec: int | None, arg: Any) -> str:
    if verb == "T":
        return type_name(arg)
    if verb == "q":
        if isinstance(arg, str):
            return quote(arg)
        if isinstance(arg, int) and not isinstance(arg, bool):
            return "'" + quote(_rune(arg))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        return sprint_value(arg, "q")
    if verb in "dxXob" and isinstance(arg, int) and not isinstance(arg, bool):
        return _format_int(arg, verb, flags, prec)  # the verb is format()'s spec too
    if verb == "c" and isinstance(arg, int) and not isinstance(arg, bool):
        return _rune(arg)
    if verb in "xX" and isinstance(arg, str):
        text = arg.encode().hex()
        return text.upper() if verb == "X" else text
    if verb in "eEfFgG" and isinstance(arg, float):
        text = format_float(arg, verb, -1 if prec is None else prec)
        if verb in "fF" and prec is None:
            text = f"{arg:.6f}"
        if verb in "eE" and prec is None:
            text = f"{arg:.6{verb}}"
        return ("+" + text) if "+" in flags and not text.startswith("-") else text
    if verb == "s" and isinstance(arg, str) and prec is not None:
        return arg[:prec]
    if verb == "t" and isinstance(arg, bool):
        return "true" if arg else "false"
    if verb in "vsd":
        return sprint_value(arg, verb)
    return f"%!{verb}({type_name(arg)}={sprint_value(arg)})"


def _rune(value: int) -> str:
    """Go's rune conversion for `%c`/`%q`: an invalid code point is U+FFFD."""
    if 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
        return chr(value)
    return "\ufffd"


def _format_int(value: int, base: str, flags: str, prec: int | None) -> str:
    """Go's `fmtInteger`: a precision is the least number of digits (`%.3d` → `007`)."""
    digits = format(abs(value), base)
    if prec is not None:
        digits = "" if prec == 0 and value == 0 else digits.rjust(prec, "0")
    sign = "-" if value < 0 else "+" if "+" in flags and base == "d" else ""
    return sign + digits
