"""`fmt.Sprintf` as templates call it (`printf`): Go's format parsing and error forms.

Follows `fmt/print.go` `doPrintf` line by line where it matters: the flags `#0+- `, a
width and a precision written in the format or taken from an argument (`*`), explicit
argument indexes (`%[2]s`, `%[1]*d`), `%!v(BADINDEX)`, `%!v(MISSING)` and `%!(EXTRA …)`.
Each operand is then printed by `printer` (verbs, padding, `%!verb(type=value)`), as
`print` and `{{ value }}` print theirs. Ollama's `granite4` template counts with
`len (printf "a%*s" $i "")`.

Go refuses a width or precision over 1e6 (`tooLarge`): a written one that grows past it
ends the format (`%!(NOVERB)`), one from an argument prints `%!(BADWIDTH)` or
`%!(BADPREC)`. Whatever Go would accept, the result is also bounded by `limit`, so a
`{{ printf "%999999d" 1 }}` repeated fails as too large before it builds the text.
"""

from __future__ import annotations

from typing import Any

from pasture.prompt.gotemplate.printer import Flags, Printer
from pasture.prompt.gotemplate.values import MAX_TEXT, TooLarge

MAX_WIDTH = 1_000_000  # Go's fmt `tooLarge`: the largest width or precision it honours


def sprintf(fmt: str, args: list[Any], limit: int = MAX_TEXT) -> str:
    """`fmt.Sprintf`; TooLarge when the result would pass `limit` characters."""
    return _Sprintf(args, limit).printf(fmt)


class _Sprintf(Printer):
    """One `Sprintf` call: Go's `pp` with the arguments and where the format is in them."""

    def __init__(self, args: list[Any], limit: int) -> None:
        super().__init__(limit)
        self.args = args
        self.reordered = False
        self.good_arg_num = True

    def printf(self, fmt: str) -> str:
        end, i, argn, args = len(fmt), 0, 0, self.args
        while i < end:
            self.good_arg_num = True
            j = fmt.find("%", i)
            if j < 0:
                self.out.add(fmt[i:])
                break
            self.out.add(fmt[i:j])
            i = j + 1
            f = self.f = Flags()
            while i < end and fmt[i] in "#0+- ":
                flag = fmt[i]
                if flag == "#":
                    f.sharp = True
                elif flag == "0":
                    f.zero = not f.minus  # zero padding only to the left
                elif flag == "+":
                    f.plus = True
                elif flag == "-":
                    f.minus, f.zero = True, False
                else:
                    f.space = True
                i += 1
            argn, i, after_index = self._arg_number(argn, fmt, i)
            if i < end and fmt[i] == "*":
                i += 1
                f.wid, f.wid_present, argn = _int_arg(args, argn)
                if not f.wid_present:
                    self.out.add("%!(BADWIDTH)")
                if f.wid < 0:
                    f.wid, f.minus, f.zero = -f.wid, True, False
                after_index = False
            else:
                f.wid, f.wid_present, i = _parsenum(fmt, i, end)
                if after_index and f.wid_present:  # "%[3]2d"
                    self.good_arg_num = False
            if i + 1 < end and fmt[i] == ".":
                i += 1
                if after_index:  # "%[3].2d"
                    self.good_arg_num = False
                argn, i, after_index = self._arg_number(argn, fmt, i)
                if i < end and fmt[i] == "*":
                    i += 1
                    f.prec, f.prec_present, argn = _int_arg(args, argn)
                    if f.prec < 0:
                        f.prec, f.prec_present = 0, False
                    if not f.prec_present:
                        self.out.add("%!(BADPREC)")
                    after_index = False
                else:
                    f.prec, f.prec_present, i = _parsenum(fmt, i, end)
                    if not f.prec_present:
                        f.prec, f.prec_present = 0, True
            if not after_index:
                argn, i, after_index = self._arg_number(argn, fmt, i)
            if i >= end:
                self.out.add("%!(NOVERB)")
                break
            verb = fmt[i]
            i += 1
            if verb == "%":
                self.out.add("%")
            elif not self.good_arg_num:
                self.out.add(f"%!{verb}(BADINDEX)")
            elif argn >= len(args):
                self.out.add(f"%!{verb}(MISSING)")
            else:
                if verb == "v":
                    f.sharp_v, f.sharp = f.sharp, False
                    f.plus_v, f.plus = f.plus, False
                self._check_size(verb, args[argn])
                self.print_arg(args[argn], verb)
                argn += 1
        if not self.reordered and argn < len(args):
            self.f = Flags()
            self.out.add("%!(EXTRA ")
            for n, arg in enumerate(args[argn:]):
                if n:
                    self.out.add(", ")
                self._typed_value(arg)
            self.out.add(")")
        return self.out.text()

    def _arg_number(self, argn: int, fmt: str, i: int) -> tuple[int, int, bool]:
        """Go's `argNumber`: an explicit `[n]` index before a width, precision or verb."""
        if i >= len(fmt) or fmt[i] != "[":
            return argn, i, False
        self.reordered = True
        index, width, ok = _parse_arg_number(fmt[i:])
        if ok and 0 <= index < len(self.args):
            return index, i + width, True
        self.good_arg_num = False
        return argn, i + width, ok

    def _check_size(self, verb: str, arg: Any) -> None:
        """Refuse before building padding or digits that alone would pass the limit."""
        f = self.f
        if (f.wid_present and f.wid > self.limit) or (
                f.prec_present and f.prec > self.limit and verb in "eEfFdxXobgG"
                and isinstance(arg, int | float)):
            raise TooLarge(self.limit)


# ----- helpers ---------------------------------------------------------------------------


def _parsenum(fmt: str, i: int, end: int) -> tuple[int, bool, int]:
    """Go's `parsenum`: a number past MAX_WIDTH abandons the rest of the format."""
    num, found = 0, False
    while i < end and "0" <= fmt[i] <= "9":
        if num > MAX_WIDTH:
            return 0, False, end
        num = num * 10 + ord(fmt[i]) - ord("0")
        found = True
        i += 1
    return num, found, i


def _parse_arg_number(fmt: str) -> tuple[int, int, bool]:
    """Go's `parseArgNumber`: `[n]` as a zero-based index, and the characters it used."""
    if len(fmt) < 3:
        return 0, 1, False
    close = fmt.find("]", 1)
    if close < 0:
        return 0, 1, False
    width, found, after = _parsenum(fmt, 1, close)
    if not found or after != close:
        return 0, close + 1, False
    return width - 1, close + 1, True


def _int_arg(args: list[Any], argn: int) -> tuple[int, bool, int]:
    """Go's `intFromArg`: a `*` width or precision, good only if an int within MAX_WIDTH."""
    if argn >= len(args):
        return 0, False, argn
    value = args[argn]
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_WIDTH:
        return 0, False, argn + 1
    return value, True, argn + 1

