"""GBNF (llama.cpp's own grammar format) for engine builds without llguidance.

Pasture's composed grammars — a forced tool call in the model's tags, a `format` after
room for a thought — are llguidance grammars (`pasture.prompt.grammars`). An engine
build compiled offline has no llguidance (its Rust crates are fetched at build time), nor
have many CUDA wheels; for those the same grammars are written here in GBNF, which every
llama.cpp build runs.

The JSON part is a JSON-schema converter in the manner of llama.cpp's
`json-schema-to-grammar` (the engine's own converter cannot be asked for GBNF in a build
that has llguidance, and the server process runs that one): required properties in
order, then optional ones, whitespace limited so a small model cannot ramble in it,
string patterns through Python's regex parser (end of this module). Keywords it cannot
enforce are refused with a 400 naming them, never silently dropped.
"""

from __future__ import annotations

import json
import math
import re
import re._constants as sre  # the regex parser's node names
import re._parser
from typing import Any

from pasture.errors import BadRequestError

# JSON's building blocks. `j-space` allows a little whitespace between tokens, as
# llama.cpp's converter does: unlimited whitespace lets a small model loop in it.
PRIMITIVES = {
    "j-space": '| " " | "\\n"{1,2} [ \\t]{0,20}',
    "j-boolean": '("true" | "false") j-space',
    "j-null": '"null" j-space',
    "j-digits": '[0-9] | [1-9] [0-9]{0,15}',
    "j-integer": '"-"? j-digits j-space',
    "j-number": '"-"? j-digits ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,16})? j-space',
    "j-char": '[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "j-string": '"\\"" j-char* "\\"" j-space',
    "j-value": "j-object | j-array | j-string | j-number | j-boolean | j-null",
    "j-object": '"{" j-space (j-string ":" j-space j-value ("," j-space j-string ":" j-space '
                'j-value)*)? "}" j-space',
    "j-array": '"[" j-space (j-value ("," j-space j-value)*)? "]" j-space',
}

# String formats llama.cpp's converter knows; any other format is a plain string there too.
_DATE = '[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])'
_TIME = ('([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
         '("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])')
_FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f"{_DATE} [Tt ] {_TIME}",
    "uuid": '[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" '
            "[0-9a-fA-F]{12}",
}

# Keywords that say nothing about which JSON is valid.
_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "format",
                "contentMediaType", "contentEncoding"}
_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
_HANDLED = {"$ref", "const", "enum", "anyOf", "oneOf", "allOf", "type", "properties",
            "required", "additionalProperties", "items", "prefixItems", "minItems",
            "maxItems", "minLength", "maxLength", "pattern", *_BOUNDS}
_MAX_DIGITS = 16  # as j-digits: more is not a number a model means
_LIMIT = 10**_MAX_DIGITS - 1
_MAX_DEPTH = 64  # schemas nested deeper than this are refused, not a stack overflow


def literal(text: str) -> str:
    """A GBNF string literal matching exactly `text`."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _class_char(char: str) -> str:
    """`char` inside a GBNF character class: punctuation and controls escaped."""
    if char.isalnum() or ord(char) > 0x7F:
        return char
    return f"\\x{ord(char):02X}"


def text_through(tag: str, name: str) -> dict[str, str]:
    """Rules `name-0`… matching any text up to and including the first `tag`: an
    automaton whose state is how much of the tag the text has just matched, so the tag
    always ends it (llguidance's `suffix`, in GBNF)."""
    alphabet = sorted(set(tag))
    others = "[^" + "".join(_class_char(c) for c in alphabet) + f"] {name}-0"
    rules = {}
    for state in range(len(tag)):
        branches = []
        for char in alphabet:
            after = _advance(tag, state, char)
            step = literal(char)
            branches.append(step if after == len(tag) else f"{step} {name}-{after}")
        rules[f"{name}-{state}"] = " | ".join([*branches, others])
    return rules


def _advance(tag: str, state: int, char: str) -> int:
    """How much of `tag` is matched after `char` follows its first `state` characters."""
    seen = tag[:state] + char
    return next((k for k in range(len(seen), 0, -1) if seen.endswith(tag[:k])), 0)


class SchemaGrammar:
    """GBNF rules for a JSON schema: `expression` matches a valid instance (with the
    whitespace after it), using `rules` (PRIMITIVES among them)."""

    def __init__(self, schema: Any, what: str = "format") -> None:
        self._root = schema
        self._what = what
        self.rules: dict[str, str] = dict(PRIMITIVES)
        self._refs: dict[str, str] = {}
        self._depth = 0
        self.expression = self._visit(schema, "j-root")

    def _refuse(self, reason: str) -> BadRequestError:
        return BadRequestError(f"invalid {self._what}: this model's engine build has no "
                               f"llguidance, and its grammars cannot enforce {reason}")

    def _rule(self, hint: str, body: str) -> str:
        """A named rule for `body` (its name from `hint`, made unique)."""
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-") or "r"
        name, n = base, 1
        while name in self.rules:
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = body
        return name

    def _visit(self, schema: Any, hint: str) -> str:
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                raise self._refuse(f"schemas nested more than {_MAX_DEPTH} deep")
            return self._expression(schema, hint)
        finally:
            self._depth -= 1

    def _expression(self, schema: Any, hint: str) -> str:
        if schema is True or schema == {}:
            return "j-value"
        if not isinstance(schema, dict):
            raise self._refuse("a schema that allows nothing" if schema is False
                               else f"the schema {json.dumps(schema)[:60]}")
        unknown = sorted(set(schema) - _HANDLED - _ANNOTATIONS)
        if unknown:
            raise self._refuse(f"the keyword '{unknown[0]}'")
        keys = {k for k in schema if k not in _ANNOTATIONS}  # the constraining ones
        if "$ref" in schema:
            self._alone(keys, "$ref")
            return self._ref(schema["$ref"])
        if "const" in schema:
            self._alone(keys, "const")
            return f"{self._json_literal(schema['const'])} j-space"
        if "enum" in schema:
            self._alone(keys, "enum", "type")
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise self._refuse("an empty enum")
            return "(" + " | ".join(self._json_literal(v) for v in values) + ") j-space"
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                return self._combined(schema, key, keys, hint)
        kind = schema.get("type")
        if isinstance(kind, list):
            rest = {k: v for k, v in schema.items() if k != "type"}
            return "(" + " | ".join(self._visit({**rest, "type": t}, hint) for t in kind) + ")"
        if kind == "object" or (kind is None and ({"properties", "additionalProperties"}
                                                  & keys)):
            return self._object(schema, hint)
        if kind == "array" or (kind is None and ({"items", "prefixItems"} & keys)):
            return self._array(schema, hint)
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema) if _BOUNDS & keys else "j-number"
        if kind == "boolean":
            return "j-boolean"
        if kind == "null":
            return "j-null"
        if kind is None:
            return "j-value"
        raise self._refuse(f"the type {kind!r}")

    def _alone(self, keys: set[str], key: str, *allowed: str) -> None:
        others = sorted(keys - {key, *allowed})
        if others:
            raise self._refuse(f"'{others[0]}' beside '{key}'")

    def _json_literal(self, value: Any) -> str:
        return literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def _ref(self, ref: Any) -> str:
        """A rule for a local `#/$defs/…` or `#/definitions/…` (recursion allowed)."""
        if ref in self._refs:
            return self._refs[ref]
        match = re.fullmatch(r"#/(\$defs|definitions)/([^/]+)", ref) \
            if isinstance(ref, str) else None
        target = match and (self._root.get(match.group(1)) or {}).get(match.group(2))
        if target is None:
            raise self._refuse(f"the reference {ref!r}")
        name = self._rule("ref-" + match.group(2), "")  # reserved first: it may recur
        self._refs[ref] = name
        self.rules[name] = self._visit(target, name)
        return name

    def _combined(self, schema: dict[str, Any], key: str, keys: set[str], hint: str) -> str:
        subs = schema[key]
        if not isinstance(subs, list) or not subs:
            raise self._refuse(f"an empty {key}")
        self._alone(keys, key)
        if key == "allOf":
            if len(subs) != 1:
                raise self._refuse("allOf with more than one schema")
            return self._visit(subs[0], hint)
        # oneOf as anyOf: exclusivity is not a grammar's to check (nor llama.cpp's).
        return "(" + " | ".join(self._visit(sub, f"{hint}-{i}")
                                for i, sub in enumerate(subs)) + ")"

    def _object(self, schema: dict[str, Any], hint: str) -> str:
        properties = schema.get("properties") or {}
        required = list(dict.fromkeys(schema.get("required") or []))
        optional = [name for name in properties if name not in required]
        pairs = {name: self._rule(f"{hint}-{name}-kv",
                                  f'{self._json_literal(name)} j-space ":" j-space '
                                  + self._visit(properties.get(name, True), f"{hint}-{name}"))
                 for name in [*required, *optional]}
        extra_schema = schema.get("additionalProperties", True)
        extra = None
        if extra_schema is not False:
            value = self._visit(extra_schema, f"{hint}-extra")
            extra = self._rule(f"{hint}-extra-kv", f'j-string ":" j-space {value}')
        # after[k]: each optional pair from the k-th on, in order, present or not, then
        # any extra pairs. A rule per step keeps the grammar linear in the properties.
        after = [f'("," j-space {extra})*' if extra else ""]
        for name in reversed(optional):
            after.insert(0, self._rule(f"{hint}-{name}-then",
                                       _spaced(f'("," j-space {pairs[name]})?', after[0])))
        if required:
            body = _spaced(' "," j-space '.join(pairs[name] for name in required), after[0])
        else:  # any one may come first: a branch per first pair present
            starts = [_spaced(pairs[name], after[i + 1]) for i, name in enumerate(optional)]
            starts += [_spaced(extra, after[-1])] if extra else []
            body = f"({' | '.join(starts)})?" if starts else ""
        return self._rule(hint, _spaced('"{" j-space', body, '"}" j-space'))

    def _array(self, schema: dict[str, Any], hint: str) -> str:
        low, high = _count(schema, "minItems"), _count(schema, "maxItems")
        if "prefixItems" in schema:
            if schema.get("items", False) is not False or low or high is not None:
                raise self._refuse("prefixItems with items, minItems or maxItems")
            parts = [self._visit(sub, f"{hint}-{i}")
                     for i, sub in enumerate(schema["prefixItems"])]
            inside = ' "," j-space '.join(parts)
        else:
            item = self._rule(f"{hint}-item", self._visit(schema.get("items", True),
                                                          f"{hint}-item"))
            inside = _repeated(item, ' "," j-space ' + item, low, high)
        return self._rule(hint, _spaced('"[" j-space', inside, '"]" j-space'))

    def _string(self, schema: dict[str, Any]) -> str:
        if "format" in schema and schema["format"] in _FORMATS:
            return f'"\\"" {_FORMATS[schema["format"]]} "\\"" j-space'
        if "pattern" in schema:
            if {"minLength", "maxLength"} & set(schema) or not isinstance(schema["pattern"], str):
                raise self._refuse("a pattern with minLength or maxLength")
            try:
                inside = pattern_gbnf(schema["pattern"])
            except Unsupported as exc:
                raise self._refuse(str(exc)) from None
            return f'"\\"" {inside} "\\"" j-space'
        low, high = _count(schema, "minLength"), _count(schema, "maxLength")
        if not low and high is None:
            return "j-string"
        return f'"\\"" {_repeated("j-char", "j-char", low, high)} "\\"" j-space'

    def _number(self, schema: dict[str, Any]) -> str:
        """A number between whole, inclusive bounds from 0 up (`{"minimum": 0, "maximum":
        2}`, the common case), written without an exponent; other bounds are refused."""
        low, high = schema.get("minimum"), schema.get("maximum")
        whole = all(isinstance(v, int | float) and not isinstance(v, bool)
                    and abs(v) <= _LIMIT and v == int(v) for v in (low, high) if v is not None)
        if ({"exclusiveMinimum", "exclusiveMaximum"} & set(schema) or low is None
                or low < 0 or not whole or (high is not None and high < low)):
            raise self._refuse("a number's bounds other than whole ones from 0 up")
        low, high = int(low), None if high is None else int(high)
        fraction = '("." [0-9]{1,16})?'
        if high is None:
            return f"({integer_range(low, None)}) {fraction} j-space"
        below = f"({integer_range(low, high - 1)}) {fraction} | " if high > low else ""
        return f'({below}{literal(str(high))} ("." "0"{{1,16}})?) j-space'

    def _integer(self, schema: dict[str, Any]) -> str:
        low, high = _integer_bounds(schema)
        if low is None and high is None:
            return "j-integer"
        if low is not None and high is not None and low > high:
            raise self._refuse("an integer range with no integer in it")
        return f"({integer_range(low, high)}) j-space"


def _count(schema: dict[str, Any], key: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequestError(f"invalid schema: {key} must be a non-negative integer")
    return value


def _integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive integer range the schema's bounds allow. A fractional bound rounds
    inwards; one beyond `_MAX_DIGITS` digits (or not finite) bounds nothing a model
    writes, so it counts as absent."""
    def bound(key: str) -> float | None:
        value = schema.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value if abs(value) <= _LIMIT else None

    lows = [math.ceil(v) for v in [bound("minimum")] if v is not None]
    lows += [math.floor(v) + 1 for v in [bound("exclusiveMinimum")] if v is not None]
    highs = [math.floor(v) for v in [bound("maximum")] if v is not None]
    highs += [math.ceil(v) - 1 for v in [bound("exclusiveMaximum")] if v is not None]
    return max(lows, default=None), min(highs, default=None)


def _repeated(first: str, more: str, low: int | None, high: int | None) -> str:
    """`first` then `more` so that there are between `low` and `high` items in all."""
    low = low or 0
    if high is not None and high < low:
        raise BadRequestError("invalid schema: a maximum below its minimum")
    if high == 0:
        return ""
    rest_low = max(low - 1, 0)
    rest = f"{{{rest_low},}}" if high is None else f"{{{rest_low},{high - 1}}}"
    sequence = f"{first} ({more}){rest}"
    return sequence if low else f"({sequence})?"


def integer_range(low: int | None, high: int | None) -> str:
    """A GBNF expression for the integers from `low` to `high` (None: unbounded), written
    as JSON writes them (no leading zeros)."""
    branches = []
    if low is None or low < 0:  # negative numbers: "-" and their magnitudes
        smallest = 1 if high is None or high >= 0 else -high
        branches.append(f'"-" ({_digits_range(smallest, None if low is None else -low)})')
    if high is None or high >= 0:
        branches.append(_digits_range(max(low or 0, 0), high))
    return " | ".join(branches)


def _digits_range(low: int, high: int | None) -> str:
    """The decimal numerals of `low`…`high` (both ≥ 0; None: up to `_MAX_DIGITS` digits)."""
    top = high if high is not None else _LIMIT
    branches = []
    for width in range(len(str(low)), len(str(top)) + 1):
        first, last = max(low, 10 ** (width - 1) if width > 1 else 0), min(top, 10**width - 1)
        if first <= last:
            branches.append(_same_width(str(first), str(last)))
    return " | ".join(branches)


def _same_width(low: str, high: str) -> str:
    """Numerals from `low` to `high`, both of the same number of digits. Only the first
    and last leading digits need a narrower tail, so the result grows with the square of
    the width at worst."""
    if low == high:
        return literal(low)
    if len(low) == 1:
        return f"[{low}-{high}]"
    if low[0] == high[0]:
        return f"{literal(low[0])} ({_same_width(low[1:], high[1:])})"
    width = len(low) - 1
    first, last = int(low[0]), int(high[0])
    branches, after = [], []
    if low[1:] != "0" * width:
        branches.append(f"{literal(low[0])} ({_same_width(low[1:], '9' * width)})")
        first += 1
    if high[1:] != "9" * width:
        after.append(f"{literal(high[0])} ({_same_width('0' * width, high[1:])})")
        last -= 1
    if first <= last:
        digits = literal(str(first)) if first == last else f"[{first}-{last}]"
        branches.append(f"{digits} [0-9]{{{width}}}")
    return " | ".join(branches + after)


def _spaced(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def render(root: str, rules: dict[str, str]) -> str:
    """A GBNF grammar: `root ::= root`, then the rules."""
    return "\n".join([f"root ::= {root}", *(f"{name} ::= {body}"
                                           for name, body in rules.items())]) + "\n"


# ----- string patterns --------------------------------------------------------------------
# A JSON-schema `pattern` is parsed with Python's own regex parser (`re._parser`) and its
# tree written as GBNF producing the string as JSON writes it: a `"`, `\\` or control
# character the pattern allows comes out escaped. As in JSON Schema, a pattern matches
# anywhere unless anchored with `^` and `$`. Negated classes and `.` never produce a
# character JSON must escape, so the grammar may allow a little less than the pattern,
# never more; what a grammar cannot express (look-arounds, back-references, word
# boundaries, flags) is refused.

# Code points a JSON string cannot hold unescaped (and DEL, as `j-char` leaves it out).
_ESCAPED = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F)]
_CATEGORIES = {  # ASCII, as in the ECMA-262 regexes JSON Schema names
    sre.CATEGORY_DIGIT: [(0x30, 0x39)],
    sre.CATEGORY_WORD: [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    sre.CATEGORY_SPACE: [(0x09, 0x0D), (0x20, 0x20)],
}
_NEGATED = {sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT, sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
            sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE}


class Unsupported(ValueError):
    """A pattern, or a part of one, that a grammar cannot enforce."""


def pattern_gbnf(pattern: str, char: str = "j-char") -> str:
    """A GBNF expression for the inside of a JSON string (no quotes) matching `pattern`;
    `char` is the rule for any one JSON string character (for unanchored ends)."""
    try:
        parsed = re._parser.parse(pattern)
    except re.error as exc:
        raise Unsupported(f"the pattern {pattern!r} ({exc})") from None
    if parsed.state.flags & ~re.UNICODE:
        raise Unsupported(f"flags in the pattern {pattern!r}")
    items = list(parsed)
    anchored_start = bool(items) and items[0] == (sre.AT, sre.AT_BEGINNING)
    anchored_end = bool(items) and items[-1] == (sre.AT, sre.AT_END)
    items = items[int(anchored_start):len(items) - int(anchored_end)]
    parts = [] if anchored_start else [f"{char}*"]
    parts.append(_sequence(items))
    parts += [] if anchored_end else [f"{char}*"]
    return " ".join(part for part in parts if part)


def _sequence(items: list[tuple[Any, Any]]) -> str:
    return " ".join(_item(op, value) for op, value in items) or '""'


def _item(op: Any, value: Any) -> str:
    if op == sre.LITERAL:
        return _json_text(chr(value))
    if op == sre.NOT_LITERAL:
        return _negated([(value, value)])
    if op == sre.ANY:
        return _negated([])
    if op == sre.IN:
        return _class(value)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, inner = value
        count = f"{{{low},}}" if high == sre.MAXREPEAT else f"{{{low},{high}}}"
        return f"({_sequence(list(inner))}){count}"
    if op == sre.SUBPATTERN:
        _group, add_flags, del_flags, inner = value
        if add_flags or del_flags:
            raise Unsupported("flags inside the pattern")
        return f"({_sequence(list(inner))})"
    if op == sre.BRANCH:
        return "(" + " | ".join(_sequence(list(alt)) for alt in value[1]) + ")"
    if op == sre.AT:
        raise Unsupported("an anchor or word boundary inside the pattern")
    raise Unsupported(f"{str(op).lower().replace('_', ' ')} in the pattern")


def _class(items: list[tuple[Any, Any]]) -> str:
    """A character class; its negated categories (`\\D`) only on their own."""
    negate = bool(items) and items[0][0] == sre.NEGATE
    items = items[int(negate):]
    if not negate and len(items) == 1 and items[0] == (sre.CATEGORY, items[0][1]) \
            and items[0][1] in _NEGATED:
        return _negated(_CATEGORIES[_NEGATED[items[0][1]]])
    ranges = []
    for op, value in items:
        if op == sre.LITERAL:
            ranges.append((value, value))
        elif op == sre.RANGE:
            ranges.append(value)
        elif op == sre.CATEGORY and value in _CATEGORIES:
            ranges += _CATEGORIES[value]
        else:
            raise Unsupported("a negated category beside others in a class")
    return _negated(ranges) if negate else _positive(ranges)


def _positive(ranges: list[tuple[int, int]]) -> str:
    """Any one of `ranges`, the characters JSON escapes written escaped."""
    plain = _subtract(ranges, _ESCAPED)
    escaped = [c for lo, hi in ranges for c in range(lo, hi + 1) if _inside(c, _ESCAPED)]
    options = [f"[{_ranges(plain)}]"] if plain else []
    options += sorted({_json_text(chr(c)) for c in escaped})
    if not options:
        raise Unsupported("an empty class")
    return options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"


def _negated(ranges: list[tuple[int, int]]) -> str:
    return f"[^{_ranges(ranges + _ESCAPED)}]"


def _ranges(ranges: list[tuple[int, int]]) -> str:
    return "".join(_class_char(chr(lo)) if lo == hi
                   else f"{_class_char(chr(lo))}-{_class_char(chr(hi))}" for lo, hi in ranges)


def _json_text(text: str) -> str:
    """A GBNF literal for `text` as it appears inside a JSON string."""
    return literal(json.dumps(text, ensure_ascii=False)[1:-1])


def _inside(code: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def _subtract(ranges: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`ranges` without the code points in `cut`."""
    out = []
    for lo, hi in ranges:
        pieces = [(lo, hi)]
        for cut_lo, cut_hi in cut:
            pieces = [piece for a, b in pieces for piece in
                      ((a, min(b, cut_lo - 1)), (max(a, cut_hi + 1), b)) if piece[0] <= piece[1]]
        out += pieces
    return out
