"""Go's view of template data: struct values, and how Go prints and marshals them.

Ollama renders its templates with Go's `text/template`, so a prompt depends on Go's
formatting rules: `fmt`'s for printed values (floats like `1e+06`, maps as `map[k:v]`;
the printing itself is `printer`'s), `encoding/json` for the `json` function and for values
whose Go type has a JSON `String()` method (sorted map keys, `<>&` escaped as `\\u003c…`).
This module holds those rules for the plain Python values a template sees: None (Go's
nil), bool, int, float, str, list, dict, and `GoStruct`, and which of them count as true.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from decimal import Decimal
from typing import Any

# The most characters a function may build into one value (the executor's output cap too):
# printing, marshalling and escaping stop as soon as they would pass it.
MAX_TEXT = 1 << 20


class TooLarge(Exception):
    """A function would build a value over `limit` characters."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"value exceeds {limit} characters")
        self.limit = limit


class BoundedText:
    """The pieces of one string a function builds, refusing (TooLarge) to grow past
    `limit` characters: the size is checked as each piece arrives, before the total exists."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pieces: list[str] = []
        self.size = 0

    def add(self, piece: str) -> None:
        self.size += len(piece)
        if self.size > self.limit:
            raise TooLarge(self.limit)
        self.pieces.append(piece)

    def text(self) -> str:
        return "".join(self.pieces)


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
    marshals as `null`. `go_type` is its Go type's name (`%T`).
    """

    def __init__(self, items: Any = (), ordered: bool = False, is_nil: bool = False,
                 go_type: str = "map[string]interface {}") -> None:
        super().__init__(items)
        self.ordered = ordered
        self.is_nil = is_nil
        self.go_type = go_type


class JSONList(list[Any]):
    """A Go slice type whose `String()` is its JSON (Ollama's tool list)."""

    def __init__(self, items: Any = (), is_nil: bool = False,
                 go_type: str = "[]interface {}") -> None:
        super().__init__(items)
        self.is_nil = is_nil
        self.go_type = go_type


class MarshalError(ValueError):
    """A value `encoding/json` refuses (NaN, infinities)."""


def json_decoded(value: Any) -> Any:
    """`value` as Go's `encoding/json` decodes it into `any`: every number a float64.

    Ollama decodes tool-call arguments (and a tool's `enum`, `items`, `$defs`) this way, so
    a template prints `12345678901234567890` as `1.2345678901234567e+19` (`%v`) or
    `12345678901234567000` (JSON), and `eq .x 3` is a type error. MarshalError for a
    number a float64 cannot hold, which Go's decoder refuses.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise MarshalError(f"json: cannot unmarshal number {value} into Go value of "
                               "type float64")
        return number
    if isinstance(value, dict):
        return {key: json_decoded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_decoded(item) for item in value]
    return value


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
    if isinstance(value, GoStruct | JSONMap | JSONList):
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


def format_float(value: float, verb: str = "g") -> str:
    """`strconv.FormatFloat` with the shortest digits (precision -1) for `verb` (`e f g`,
    upper case too); `strconv` adds the other precisions and verbs."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
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


def quote(text: str, limit: int = MAX_TEXT, ascii_only: bool = False) -> str:
    """`strconv.Quote`: double-quoted with Go escapes, printable Unicode kept (escaped
    too with `ascii_only`, Go's `QuoteToASCII`)."""
    if len(text) + 2 > limit:  # escaping only lengthens it
        raise TooLarge(limit)
    if text.isprintable() and '"' not in text and "\\" not in text \
            and not (ascii_only and not text.isascii()):
        return '"' + text + '"'
    special = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in text:
        if ch in special:
            out.append(special[ch])
        elif ch.isprintable() and (ch.isascii() or not ascii_only):
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


def marshal(value: Any, limit: int = MAX_TEXT) -> str:
    """`json.Marshal`: compact, HTML-safe escapes, map keys sorted, struct tags honoured.

    TooLarge as soon as the text passes `limit` characters."""
    out = BoundedText(limit)
    _marshal(value, out)
    return out.text()


def _marshal(value: Any, out: BoundedText) -> None:
    if hasattr(value, "go_json"):
        value = value.go_json()
    if value is None:
        out.add("null")
    elif isinstance(value, bool):
        out.add("true" if value else "false")
    elif isinstance(value, int):
        out.add(str(value))
    elif isinstance(value, float):
        out.add(_json_float(value))
    elif isinstance(value, str):
        out.add(_json_string(value))
    elif isinstance(value, GoStruct):
        _marshal_struct(value, out)
    elif isinstance(value, dict):
        if isinstance(value, JSONMap) and value.is_nil:
            out.add("null")
            return
        keys = list(value) if isinstance(value, JSONMap) and value.ordered else sorted(value)
        out.add("{")
        for i, key in enumerate(keys):
            if i:
                out.add(",")
            out.add(_json_string(str(key)))
            out.add(":")
            _marshal(value[key], out)
        out.add("}")
    elif isinstance(value, list | tuple):
        if isinstance(value, JSONList) and value.is_nil:
            out.add("null")
            return
        out.add("[")
        for i, item in enumerate(value):
            if i:
                out.add(",")
            _marshal(item, out)
        out.add("]")
    else:
        out.add(_json_string(str(value)))


def _marshal_struct(value: GoStruct, out: BoundedText) -> None:
    out.add("{")
    first = True
    for field, item in value.fields.items():
        name, omitempty = (value.json_tags or {}).get(field, (field, False))
        if omitempty and _is_empty(item):
            continue
        if not first:
            out.add(",")
        first = False
        out.add(_json_string(name))
        out.add(":")
        _marshal(item, out)
    out.add("}")


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


# What Go escapes beyond what Python's encoder does (escapeHTML, and the JS separators).
_GO_ONLY_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_string(text: str) -> str:
    """A JSON string as Go writes it, at the speed of Python's C encoder.

    Both escape `"`, `\\`, `\\b\\f\\n\\r\\t` and other controls as lowercase `\\u00xx`
    and keep other characters as they are; Go also escapes `<>&` and U+2028/U+2029, and
    writes an unpaired surrogate (invalid UTF-8 to Go) as U+FFFD."""
    if not text.isascii() and _has_surrogate(text):
        text = _SURROGATE.sub("\ufffd", text)
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in _GO_ONLY_ESCAPES:
        if char in encoded:
            encoded = encoded.replace(char, escape)
    return encoded


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ----- html, js, urlquery ---------------------------------------------------------------


_HTML_ESCAPES = str.maketrans({"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;",
                               "<": "&lt;", ">": "&gt;"})
_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
               "&": "\\u0026", "=": "\\u003D"}
_JS_SPECIAL = re.compile("[\\\\'\"<>&=\x00-\x1f]|[^\x00-\x7f]+")


def html_escape(text: str, limit: int = MAX_TEXT) -> str:
    """`template.HTMLEscapeString` (escaping only lengthens: TooLarge past `limit`)."""
    if len(text) > limit:
        raise TooLarge(limit)
    return text.translate(_HTML_ESCAPES)


def js_escape(text: str, limit: int = MAX_TEXT) -> str:
    """`template.JSEscapeString`: quotes, `<>&=` and controls escaped, and characters
    past ASCII only when they are not printable (TooLarge past `limit`)."""
    if len(text) > limit:
        raise TooLarge(limit)
    return _JS_SPECIAL.sub(_js_escape_match, text)


def _js_escape_match(match: re.Match[str]) -> str:
    found = match.group()
    if found in _JS_ESCAPES:
        return _JS_ESCAPES[found]
    if found < " " or not found.isprintable():
        return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04X}" for ch in found)
    return found


def url_query_escape(text: str, limit: int = MAX_TEXT) -> str:
    """`url.QueryEscape`: spaces as `+`, everything but unreserved characters escaped."""
    if len(text) > limit:
        raise TooLarge(limit)
    return urllib.parse.quote_plus(text, safe="-_.~")
