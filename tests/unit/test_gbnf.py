"""GBNF for engine builds without llguidance: the JSON-schema converter and its parts.

Grammars are matched by llguidance's GBNF reader over a byte vocabulary (as in
test_thinking_grammar.py); llama.cpp runs them in tests/integration/test_engine_builds.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import llguidance
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasture.errors import BadRequestError
from pasture.prompt import gbnf
from tests.unit.test_thinking_grammar import matches


def schema_accepts(schema: Any, value: Any, *, raw: str | None = None) -> bool:
    """Whether the grammar for `schema` accepts `value` written as JSON (or `raw`)."""
    grammar = gbnf.SchemaGrammar(schema)
    text = raw if raw is not None else json.dumps(value, ensure_ascii=False)
    return matches(llguidance.grammar_from("gbnf", gbnf.render(grammar.expression,
                                                               grammar.rules)), text)


def as_regex(expression: str) -> re.Pattern[str]:
    """A regex for `integer_range`'s output (literals, classes, groups, counts)."""
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)),
                             expression).replace(" ", ""))


@pytest.mark.parametrize(("low", "high"), [
    (0, 0), (1, 14), (0, 120), (7, 7), (-5, 5), (-120, -3), (10, 99), (95, 1005),
    (None, 12), (-12, None), (3, None), (None, -7), (None, None), (100, 100),
])
def test_integer_ranges_hold_exactly_their_integers(low: int | None, high: int | None) -> None:
    pattern = as_regex(gbnf.integer_range(low, high))
    for n in [*range(-1100, 1100), 10**9, -(10**9), 10**15]:
        inside = (low is None or n >= low) and (high is None or n <= high)
        assert bool(pattern.fullmatch(str(n))) is inside, n
    for written in ("007", "-0", "00", "+3", "1.0", ""):
        assert not pattern.fullmatch(written) or written == "-0" and (low is None or low < 0)


def test_integer_bounds_round_inwards_and_huge_ones_bound_nothing() -> None:
    fractional = {"type": "integer", "exclusiveMinimum": 0.5, "maximum": 3.9}
    assert [schema_accepts(fractional, n) for n in range(5)] == [False, True, True, True, False]
    huge = {"type": "integer", "minimum": -1e300, "maximum": 1e300}
    assert gbnf.SchemaGrammar(huge).expression == "j-integer"
    assert schema_accepts({"type": "integer", "exclusiveMaximum": 0}, -4)


@pytest.mark.parametrize(("schema", "inside", "outside"), [
    ({"minimum": 0, "maximum": 2}, ["0", "0.5", "1.99", "2", "2.0"], ["-0.1", "2.01", "3", "1e1"]),
    ({"minimum": 1}, ["1", "1.5", "12345.75"], ["0.99", "-3", "0"]),
    ({"minimum": 3, "maximum": 3}, ["3", "3.00"], ["3.1", "2.9"]),
])
def test_number_bounds_from_zero_hold_exactly_their_numbers(
        schema: dict[str, Any], inside: list[str], outside: list[str]) -> None:
    bounded = {"type": "number", **schema}
    for text in inside:
        assert schema_accepts(bounded, None, raw=text), text
    for text in outside:
        assert not schema_accepts(bounded, None, raw=text), text


OBJECT = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "kind": {"enum": ["cat", "dog", None]}}, "required": ["name"],
    "additionalProperties": False}


@pytest.mark.parametrize(("value", "ok"), [
    ({"name": "Rex"}, True),
    ({"name": "Rex", "age": 3, "tags": ["a", "b"], "kind": "dog"}, True),
    ({"name": "Rex", "kind": None}, True),
    ({"name": "Rex", "tags": []}, True),
    ({"age": 3}, False),  # name is required
    ({"name": "Rex", "age": -1}, False),
    ({"name": "Rex", "tags": ["a", "b", "c"]}, False),
    ({"name": "Rex", "kind": "cow"}, False),
    ({"name": "Rex", "colour": "red"}, False),  # additionalProperties: false
    ({"name": 5}, False),
])
def test_objects_follow_their_properties(value: Any, ok: bool) -> None:
    assert schema_accepts(OBJECT, value) is ok


def test_optional_properties_keep_their_order_and_commas() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"},
                                               "b": {"type": "boolean"}},
              "additionalProperties": False}
    for value in ({}, {"a": 1}, {"b": True}, {"a": 1, "b": False}):
        assert schema_accepts(schema, value), value
    assert not schema_accepts(schema, None, raw='{"b": true, "a": 1}')
    assert not schema_accepts(schema, None, raw='{, "a": 1}')
    assert not schema_accepts(schema, None, raw='{"a": 1,}')


def test_many_optional_properties_keep_the_grammar_linear() -> None:
    names = [f"p{i}" for i in range(2000)]
    schema = {"type": "object", "properties": {n: {"type": "integer"} for n in names},
              "additionalProperties": False}
    grammar = gbnf.SchemaGrammar(schema)
    assert len(gbnf.render(grammar.expression, grammar.rules)) < 400_000
    assert schema_accepts({**schema, "properties": dict(list(schema["properties"].items())[:30])},
                          {"p3": 1, "p17": 2, "p29": 3})


def test_deep_nesting_is_a_400_not_a_crash() -> None:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(200):
        schema = {"type": "array", "items": schema}
    with pytest.raises(BadRequestError, match="nested more than 64 deep"):
        gbnf.SchemaGrammar(schema)


def test_open_objects_take_extra_keys_of_their_schema() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}},
              "additionalProperties": {"type": "number"}}
    assert schema_accepts(schema, {"id": 1, "x": 2.5, "y": -1e3})
    assert schema_accepts(schema, {"x": 2.5})
    assert not schema_accepts(schema, {"id": 1, "x": "text"})
    assert schema_accepts({"type": "object"}, {"any": [1, {"deep": None}], "b": "x"})


def test_references_anyof_const_and_tuples() -> None:
    tree = {"$ref": "#/$defs/node", "$defs": {"node": {
        "type": "object", "required": ["v"], "additionalProperties": False,
        "properties": {"v": {"type": "integer"},
                       "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}}
    assert schema_accepts(tree, {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]})
    assert not schema_accepts(tree, {"v": 1, "kids": [{"w": 2}]})
    either = {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Maybe"}
    assert schema_accepts(either, "x") and schema_accepts(either, None)
    assert not schema_accepts(either, 3)
    assert schema_accepts({"const": {"k": "é\"\n"}}, {"k": "é\"\n"}, raw='{"k":"é\\"\\n"}')
    pair = {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}
    assert schema_accepts(pair, [1, "a"]) and not schema_accepts(pair, [1, 2])
    assert schema_accepts({"type": ["integer", "null"]}, None)


def test_strings_lengths_and_formats() -> None:
    short = {"type": "string", "minLength": 2, "maxLength": 3}
    assert [schema_accepts(short, s) for s in ("a", "ab", "abc", "abcd")] == [
        False, True, True, False]
    assert schema_accepts({"type": "string"}, 'quote " and \\ and \u00e9 and \U0001F600')
    date = {"type": "string", "format": "date"}
    assert schema_accepts(date, "2026-11-26") and not schema_accepts(date, "26/11/2026")
    when = {"type": "string", "format": "date-time"}
    assert schema_accepts(when, "2026-11-26T09:42:00Z")
    assert schema_accepts(when, "2026-11-26T09:42:00.123+01:00")
    assert schema_accepts({"type": "string", "format": "email"}, "anything")  # as llama.cpp


@pytest.mark.parametrize(("schema", "named"), [
    ({"type": "string", "pattern": "^(?=a)a+$"}, "assert in the pattern"),
    ({"type": "string", "pattern": "^(a)\\1$"}, "groupref in the pattern"),
    ({"type": "string", "pattern": "^a\\bb$"}, "word boundary"),
    ({"type": "string", "pattern": "(?i)abc"}, "flags"),
    ({"type": "string", "pattern": "^a+$", "maxLength": 3}, "minLength or maxLength"),
    ({"type": "number", "minimum": -1}, "a number's bounds"),
    ({"type": "number", "maximum": 5}, "a number's bounds"),
    ({"type": "number", "minimum": 0.5}, "a number's bounds"),
    ({"type": "number", "exclusiveMinimum": 0}, "a number's bounds"),
    ({"not": {"type": "string"}}, "'not'"),
    ({"allOf": [{"type": "object"}, {"required": ["a"]}]}, "allOf"),
    ({"$ref": "#/$defs/missing"}, "reference"),
    ({"$ref": "https://example.com/schema"}, "reference"),
    ({"type": "object", "minProperties": 1}, "'minProperties'"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, "no integer"),
    (False, "allows nothing"),
])
def test_what_gbnf_cannot_enforce_is_a_400_naming_it(schema: Any, named: str) -> None:
    with pytest.raises(BadRequestError,
                       match=f"^invalid tools: .* no llguidance, .*{re.escape(named)}"):
        gbnf.SchemaGrammar(schema, "tools")


@pytest.mark.parametrize(("pattern", "good", "bad"), [
    ("^\\d{4}-\\d{2}-\\d{2}$", ["2026-11-26"], ["26-11-2026", "2026-11-26x", "x2026-11-26"]),
    ("^[A-Z]{3}$", ["OSL", "CDG"], ["osl", "OSLO", ""]),
    ("abc", ["abc", "xxabcyy"], ["ab", "acb"]),  # unanchored: anywhere
    ("^(cat|dog)s?$", ["cat", "dogs"], ["cow", "cats!"]),
    ("^[^0-9]+$", ["abc", "é ü"], ["a1", ""]),
    ("^\\w+@\\w+\\.com$", ["a_1@b.com"], ["a@b.org", "@b.com"]),
    ("^a.c$", ["abc", "a c"], ["ac", "abbc"]),
    ('^say "hi"\\\\$', ['say "hi"\\'], ['say hi\\']),  # JSON-escaped in the output
    ("^\\D\\S\\W$", ["a-!"], ["1-!", "a !", "a-b"]),
    ("^x{2,3}$", ["xx", "xxx"], ["x", "xxxx"]),
    ("^é+ü?$", ["éé", "éü"], ["ü", "e"]),
])
def test_patterns_hold_exactly_their_strings(pattern: str, good: list[str],
                                            bad: list[str]) -> None:
    schema = {"type": "string", "pattern": pattern}
    for text in good:
        assert re.search(pattern, text) and schema_accepts(schema, text), text
    for text in bad:
        assert not re.search(pattern, text) and not schema_accepts(schema, text), text


def test_a_pattern_allowing_controls_and_quotes_writes_them_escaped() -> None:
    schema = {"type": "string", "pattern": '^[\\s"]+$'}
    assert schema_accepts(schema, '\t "\n')
    assert schema_accepts(schema, None, raw='"\\t \\"\\n"')
    assert not schema_accepts(schema, None, raw='"\t"')  # a raw tab is not JSON


def tag_text_accepts(tag: str, text: str) -> bool:
    rules = gbnf.text_through(tag, "t")
    return matches(llguidance.grammar_from("gbnf", gbnf.render("t-0", rules)), text)


@settings(max_examples=150, deadline=None)
@given(tag=st.sampled_from(["</think>", "aab", "[/THINK]", "ééx", "<<"]),
       text=st.text(alphabet="ab<>/thinkTHK[]éx ", max_size=14))
def test_text_through_a_tag_ends_at_its_first_occurrence(tag: str, text: str) -> None:
    for candidate in (text, text + tag):
        first = candidate.find(tag)
        expected = first != -1 and first + len(tag) == len(candidate)
        assert tag_text_accepts(tag, candidate) is expected, candidate


def test_literals_escape_what_gbnf_reads_specially() -> None:
    text = 'a "quoted" \\ back\nslash\t\x01 é'
    assert matches(llguidance.grammar_from("gbnf", f"root ::= {gbnf.literal(text)}\n"), text)
