"""What a `format`, a forced tool's parameters or a user's grammar may demand: counts the
engine would expand (issue 15, item 1) are a 400 naming them, before any engine sees them."""

from __future__ import annotations

from typing import Any

import pytest

from pasture.errors import BadRequestError
from pasture.prompt import bounds, grammars
from pasture.prompt.tools import ToolCallFormat, ToolChoice
from pasture.server.pipeline.turn import Constraint

HUGE = 1_000_000_000


def refusal(fmt: Any = None, grammar: str | None = None) -> str:
    with pytest.raises(BadRequestError) as caught:
        Constraint.of(fmt, grammar, forced_call=False)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize("keyword", bounds.COUNT_KEYWORDS)
def test_each_count_keyword_over_the_limit_is_a_400_naming_it(keyword: str) -> None:
    kind = {"Items": "array", "Length": "string", "Properties": "object",
            "Contains": "array"}[keyword.removeprefix("min").removeprefix("max")]
    message = refusal({"type": kind, keyword: HUGE})
    assert message == f"invalid format: {keyword} {HUGE} is over the limit of {bounds.MAX_COUNT}"


def test_the_reported_hostile_array_is_refused_wherever_it_nests() -> None:
    hostile = {"type": "array", "minItems": HUGE, "items": {"type": "integer"}}
    assert "minItems 1000000000" in refusal(hostile)
    for wrapped in ({"type": "object", "properties": {"a": hostile}},
                    {"anyOf": [{"type": "string"}, hostile]},
                    {"$defs": {"h": hostile}, "$ref": "#/$defs/h"},
                    {"type": "array", "items": [hostile]},
                    {"type": "number", "minItems": 1e9}):  # a float count too
        assert "minItems 1000000000 is over the limit" in refusal(wrapped)


@pytest.mark.parametrize("pattern", ["^a{1000000}$", "^(ab){20000}$", "^(a{200}){200}$",
                                     "^x(?:[0-9]{5000}|y){3}$", "^\\p{L}{99999}$"])
def test_pattern_repetitions_past_the_limit_are_a_400_naming_the_pattern(pattern: str) -> None:
    message = refusal({"type": "string", "pattern": pattern})
    assert message.startswith("invalid format:") and "pattern '" in message, message
    assert str(bounds.MAX_COUNT) in message


def test_property_name_patterns_are_bounded_too() -> None:
    assert "pattern 'a{99999}'" in refusal({"type": "object",
                                           "patternProperties": {"a{99999}": {}}})


def test_counts_add_up_across_the_schema() -> None:
    many = {"type": "object", "properties": {
        f"p{i}": {"type": "string", "maxLength": bounds.MAX_COUNT} for i in range(11)}}
    assert "add up to more than 100000" in refusal(many)


def test_deep_and_large_schemas_are_refused() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(bounds.MAX_DEPTH + 2):
        deep = {"type": "array", "items": deep}
    assert "nested more than 64 deep" in refusal(deep)
    large = {"type": "object", "description": "x" * (bounds.MAX_SCHEMA_BYTES + 1)}
    assert "larger than 1024 KiB" in refusal(large)


@pytest.mark.parametrize("schema", [
    {"type": "array", "minItems": 1, "maxItems": bounds.MAX_COUNT, "items": {"type": "integer"}},
    {"type": "string", "maxLength": 4096},
    {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    {"type": "string", "pattern": "^(a{100}){100}$"},  # 10 000 copies: at the limit
    {"type": "object", "properties": {"minItems": {"type": "integer"}}, "minProperties": 1},
    {"const": {"minItems": HUGE}},  # a value, not a count
])
def test_schemas_real_structured_output_uses_pass(schema: dict[str, Any]) -> None:
    assert Constraint.of(schema, None, forced_call=False).schema is not None


def test_forced_tool_calls_bound_their_parameters() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"xs": {"type": "array", "minItems": HUGE}}}}}]
    fmt = ToolCallFormat("<tool_call>", "</tool_call>")
    with pytest.raises(BadRequestError) as caught:
        grammars.tool_call_grammar(fmt, tools, ToolChoice("required"))
    assert caught.value.message == ("invalid tools: minItems 1000000000 is over the limit "
                                    "of 10000")


@pytest.mark.parametrize("grammar, named", [
    ('root ::= "a"{100000}', "a repetition 100000"),
    ('root ::= [0-9]{3,50000}', "a repetition 50000"),
    ("%llguidance {}\nstart: /a{20000}/\n", "a repetition 20000"),
    ('%llguidance {}\nstart: %json {"type": "array", "minItems": 1000000000}\n',
     "minItems 1000000000"),
    ('%llguidance {}\nstart: %json {"type": "string", "pattern": "^a{99999}$"}\n',
     "pattern '^a{99999}$'"),
])
def test_user_grammars_bound_their_repetitions(grammar: str, named: str) -> None:
    message = refusal(grammar=grammar)
    assert message.startswith("invalid grammar: ") and named in message, message


def test_user_grammar_repetitions_add_up() -> None:
    grammar = "root ::= " + " ".join(['"a"{9000}'] * 12)
    assert "add up to more than 100000" in refusal(grammar=grammar)


def test_counts_inside_a_grammars_literals_are_text() -> None:
    assert Constraint.of(None, 'root ::= "{100000}" [0-9]{1,5}', False).grammar is not None
