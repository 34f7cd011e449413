"""Thinking split out of streamed output; format/grammar/logprobs request checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pasture.errors import BadRequestError
from pasture.prompt import grammars
from pasture.prompt.reply import ReplyParser
from pasture.prompt.thinking import ThinkingParser, jinja_template_tags
from pasture.prompt.tools import ToolCallFormat, ToolCallParser
from pasture.runner import llama_server
from pasture.runner.base import TokenLogprob
from pasture.server.pipeline.generation import check_top_logprobs
from pasture.server.pipeline.reply import ReplyPlan
from pasture.server.pipeline.turn import Constraint


def split(parser: ThinkingParser, text: str, step: int) -> tuple[str, str]:
    thinking, content = [], []
    for i in range(0, len(text), step):
        more_thinking, more_content = parser.feed(text[i:i + step])
        thinking.append(more_thinking)
        content.append(more_content)
    more_thinking, more_content = parser.finish()
    return "".join(thinking) + more_thinking, "".join(content) + more_content


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_thinking_is_split_from_content_with_tags_across_chunks(step: int) -> None:
    text = "  <think>\n First, a < b and </thin is not a tag. \n</think>\n\nThe answer."
    assert split(ThinkingParser("<think>", "</think>"), text, step) == (
        "First, a < b and </thin is not a tag.", "The answer.")


def test_output_without_the_opening_tag_is_all_content() -> None:
    assert split(ThinkingParser("<think>", "</think>"), "Hi <think>x</think>", 1) == (
        "", "Hi <think>x</think>")


def test_a_prompt_that_opens_the_thought_starts_inside_it() -> None:
    parser = ThinkingParser("<think>", "</think>", prompt="<|im_start|>assistant\n<think>\n")
    assert split(parser, "step one</think>done", 3) == ("step one", "done")


def test_unfinished_thinking_stays_thinking() -> None:
    assert split(ThinkingParser("<think>", "</think>"), "<think>still going  ", 4) == (
        "still going", "")


def test_think_false_drops_the_thought_and_tools_see_only_content() -> None:
    tools = [{"type": "function", "function": {"name": "add"}}]
    reply = ReplyParser(ThinkingParser("<think>", "</think>"), keep_thinking=False,
                        tools=ToolCallParser(ToolCallFormat("<tool_call>"), tools))
    first = reply.feed('<think>{"name": "add"}</think><tool_call>{"name": "add", ')
    last = reply.feed('"arguments": {}}')
    rest = reply.finish()
    assert (first.thinking, first.content, first.tool_calls) == ("", "", [])
    assert [c["function"]["name"] for c in last.tool_calls + rest.tool_calls] == ["add"]


def test_jinja_thinking_tags_need_both_tags() -> None:
    assert jinja_template_tags("{{ '<think>' }}…{{ '</think>' }}") == ("<think>", "</think>")
    assert jinja_template_tags("<think> only") is None


@pytest.mark.parametrize(("schema", "construct"), [
    ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "not"),
    ({"type": "string", "pattern": "(?<=a)b"}, "look-around"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
     "example.com"),
])
def test_a_schema_the_engine_cannot_enforce_is_a_400_naming_it(schema: dict[str, object],
                                                                construct: str) -> None:
    with pytest.raises(BadRequestError, match="unsupported JSON schema") as caught:
        Constraint.of(schema, None, False)
    assert construct in caught.value.message


def test_supported_schemas_reach_the_engine_with_objects_closed_as_ollama_reads_them() -> None:
    schema = {"$defs": {"n": {"type": "object", "properties": {"v": {"type": "integer"}}}},
              "type": "object", "additionalProperties": True,
              "properties": {"n": {"$ref": "#/$defs/n"}, "properties": {
                  "type": "array", "items": {"properties": {"k": {"type": "string"}}}}}}
    sent = Constraint.of(schema, None, False).schema
    assert sent is not None
    assert sent["additionalProperties"] is True  # what the schema says is kept
    assert sent["$defs"]["n"]["additionalProperties"] is False
    assert sent["properties"]["properties"]["items"]["additionalProperties"] is False
    assert "additionalProperties" not in sent["properties"]["properties"]
    assert "additionalProperties" not in schema["$defs"]["n"]  # the request is not changed


LLGUIDANCE = SimpleNamespace(engine="default", llguidance=True)
GBNF_ONLY = SimpleNamespace(engine="cuda-sm90", llguidance=False)


def _engine_constraint(fmt: str | None, grammar: str | grammars.Constrained,
                       runner: SimpleNamespace) -> tuple[dict[str, object] | None, str | None]:
    """What reaches the engine for a user's grammar (checked) or a composed one."""
    if isinstance(grammar, str):
        return ReplyPlan(**vars(Constraint.of(fmt, grammar, False))).engine_constraint(runner)  # type: ignore[arg-type]
    Constraint.of(fmt, None, True)  # a composed grammar stands for a forced call
    return ReplyPlan(grammar=grammar).engine_constraint(runner)  # type: ignore[arg-type]


def test_grammar_checks() -> None:
    for runner in (LLGUIDANCE, GBNF_ONLY):
        assert _engine_constraint(None, 'root ::= "yes" | "no"', runner) == (
            None, 'root ::= "yes" | "no"')
        with pytest.raises(BadRequestError, match="cannot be combined"):
            _engine_constraint("json", 'root ::= "a"', runner)
        with pytest.raises(BadRequestError, match="invalid grammar: it is empty"):
            _engine_constraint(None, " ", runner)
    with pytest.raises(BadRequestError, match="invalid grammar: .*undefined"):
        _engine_constraint(None, "%llguidance {}\nstart: undefined_rule", LLGUIDANCE)
    lark = '%llguidance {}\nstart: "yes" | "no"'
    assert _engine_constraint(None, lark, LLGUIDANCE) == (None, lark)
    with pytest.raises(BadRequestError, match="engine build 'cuda-sm90', built without "
                                              "llguidance: write the grammar in GBNF"):
        _engine_constraint(None, lark, GBNF_ONLY)
    with pytest.raises(BadRequestError, match="grammar cannot be combined with a forced"):
        Constraint.of(None, 'root ::= "a"', True)


def test_composed_grammars_are_written_for_the_runners_build() -> None:
    answer = grammars.Constrained({"type": "object"}, thought=grammars.Thought("<a>", "</a>"))
    assert _engine_constraint(None, answer, LLGUIDANCE) == (None, answer.lark())
    assert _engine_constraint(None, answer, GBNF_ONLY) == (None, answer.gbnf())
    with pytest.raises(BadRequestError, match="cannot be combined"):
        _engine_constraint("json", answer, GBNF_ONLY)


def test_top_logprobs_bounds() -> None:
    assert check_top_logprobs(False, None) is None
    assert check_top_logprobs(True, None) == 0
    assert check_top_logprobs(True, 20) == 20
    assert check_top_logprobs(False, 5) is None
    for bad in (-1, 21):
        with pytest.raises(BadRequestError, match="between 0 and 20"):
            check_top_logprobs(True, bad)


def test_engine_probabilities_become_ollama_logprobs() -> None:
    chunk = {"completion_probabilities": [{
        "id": 5, "token": "Hi", "bytes": [72, 105], "logprob": -0.5,
        "top_logprobs": [{"id": 5, "token": "Hi", "bytes": [72, 105], "logprob": -0.5},
                         {"id": 6, "token": "Yo", "bytes": [89, 111], "logprob": -1.5}]}]}
    piece, done = llama_server.read_chunk({"content": "Hi", **chunk}, 1)
    assert done is None and piece is not None
    assert piece.logprobs == [TokenLogprob("Hi", -0.5, [72, 105],
                                           (TokenLogprob("Hi", -0.5, [72, 105]),))]
