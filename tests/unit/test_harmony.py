"""The harmony output parser (gpt-oss), with Ollama's `harmony/harmonyparser_test.go`
cases re-expressed as the Split (thinking, content, tool calls) Pasture answers with."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pasture.prompt.harmony import HarmonyParser, Header, harmony_names, parse_header
from pasture.prompt.reply import Split

WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
THOUGHT_AND_ANSWER = ("<|channel|>analysis<|message|>The user greets. Reply.<|end|>"
                      "<|start|>assistant<|channel|>final<|message|>Hello there!<|return|>")
CALL = ("<|channel|>analysis<|message|>Need the weather.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city":"Paris"}<|call|>')


def run(chunks: list[str], tools: list[dict[str, Any]] | None = None, *,
        keep_thinking: bool = True, prompt: str = "") -> Split:
    """Everything the parser gives for `chunks`, joined (ids dropped from calls)."""
    parser = HarmonyParser(tools, keep_thinking, prompt=prompt)
    total = Split()
    for split in [parser.feed(chunk) for chunk in chunks] + [parser.finish()]:
        total.content += split.content
        total.thinking += split.thinking
        total.tool_calls += [{**call, "id": "x"} for call in split.tool_calls]
    return total


@pytest.mark.parametrize(("raw", "want"), [
    ("assistant<|channel|>analysis", Header("assistant", "analysis")),
    ("assistant<|channel|>analysis to=functions.get_weather",
     Header("assistant", "analysis", "functions.get_weather")),
    ("assistant to=functions.get_weather<|channel|>analysis",
     Header("assistant", "analysis", "functions.get_weather")),
    ("to=functions.get_weather<|channel|>analysis",
     Header("tool", "analysis", "functions.get_weather")),
    ("assistant to=functions.get_weather abc<|channel|>analysis",
     Header("assistant", "analysis", "functions.get_weather")),
    ("assistant<|channel|>commentary to=functions.get_weather <|constrain|>json",
     Header("assistant", "commentary", "functions.get_weather")),
    ("assistant to=functions.get_weather<|channel|>commentary <|constrain|>json",
     Header("assistant", "commentary", "functions.get_weather")),
    ("assistant<|channel|>commentary to=functions.get_weather<|constrain|>json",
     Header("assistant", "commentary", "functions.get_weather")),
    ("assistant to=functions.get_weather<|channel|>commentary<|constrain|>json",
     Header("assistant", "commentary", "functions.get_weather")),
    ("user", Header("user")),
    ("", Header()),
])
def test_header(raw: str, want: Header) -> None:
    assert parse_header(raw) == want


@pytest.mark.parametrize(("chunks", "want"), [
    (["<|channel|>analysis<|message|>Thinking about the request<|end|>"],
     Split(thinking="Thinking about the request")),
    (["<|start|>user<|message|>Hello<|end|><|start|>assistant<|message|>Hi!<|end|>"],
     Split(content="HelloHi!")),
    (["<|start|>system<|message|><|end|>"], Split()),
    # a tag-like text that is not the end tag is content, even split where it looks like one
    (["<|start|>assistant<|channel|>final<|message|>test<|e", "xample|>more", "<|end|>"],
     Split(content="test<|example|>more")),
    # commentary without a recipient is the preamble users see
    (["<|channel|>commentary<|message|>Let me check.<|end|>"], Split(content="Let me check.")),
    # text between messages is dropped, as Ollama drops it
    (["<|channel|>final<|message|>A<|end|>stray<|start|>assistant<|channel|>final<|message|>B"],
     Split(content="AB")),
    # the model restating the message start it was prompted with
    (["<|start|>assistant<|channel|>final<|message|>Hi"], Split(content="Hi")),
    # `<|return|>` ends the answer: a held partial tag at the end is text after all
    (["<|channel|>final<|message|>4 <|re"], Split(content="4 <|re")),
])
def test_messages(chunks: list[str], want: Split) -> None:
    assert run(chunks) == want


def test_thought_and_answer_split_anywhere() -> None:
    want = Split(content="Hello there!", thinking="The user greets. Reply.")
    text = THOUGHT_AND_ANSWER
    for cut in range(1, len(text)):
        assert run([text[:cut], text[cut:]]) == want, cut
    assert run(list(text)) == want


def test_tool_call_split_anywhere() -> None:
    want = Split(thinking="Need the weather.", tool_calls=[{"id": "x", "function": {
        "index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}])
    for first, second in itertools.combinations(range(1, len(CALL)), 2):
        if second - first > 7:  # every pair of cuts close together (inside one tag)
            continue
        assert run([CALL[:first], CALL[first:second], CALL[second:]], WEATHER) == want
    assert run(list(CALL), WEATHER) == want


def test_content_streams_before_the_end() -> None:
    parser = HarmonyParser()
    assert parser.feed("<|channel|>final<|mess") == Split()
    assert parser.feed("age|>Hi") == Split(content="Hi")
    assert parser.feed(" there<|") == Split(content=" there")
    assert parser.feed("return|>") == Split()
    assert parser.finish() == Split()


def test_call_ends_at_finish_when_the_call_tag_stopped_generation() -> None:
    # `<|call|>` is end-of-generation for gpt-oss: the engine stops before sending it
    text = '<|channel|>commentary to=functions.get_weather<|message|>{"city": "Rome"}'
    got = run([text], WEATHER)
    assert got.tool_calls == [{"id": "x", "function": {
        "index": 0, "name": "get_weather", "arguments": {"city": "Rome"}}}]
    assert got.content == ""


def test_calls_get_ids_and_indexes() -> None:
    one = '<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{}<|call|>'
    parser = HarmonyParser(WEATHER)
    calls = parser.feed(one[len("<|start|>assistant"):] + one).tool_calls + \
        parser.finish().tool_calls
    assert [call["function"]["index"] for call in calls] == [0, 1]
    assert all(call["id"].startswith("call_") and len(call["id"]) == 13 for call in calls)
    assert calls[0]["id"] != calls[1]["id"]


def test_arguments_that_are_not_an_object_stay_visible() -> None:
    text = '<|channel|>commentary to=functions.get_weather<|message|>{"city": <|call|>'
    assert run([text], WEATHER) == Split(content='{"city": ')


def test_renamed_tool_is_answered_by_its_own_name() -> None:
    tools = [{"type": "function", "function": {"name": "get weather"}}]
    text = '<|channel|>commentary to=functions.get_weather<|message|>{"a": 1}<|call|>'
    assert run([text], tools).tool_calls[0]["function"]["name"] == "get weather"


def test_thinking_dropped_when_off() -> None:
    assert run([THOUGHT_AND_ANSWER], keep_thinking=False) == Split(content="Hello there!")


@pytest.mark.parametrize(("prompt", "want"), [
    ("<|start|>assistant<|channel|>final<|message|>", Split(content="more")),
    ("<|start|>assistant<|channel|>analysis<|message|>", Split(thinking="more")),
])
def test_prefilled_message(prompt: str, want: Split) -> None:
    assert run(["more<|end|>"], prompt=prompt) == want


@pytest.mark.parametrize(("name", "want"), [
    ("get weather", "get_weather"), ("get-weather", "get_weather"),
    ("get.weather", "get_weather"), ("get weather!", "get_weather"), ("a🫠bc", "abc"),
    ("🫠", "unnamed"), ("123", "_123"), ("$", "$"), ("𝓸𝓵𝓵𝓪𝓶𝓪", "𝓸𝓵𝓵𝓪𝓶𝓪"),
    ("ⓞⓛⓛⓐⓜⓐ123", "_123"),
])
def test_harmony_name(name: str, want: str) -> None:
    assert harmony_names([name]) == {want: name}


@pytest.mark.parametrize(("names", "want"), [
    (["get weather", "get weather"], ["get_weather", "get_weather_2"]),
    (["get weather", "get_weather", "get-weather", "something-different"],
     ["get_weather", "get_weather_2", "get_weather_3", "something_different"]),
    (["a", "a", "b", "a", "a", "b", "a"], ["a", "a_2", "b", "a_3", "a_4", "b_2", "a_5"]),
    (["browser.open", "python", "not.a.built-in.function", "browser.not_a_real_built_in"],
     ["browser.open", "python", "not_a_built_in_function", "browser_not_a_real_built_in"]),
])
def test_harmony_names_numbers_duplicates(names: list[str], want: list[str]) -> None:
    assert list(harmony_names(names)) == want
    assert list(harmony_names(names).values()) == names
