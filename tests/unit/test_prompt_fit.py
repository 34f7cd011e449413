"""Fitting a conversation into the context: dropping turns, cutting text, cutting tokens."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pasture.prompt.fit import (
    CUT_MARK,
    answer_room,
    cut_messages,
    cut_middle,
    cut_tokens,
    truncate_history,
)
from pasture.prompt.render import PromptTemplate, Think, parse_template

CORPUS = Path(__file__).parent / "templates"


def test_truncation_drops_oldest_non_system_messages() -> None:
    template = parse_template((CORPUS / "chatml.gotmpl").read_text())
    messages = [{"role": "system", "content": "sys"}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} " + "w " * 20}
        for i in range(6)]
    lengths: list[int] = []

    async def words(text: str) -> list[int]:
        lengths.append(len(text.split()))
        return list(range(len(text.split())))

    fitted = asyncio.run(truncate_history(messages, _render(template), words, 50))
    kept, start, prompt, tokens = fitted.kept, fitted.start, fitted.text, fitted.tokens
    assert prompt.startswith("<|im_start|>system\nsys<|im_end|>")
    assert "m5" in prompt and "m0" not in prompt
    assert kept[0]["content"] == "sys" and kept[1:] == messages[start:]
    assert len(tokens) == len(prompt.split()) <= 49  # the fitting render's own tokens
    assert len(tokens) == max(n for n in lengths if n <= 49)  # the most history that fits


def test_truncation_always_keeps_the_last_message() -> None:
    template = parse_template((CORPUS / "chatml.gotmpl").read_text())
    messages = [{"role": "user", "content": "old"}, {"role": "user", "content": "x " * 100},
                {"role": "assistant", "content": "huge " * 100}]

    fitted = asyncio.run(truncate_history(messages, _render(template), _words, 10))
    start, prompt = fitted.start, fitted.text
    assert "old" not in prompt and "huge" in prompt and start == 2


@pytest.mark.parametrize("count", [2, 3, 50, 800])
def test_truncation_renders_at_most_logarithmically_many_times(count: int) -> None:
    template = parse_template((CORPUS / "chatml.gotmpl").read_text())
    messages = [{"role": "system", "content": "sys"}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} " + "w " * 20}
        for i in range(count - 1)]
    renders = 0

    async def render(kept: list[dict[str, Any]]) -> str:
        nonlocal renders
        renders += 1
        return template.render(kept, None, Think())

    fitted = asyncio.run(truncate_history(messages, render, _words, 100))
    kept, start, prompt, tokens = fitted.kept, fitted.start, fitted.text, fitted.tokens
    assert renders <= math.ceil(math.log2(count)) + 2
    assert len(tokens) == len(prompt.split()) <= 99 and kept[0]["content"] == "sys"
    if start > 1:  # one message more would not have fitted
        longer = asyncio.run(render([messages[0], *messages[start - 1:]]))
        assert len(longer.split()) > 99


def test_truncation_leaves_room_for_one_generated_token() -> None:
    messages = [{"role": "user", "content": "a " * 10}, {"role": "user", "content": "b " * 10}]

    async def plain(kept: list[dict[str, Any]]) -> str:
        return " ".join(m["content"] for m in kept)

    fitted = asyncio.run(truncate_history(messages, plain, _words, 20))
    assert (fitted.start, len(fitted.tokens), fitted.whole) == (1, 10, 20)  # 20 would fill 20
    fitted = asyncio.run(truncate_history(messages, plain, _words, 21))
    assert (fitted.start, len(fitted.tokens)) == (0, 20)


def _render(template: PromptTemplate) -> Callable[[list[dict[str, Any]]], Awaitable[str]]:
    async def render(kept: list[dict[str, Any]]) -> str:
        return template.render(kept, None, Think())
    return render


async def _words(text: str) -> list[int]:
    """A tokenizer for truncation tests: one token a word."""
    return list(range(len(text.split())))


def test_cut_middle_keeps_the_head_and_the_tail() -> None:
    assert cut_middle("abcdefghij", 4) == "abc" + CUT_MARK + "hij"
    assert cut_middle("abcdefghij", 0) == "abcdefghij"
    assert cut_middle("abcdefghij", 99) == CUT_MARK


def test_cut_messages_cuts_the_longest_message_as_little_as_needed() -> None:
    kept = [{"role": "system", "content": "rules " * 10},
            {"role": "user", "content": " ".join(f"w{i}" for i in range(300))}]

    async def plain(messages: list[dict[str, Any]]) -> str:
        return " | ".join(m["content"] for m in messages)

    cut = asyncio.run(cut_messages(kept, plain, _words, 100))
    assert cut is not None
    messages, prompt, tokens, characters = cut
    assert messages[0] == kept[0]  # the system prompt is shorter: untouched
    user = messages[1]["content"]
    assert user.startswith("w0 w1 ") and user.endswith(" w298 w299") and CUT_MARK in user
    assert len(tokens) <= 100 and prompt == asyncio.run(plain(messages))
    # the bisection stops within 16 characters of the least cut that fits
    assert len(asyncio.run(plain([kept[0], {"role": "user", "content":
                                             cut_middle(kept[1]["content"],
                                                        characters - 17)}])).split()) > 100


def test_cut_messages_goes_on_to_the_next_longest_and_gives_up_on_framing() -> None:
    kept = [{"role": "system", "content": "s " * 60}, {"role": "user", "content": "u " * 80}]

    async def framed(messages: list[dict[str, Any]]) -> str:
        return "frame " * 30 + " ".join(m["content"] for m in messages)

    cut = asyncio.run(cut_messages(kept, framed, _words, 70))
    assert cut is not None
    messages, _, tokens, characters = cut
    assert messages[1]["content"] == CUT_MARK  # all of the longest went
    assert messages[0]["content"].startswith("s s") and len(tokens) <= 70
    assert characters > 160
    assert asyncio.run(cut_messages(kept, framed, _words, 20)) is None  # framing alone: 30


def test_cut_tokens_keeps_num_keep_at_the_head_and_the_end() -> None:
    assert cut_tokens(list(range(10)), 6, 2) == [0, 1, 6, 7, 8, 9]
    assert cut_tokens(list(range(4)), 6, 2) == [0, 1, 2, 3]


def test_answer_room_follows_num_predict_up_to_half_the_context() -> None:
    assert answer_room(4096, None) == 1024
    assert answer_room(4096, -1) == 1024
    assert answer_room(4096, 100) == 100
    assert answer_room(4096, 9999) == 2048
