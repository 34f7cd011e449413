"""A thinking model's thought through the official `openai` and `anthropic` SDKs.

SmolLM2 gets the suite's thinking template (`<think>` around `.Thinking`), which makes it
a thinking model; the 135M model does not think unprompted, so a grammar (Pasture's
extension, sent in `extra_body` as on `/api/chat`) makes it write a thought, then an
answer. The thought comes back where Ollama puts it: `message.reasoning` and
`delta.reasoning` on chat completions, a `reasoning` output item on Responses, `thinking`
blocks on Messages; a thought fed back in the history reaches the prompt again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import template_variant
from tests.integration.conftest import MODEL, RunningServer
from tests.integration.test_tool_calling import THINKING

GRAMMAR = 'root ::= "<think>" [a-z ]{3,30} "</think>" "\\n" [A-Za-z ]{3,30}'
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
FORCED = {"grammar": GRAMMAR}


@pytest.fixture(scope="module")
def thinker(server: RunningServer) -> Iterator[str]:
    with template_variant(server, "compat-thinking", THINKING) as name:
        yield name




def assert_split(thought: str, answer: str) -> None:
    assert thought.strip() and thought == thought.strip() and "think>" not in thought
    assert answer.strip() and "think>" not in answer


def test_chat_completion_returns_the_thought_in_reasoning(oai: openai.OpenAI,
                                                          thinker: str) -> None:
    reply = oai.chat.completions.create(model=thinker, messages=ASK, max_tokens=60,
                                        temperature=0, extra_body=FORCED)
    message = reply.choices[0].message
    assert_split(message.model_extra["reasoning"], message.content or "")
    chunks = list(oai.chat.completions.create(model=thinker, messages=ASK, max_tokens=60,
                                              temperature=0, extra_body=FORCED, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thought = "".join((d.model_extra or {}).get("reasoning") or "" for d in deltas)
    assert thought == message.model_extra["reasoning"]
    assert "".join(d.content or "" for d in deltas) == message.content
    hidden = oai.chat.completions.create(model=thinker, messages=ASK, max_tokens=60,
                                         temperature=0, extra_body=FORCED,
                                         reasoning_effort="none").choices[0].message
    assert "reasoning" not in (hidden.model_extra or {})
    assert hidden.content and "think>" not in hidden.content


def test_reasoning_in_the_history_reaches_the_prompt(oai: openai.OpenAI, thinker: str) -> None:
    def prompt_tokens(assistant: dict[str, str]) -> int:
        messages = [*ASK, {"role": "assistant", "content": "Sunny.", **assistant},
                    {"role": "user", "content": "Sure?"}]
        reply = oai.chat.completions.create(model=thinker, messages=messages, max_tokens=1)
        return reply.usage.prompt_tokens

    assert prompt_tokens({"reasoning": "I looked outside."}) > prompt_tokens({})


def test_reasoning_effort_on_a_model_that_cannot_think_is_bad_request(
        oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1,
                                    reasoning_effort="high")
    assert caught.value.body["message"] == f'"{MODEL}" does not support thinking'
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1,
                                    reasoning_effort="extreme")  # type: ignore[arg-type]
    assert "invalid reasoning value" in caught.value.body["message"]


def test_responses_return_a_reasoning_item_before_the_message(oai: openai.OpenAI,
                                                              thinker: str) -> None:
    reply = oai.responses.create(model=thinker, input="What is the weather in Paris?",
                                 max_output_tokens=60, temperature=0,
                                 reasoning={"effort": "medium"}, extra_body=FORCED)
    reasoning, message = reply.output
    assert reasoning.type == "reasoning" and message.type == "message"
    (summary,) = reasoning.summary
    assert_split(summary.text, reply.output_text)
    assert reply.reasoning.effort == "medium"
    with oai.responses.stream(model=thinker, input="What is the weather in Paris?",
                              max_output_tokens=60, temperature=0, extra_body=FORCED) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index(
        "response.output_text.delta")
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == summary.text
    assert final.output_text == reply.output_text
    # The reasoning item, fed back as the SDK returns it, gives the model its thought again.
    follow_up = [*final.output, {"role": "user", "content": "Sure?"}]
    with_thought = oai.responses.create(model=thinker, max_output_tokens=1, input=[
        {"role": "user", "content": "What is the weather in Paris?"}, *follow_up])
    without = oai.responses.create(model=thinker, max_output_tokens=1, input=[
        {"role": "user", "content": "What is the weather in Paris?"}, *follow_up[1:]])
    assert with_thought.usage.input_tokens > without.usage.input_tokens


def test_messages_return_a_thinking_block_before_the_text(claude: anthropic.Anthropic,
                                                          thinker: str) -> None:
    enabled = {"type": "enabled", "budget_tokens": 1024}
    extra = {**FORCED, "temperature": 0}
    reply = claude.messages.create(model=thinker, max_tokens=60, messages=ASK,
                                   thinking=enabled, extra_body=extra)
    thinking, text = reply.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert isinstance(text, anthropic.types.TextBlock)
    assert_split(thinking.thinking, text.text)
    with claude.messages.stream(model=thinker, max_tokens=60, messages=ASK, thinking=enabled,
                                extra_body=extra) as stream:
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "thinking_delta" in deltas and "text_delta" in deltas
    assert deltas.index("thinking_delta") < deltas.index("text_delta")
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == thinking.thinking and final.content[1].text == text.text
    hidden = claude.messages.create(model=thinker, max_tokens=60, messages=ASK,
                                    thinking={"type": "disabled"}, extra_body=extra)
    assert [block.type for block in hidden.content] == ["text"]


def test_an_effort_is_a_thinking_level_unless_thinking_says_otherwise(
        claude: anthropic.Anthropic, server: RunningServer) -> None:
    """As in Ollama: without `thinking`, `output_config.effort` is a thinking level."""
    levelled = '{{ if eq .ThinkLevel "high" }}Think long and hard.\n{{ end }}' + THINKING
    with template_variant(server, "compat-effort", levelled) as model:
        def prompt_tokens(**extra: Any) -> int:
            return claude.messages.create(model=model, max_tokens=1, messages=ASK,
                                          extra_body=extra).usage.input_tokens

        medium = prompt_tokens()  # a thinking model thinks by default, at medium
        assert prompt_tokens(output_config={"effort": "high"}) > medium
        assert prompt_tokens(output_config={"effort": "XHigh"}) > medium  # read as high
        assert prompt_tokens(output_config={"effort": "low"}) == medium
        assert prompt_tokens(output_config={"effort": "high"},
                             thinking={"type": "enabled", "budget_tokens": 1024}) == medium
    on_plain = claude.messages.create(model=MODEL, max_tokens=2, messages=ASK,
                                      extra_body={"output_config": {"effort": "high"}})
    assert [block.type for block in on_plain.content] == ["text"]  # dropped, not refused


def test_thinking_blocks_in_the_history_reach_the_prompt(claude: anthropic.Anthropic,
                                                         thinker: str) -> None:
    def input_tokens(blocks: list[dict[str, str]]) -> int:
        messages = [*ASK, {"role": "assistant", "content": [*blocks,
                                                            {"type": "text", "text": "Sunny."}]},
                    {"role": "user", "content": "Sure?"}]
        return claude.messages.create(model=thinker, max_tokens=1,
                                      messages=messages).usage.input_tokens

    thought = {"type": "thinking", "thinking": "I looked outside.", "signature": ""}
    assert input_tokens([thought]) > input_tokens([])


def test_thinking_on_a_model_that_cannot_think_is_dropped(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(model=MODEL, max_tokens=2, messages=ASK,
                                   thinking={"type": "enabled", "budget_tokens": 1024})
    assert [block.type for block in reply.content] == ["text"]
