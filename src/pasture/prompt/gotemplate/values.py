"""Go's view of template data: struct values, and how Go prints and marshals them.

Ollama renders its templates with Go's `text/template`, so a prompt depends on Go's
formatting rules: `fmt.Sprint` for printed values (floats like `1e+06`, maps as
`map[k:v]`), `encoding/json` for the `json` function and for values whose Go type has a
JSON `String()` method (sorted map keys, `<>&` escaped as `\\u003c…`). This module
reproduces those rules for the plain Python values a template sees: None (Go's nil),
bool, int, float, str, list, dict, and `GoStruct`, and which of them count as true.
"""

from __future__ import annotations

import math
import urllib.parse
from decimal import Decimal
from typing import Any


class GoStruct:
    """A value the template sees as a Go struct: exported fields, in declaration order.

    `json_tags` maps a field to its JSON name and `omitempty` flag (Go struct tags); a
    field left out of it marshals under its Go name. `stringer` marks a Go type with a
    `String()` method that returns its JSON, which is what printing it shows.
    """

    __slots__ = ("go_type", "fields", "json_tags", "stringer")

    def __init__(self, go_type: str, fields: dict[str, Any],
                 json_tags: dict[str, tuple[str, bool]] | None = None,
                 stringer: bool = False) -> None:
        self.go_type = go_type
        self.fields = fields
        self.json_tags = json_tags
        self.stringer = stringer

    def __repr__(self) -> str:
        return f"GoStruct({self.go_type}, {self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, GoStruct) and other.go_type == self.go_type
                and other.fields == self.fields)

    __hash__ = None  # type: ignore[assignment]


class JSONMap(dict[str, Any]):
    """A Go map type whose `String()` is its JSON (Ollama's tool arguments, properties).

    `ordered` keeps insertion order when marshalled (Ollama's ordered property maps);
    plain Go maps marshal with sorted keys. `is_nil` is Go's nil map: prints `{}`,
    marshals as `null`.
    """

    def __init__(self, items: Any = (), ordered: bool = False, is_nil: bool = False) -> None:
        super().__init__(items)
        self.ordered = ordered
        self.is_nil = is_nil


class JSONList(list[Any]):
    """A Go slice type whose `String()` is its JSON (Ollama's tool list)."""

    def __init__(self, items: Any = (), is_nil: bool = False) -> None:
        super().__init__(items)
        self.is_nil = is_nil


class MarshalError(ValueError):
    """A value `encoding/json` refuses (NaN, infinities)."""


def type_name(value: Any) -> str:
    """The Go type name a value would have, for error messages and `%T`."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, GoStruct):
        return value.go_type
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go's `IsTrue`: empty strings, lists and maps, zero, nil and false are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True  # structs


# ----- printing (fmt) -------------------------------------------------------------------


def format_float(value: float, verb: str = "g", prec: int = -1) -> str:
    """`strconv.FormatFloat` for the verbs templates use; prec -1 means shortest."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb in "eEfF" and prec >= 0:
        return f"{value:.{prec}{verb}}"
    if verb in "gG" and prec >= 0:
        text = f"{value:.{max(prec, 1)}{verb}}"
        return text
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + ("0" if verb in "gGv" else "0e+00" if verb == "e" else "0")
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    point = len(digits) + int(digits_tuple.exponent)  # decimal point position
    exp = point - 1
    if verb in "eE" or (verb in "gG" and (exp < -4 or exp >= 6)):
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        letter = "E" if verb in "EG" else "e"
        return f"{sign}{mantissa}{letter}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + _fixed(digits, point)


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def sprint_value(value: Any, verb: str = "v") -> str:
    """One operand as `fmt` prints it with %v (or %s/%d applied through containers)."""
    if value is None:
        return "<nil>" if verb == "v" else f"%!{verb}(<nil>)"
    if hasattr(value, "go_string") and verb in "vs":
        return str(value.go_string())
    if isinstance(value, GoStruct) and value.stringer or isinstance(value, JSONMap | JSONList):
        if verb in "vs":
            return stringer_text(value)
    if isinstance(value, bool):
        return ("true" if value else "false") if verb in "vt" else f"%!{verb}(bool={_b(value)})"
    if isinstance(value, int):
        if verb in "vd":
            return str(value)
        return f"%!{verb}(int={value})"
    if isinstance(value, float):
        if verb in "v":
            return format_float(value)
        return f"%!{verb}(float64={format_float(value)})"
    if isinstance(value, str):
        if verb in "vs":
            return value
        return f"%!{verb}(string={value})"
    if isinstance(value, GoStruct):
        return "{" + " ".join(sprint_value(v, verb) for v in value.fields.values()) + "}"
    if isinstance(value, dict):
        pairs = (f"{sprint_value(k, verb)}:{sprint_value(value[k], verb)}"
                 for k in sorted(value, key=sort_key))
        return "map[" + " ".join(pairs) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(sprint_value(v, verb) for v in value) + "]"
    return str(value)


def _b(value: bool) -> str:
    return "true" if value else "false"


def sort_key(key: Any) -> tuple[int, Any]:
    return (0, key) if isinstance(key, int | float) else (1, str(key))


def stringer_text(value: Any) -> str:
    """What a Go `String()` method returning JSON gives (`""` if marshalling fails)."""
    if isinstance(value, JSONMap) and value.is_nil:
        return "{}"
    try:
        return marshal(value)
    except MarshalError:
        return ""


def sprint(args: list[Any]) -> str:
    """`fmt.Sprint`: operands joined, a space only between two non-strings."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(sprint_value(arg))
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """`fmt.Sprintln`: operands always space-separated, newline at the end."""
    return " ".join(sprint_value(a) for a in args) + "\n"


# ----- printf ---------------------------------------------------------------------------


def sprintf(fmt: str, args: list[Any]) -> str:
    """`fmt.Sprintf` for the verbs templates use, with Go's `%!v(…)` error forms."""
    out: list[str] = []
    i, n, argn = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width, i = _number(fmt, i)
        prec = None
        if i < n and fmt[i] == ".":
            prec, i = _number(fmt, i + 1)
            prec = prec or 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argn >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argn]
        argn += 1
        out.append(_pad(_format_arg(verb, flags, prec, arg), width, flags))
    if argn < len(args):
        extra = ", ".join(f"{type_name(a)}={sprint_value(a)}" for a in args[argn:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _number(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit():
        i += 1
    return (int(fmt[start:i]) if i > start else None), i


def _pad(text: str, width: int | None, flags: str) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and text[:1] in "+-" and text[1:2].isdigit():
        return text[0] + text[1:].rjust(width - 1, "0")
    if "0" in flags and text[:1].isdigit():
        return text.rjust(width, "0")
    return text.rjust(width)


def _format_arg(verb: str, flags: str, prec: int | None, arg: Any) -> str:
    if verb == "T":
        return type_name(arg)
    if verb == "q":
        if isinstance(arg, str):
            return quote(arg)
        if isinstance(arg, int) and not isinstance(arg, bool):
            return "'" + quote(chr(arg))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        return sprint_value(arg, "q")
    if verb in "dxXobc" and isinstance(arg, int) and not isinstance(arg, bool):
        text = {"d": str, "x": lambda v: format(v, "x"), "X": lambda v: format(v, "X"),
                "o": lambda v: format(v, "o"), "b": lambda v: format(v, "b"),
                "c": chr}[verb](arg)
        return ("+" + text) if "+" in flags and arg >= 0 and verb == "d" else text
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
        return _b(arg)
    if verb in "vsd":
        return sprint_value(arg, verb)
    return f"%!{verb}({type_name(arg)}={sprint_value(arg)})"


def quote(text: str) -> str:
    """`strconv.Quote`: double-quoted with Go escapes, printable Unicode kept."""
    special = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in text:
        if ch in special:
            out.append(special[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\ufffd")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


# ----- encoding/json --------------------------------------------------------------------


def marshal(value: Any) -> str:
    """`json.Marshal`: compact, HTML-safe escapes, map keys sorted, struct tags honoured."""
    out: list[str] = []
    _marshal(value, out)
    return "".join(out)


def _marshal(value: Any, out: list[str]) -> None:
    if hasattr(value, "go_json"):
        value = value.go_json()
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_json_float(value))
    elif isinstance(value, str):
        out.append(_json_string(value))
    elif isinstance(value, GoStruct):
        _marshal_struct(value, out)
    elif isinstance(value, dict):
        if isinstance(value, JSONMap) and value.is_nil:
            out.append("null")
            return
        keys = list(value) if isinstance(value, JSONMap) and value.ordered else sorted(value)
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_json_string(str(key)))
            out.append(":")
            _marshal(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        if isinstance(value, JSONList) and value.is_nil:
            out.append("null")
            return
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _marshal(item, out)
        out.append("]")
    else:
        out.append(_json_string(str(value)))


def _marshal_struct(value: GoStruct, out: list[str]) -> None:
    out.append("{")
    first = True
    for field, item in value.fields.items():
        name, omitempty = (value.json_tags or {}).get(field, (field, False))
        if omitempty and _is_empty(item):
            continue
        if not first:
            out.append(",")
        first = False
        out.append(_json_string(name))
        out.append(":")
        _marshal(item, out)
    out.append("}")


def _is_empty(value: Any) -> bool:
    """Go's `omitempty`: false, 0, "", nil, and empty slices and maps."""
    if value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) == 0
    return False


def _json_float(value: float) -> str:
    """encoding/json's float form: shortest digits, fixed unless tiny or huge."""
    if math.isnan(value) or math.isinf(value):
        raise MarshalError(f"json: unsupported value: {format_float(value)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return format_float(value, "e").replace("e-0", "e-")
    return format_float(value, "f")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                 "\b": "\\b", "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":  # unpaired surrogate: Go writes U+FFFD
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ----- html, js, urlquery ---------------------------------------------------------------


def html_escape(text: str) -> str:
    """`template.HTMLEscapeString`."""
    table = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;",
             ">": "&gt;"}
    return "".join(table.get(ch, ch) for ch in text)


def js_escape(text: str) -> str:
    """`template.JSEscapeString`."""
    table = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
             "&": "\\u0026", "=": "\\u003D"}
    out = []
    for ch in text:
        if ch in table:
            out.append(table[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04X}")
        elif ord(ch) >= 0x80 and not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def url_query_escape(text: str) -> str:
    """`url.QueryEscape`: spaces as `+`, everything but unreserved characters escaped."""
    return urllib.parse.quote_plus(text, safe="-_.~")
