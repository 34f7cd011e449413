"""Grammars that leave room for a thought before the constrained answer.

Each grammar is run through llguidance itself (the library the engine enforces it with)
over a byte-level vocabulary, so "accepted" means the engine would let the model write
exactly that text and stop there. The GBNF written for engine builds without llguidance
is run the same way, read by llguidance's GBNF importer (the engine tests run it on
llama.cpp itself: tests/integration/test_engine_builds.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import llguidance
import pytest

from pasture.errors import BadRequestError
from pasture.prompt import grammars
from pasture.prompt.thinking import opens_thought
from pasture.prompt.tools import ToolCallFormat, ToolChoice

SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}},
          "required": ["answer"]}
THINK = grammars.Thought("<think>", "</think>")
OPENED = grammars.Thought("<think>", "</think>", opened=True)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {
        "type": "object", "required": ["city"],
        "properties": {"city": {"type": "string"}}}}}


class _Bytes:
    """A vocabulary of the 256 bytes and an end-of-sequence token."""

    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([i]) for i in range(256)] + [b"\xff<eos>"]
    special_token_ids = [256]

    def __call__(self, text: str | bytes) -> list[int]:
        return list(text.encode() if isinstance(text, str) else text)


TOKENIZER = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes()))


def matches(grammar: str, text: str) -> bool:
    """Whether the model may write `text` under `grammar` (llguidance's) and end there."""
    matcher = llguidance.LLMatcher(TOKENIZER, grammar, log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    return matcher.consume_tokens(list(text.encode())) and matcher.is_accepting()


Accepts = Callable[[grammars.Constrained, str], bool]


@pytest.fixture(params=["lark", "gbnf"])
def accepts(request: pytest.FixtureRequest) -> Accepts:
    """`matches` for a composed grammar, written for llguidance or in GBNF."""
    def check(answer: grammars.Constrained, text: str) -> bool:
        if request.param == "lark":
            return matches(answer.lark(), text)
        return matches(llguidance.grammar_from("gbnf", answer.gbnf()), text)
    return check


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    return grammars.closed_objects(schema)


@pytest.mark.parametrize(("text", "ok"), [
    ('{"answer": 4}', True),
    ('<think>two and two</think>{"answer": 4}', True),
    ('<think>\nfirst a </thin, then more\n</think>\n\n{"answer": 4}', True),
    ("<think></think>" + '{"answer": 4}', True),
    ('<think>no answer yet</think>four', False),
    ('<think>never closed {"answer": 4}', False),
    ('<think>a</think>{"answer": 4}</think>', False),
    ('{"answer": 4}<think>late</think>', False),
    ('{"answer": "four"}', False),
    ("four", False),
])
def test_a_format_may_follow_an_optional_thought(text: str, ok: bool,
                                                 accepts: Accepts) -> None:
    assert accepts(grammars.format_grammar(closed(SCHEMA), THINK), text) is ok


@pytest.mark.parametrize(("text", "ok"), [
    ('two and two</think>\n{"answer": 4}', True),
    ('</think>{"answer": 4}', True),
    ('{"answer": 4}', False),  # the thought the prompt opened must be closed first
    ('x</think>y</think>{"answer": 4}', False),
])
def test_a_thought_the_prompt_opened_must_close_before_the_answer(
        text: str, ok: bool, accepts: Accepts) -> None:
    assert accepts(grammars.format_grammar(closed(SCHEMA), OPENED), text) is ok


def test_without_a_thought_the_answer_comes_first(accepts: Accepts) -> None:
    answer = grammars.Constrained(closed(SCHEMA))
    assert accepts(answer, '{"answer": 4}')
    assert not accepts(answer, '<think>x</think>{"answer": 4}')


def test_the_models_own_tags_are_used_and_escaped(accepts: Accepts) -> None:
    thought = grammars.Thought('[THINK "a"]', "[/THINK]")
    grammar = grammars.format_grammar(closed(SCHEMA), thought)
    assert accepts(grammar, '[THINK "a"]hmm[/THINK]{"answer": 1}')
    assert not accepts(grammar, '<think>hmm</think>{"answer": 1}')


@pytest.mark.parametrize("thought", [THINK, OPENED])
def test_a_forced_tool_call_may_follow_a_thought(thought: grammars.Thought,
                                                 accepts: Accepts) -> None:
    grammar = grammars.tool_call_grammar(ToolCallFormat("<tool_call>", "</tool_call>"),
                                         [WEATHER], ToolChoice("required"), thought)
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    opening = "" if thought.opened else "<think>"
    assert accepts(grammar, f"{opening}Oslo, then.</think>\n{call}")
    assert not accepts(grammar, f"{opening}Oslo, then.</think>\nIt is sunny.")
    assert accepts(grammar, call) is not thought.opened


def test_a_bare_json_call_after_a_thought_still_parses_as_a_call(accepts: Accepts) -> None:
    grammar = grammars.tool_call_grammar(ToolCallFormat(), [WEATHER],
                                         ToolChoice("required"), THINK)
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert accepts(grammar, "<think>a city</think>\n" + json.dumps(call))
    assert accepts(grammar, json.dumps(call))


def test_format_schema_reads_ollamas_format_values() -> None:
    assert grammars.format_schema(None) is None and grammars.format_schema("") is None
    assert grammars.format_schema("json") == {"type": "object"}
    assert grammars.format_schema(SCHEMA)["additionalProperties"] is False
    with pytest.raises(BadRequestError, match="invalid format"):
        grammars.format_schema("yaml")


def test_the_prompt_opens_the_thought_only_when_it_ends_with_the_tag() -> None:
    assert opens_thought("<|im_start|>assistant\n<think>\n", "<think>")
    assert not opens_thought("<think>done</think>\n<|im_start|>assistant\n", "<think>")
