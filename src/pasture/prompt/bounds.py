"""What a JSON schema or grammar may demand of the engine, checked before it gets there.

The engine expands counts: `{"type": "array", "minItems": 1000000000}` grew a runner past
9.5 GB (issue 15), and llama.cpp's GBNF parser copies a rule once per repetition
(`x{0,N}` is N rules). Measured on SmolLM2 with the engine's llguidance, counts up to
10 000 leave the runner's memory flat and 100 000 already add 200 MB per keyword. So
each count a schema or grammar states is at most `MAX_COUNT`, all of them together at
most `MAX_TOTAL_COUNT`, and a pattern's repetitions, nested ones multiplied, at most
`MAX_COUNT` as well; anything more is a 400 naming it. No real structured output asks
for ten thousand items or characters in one place.
"""

from __future__ import annotations

import json
import re
import re._constants as sre  # the regex parser's node names
import re._parser
from typing import Any

from pasture.errors import BadRequestError

MAX_COUNT = 10_000  # any one count: minItems, maxLength, a{n}, …
MAX_TOTAL_COUNT = 100_000  # all the counts of one schema or grammar together
MAX_DEPTH = 64  # schemas nested deeper are refused (no real schema comes near)
MAX_SCHEMA_BYTES = 1024 * 1024  # a schema (a format, or every forced tool's parameters)

# Counts that JSON Schema keywords ask for (llguidance honours the first six; the others
# cost nothing to bound and may be honoured by a later engine).
COUNT_KEYWORDS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties",
                  "maxProperties", "minContains", "maxContains")
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions",
               "dependentSchemas")  # keywords whose values map names to subschemas
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
               "propertyNames", "unevaluatedProperties", "unevaluatedItems",
               "additionalItems")
_COUNT = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")  # {n}, {m,}, {m,n}
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"')


class _Budget:
    """The counts seen so far in one schema or grammar, refused past the limits."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.total = 0

    def refuse(self, reason: str) -> BadRequestError:
        return BadRequestError(f"invalid {self.what}: {reason}")

    def charge(self, name: str, count: int) -> None:
        if count > MAX_COUNT:
            raise self.refuse(f"{name} {count} is over the limit of {MAX_COUNT}")
        self.total += count
        if self.total > MAX_TOTAL_COUNT:
            raise self.refuse(f"its counts add up to more than {MAX_TOTAL_COUNT} "
                              f"(at {name} {count})")


def check_schema(schema: Any, what: str = "format") -> None:
    """400 `invalid <what>: …` for a schema that demands more than the limits allow."""
    size = len(json.dumps(schema, separators=(",", ":")))
    if size > MAX_SCHEMA_BYTES:
        raise BadRequestError(f"invalid {what}: the schema is larger than "
                              f"{MAX_SCHEMA_BYTES // 1024} KiB")
    _walk(schema, _Budget(what), 0)


def _walk(schema: Any, budget: _Budget, depth: int) -> None:
    if not isinstance(schema, dict):
        return
    if depth > MAX_DEPTH:
        raise budget.refuse(f"schemas nested more than {MAX_DEPTH} deep")
    for key in COUNT_KEYWORDS:
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            finite = value == value and abs(value) < 1e300  # not NaN nor infinite
            budget.charge(key, max(int(value), 0) if finite else 10**300)
    if isinstance(schema.get("pattern"), str):
        check_pattern(schema["pattern"], budget)
    subs: list[Any] = []
    for key in SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            subs += schema[key].values()
    if isinstance(schema.get("patternProperties"), dict):
        for pattern in schema["patternProperties"]:
            check_pattern(pattern, budget)
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            subs += schema[key]
    subs += [schema[key] for key in _SCHEMA_ONE if isinstance(schema.get(key), dict)]
    for sub in subs:
        _walk(sub, budget, depth + 1)


def check_pattern(pattern: str, budget: _Budget) -> None:
    """Charge a regex's repetitions, nested ones multiplied (`(a{100}){100}` is 10 000):
    that is how many copies a grammar built from it holds."""
    name = f"pattern {pattern[:40]!r}{'…' if len(pattern) > 40 else ''}"
    try:
        parsed = re._parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        # Not Python's dialect (or counts past its own limit): charge each count alone.
        for low, high in _COUNT.findall(pattern):
            budget.charge(f"a repetition in {name}", max(int(low), int(high or 0)))
        return
    try:
        copies = _copies(list(parsed))
    except _TooMany as exc:
        raise budget.refuse(f"{name} {exc}") from None
    budget.charge(f"the repetitions in {name}", copies)


class _TooMany(ValueError):
    """A regex past the limits (the message says which), stopped early."""


def _copies(items: list[tuple[Any, Any]], depth: int = 0) -> int:
    """How many single-character steps a regex sequence unrolls to (0 for one without
    repetitions), stopping as soon as that is over the limit."""
    if depth > MAX_DEPTH:
        raise _TooMany(f"nests more than {MAX_DEPTH} deep")
    total = 0
    for op, value in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, inner = value
            count = low if high == sre.MAXREPEAT else high
            total += max(count, 1) * max(_copies(list(inner), depth + 1), 1)
        elif op == sre.SUBPATTERN:
            total += _copies(list(value[-1]), depth + 1)
        elif op == sre.BRANCH:
            total += sum(_copies(list(alt), depth + 1) for alt in value[1])
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            total += _copies(list(value[1]), depth + 1)
        if total > MAX_COUNT:
            raise _TooMany(f"repeats more than {MAX_COUNT} times in all")
    return total


def check_grammar(grammar: str, lark: bool) -> None:
    """400 for a user's grammar whose repetition counts (`x{m,n}`, `/a{n}/`) or embedded
    `%json` schemas demand more than the limits allow. Counts inside quoted literals are
    text, not repetitions."""
    budget = _Budget("grammar")
    for low, high in _COUNT.findall(_QUOTED.sub('""', grammar)):
        budget.charge("a repetition", max(int(low), int(high or 0)))
    if lark:
        for schema in _json_schemas(grammar):
            check_schema(schema, "grammar")


def _json_schemas(grammar: str) -> list[Any]:
    """The schemas a Lark grammar embeds with `%json {…}`."""
    decoder = json.JSONDecoder()
    schemas = []
    for match in re.finditer(r"%json\s*", grammar):
        try:
            schema, _end = decoder.raw_decode(grammar, match.end())
        except (ValueError, RecursionError):
            continue  # llguidance refuses it when the grammar is compiled
        schemas.append(schema)
    return schemas
