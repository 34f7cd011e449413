"""Fitting a conversation into the model's context: which turns go, which text is cut.

Ollama drops the oldest non-system messages until the prompt fits, and if the last one
alone is too long its runner cuts the rendered prompt's tokens to half the window,
keeping `num_keep` at the head and the end. That cut can go through the template's
framing, the system prompt or the tool definitions. Pasture cuts text, not framing, and
keeps more:

1. drop the oldest non-system turns until the prompt fits `num_ctx - 1`, as Ollama does
   (`truncate_history`);
2. if the turns that must stay still do not fit, cut the middle out of the longest
   message's content (its head and tail stay, joined by `CUT_MARK`), then the next
   longest, until the prompt leaves `reserve` tokens for the answer (`cut_messages`);
3. only when the framing and tool definitions alone are too long, cut tokens as Ollama
   does (`cut_tokens`).

Every step renders and counts with functions passed in, so this module never talks to
an engine; a render or a count is the cost unit, and each step takes few of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

IMAGE_TOKENS = 768  # what Ollama assumes one image costs when truncating
CUT_MARK = "\n…\n"  # stands where the middle of a message was cut
# Bisection over the characters to cut stops when the range is this narrow: a render
# and a count per step, and a few characters are not worth one more.
_CUT_PRECISION = 16

Messages = list[dict[str, Any]]
Render = Callable[[Messages], Awaitable[str]]
Tokenize = Callable[[str], Awaitable[list[int]]]


@dataclass(frozen=True)
class Truncation:
    """What fitting cut from a prompt: its tokens before and after (the `truncated`
    field of a reply), and how (for the log line)."""

    prompt_tokens: int
    kept: int
    dropped_messages: int = 0
    cut_characters: int = 0
    cut_tokens: int = 0

    def wire(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "kept": self.kept}


@dataclass
class History:
    """The turns kept by `truncate_history` and the prompt they render to.

    `kept` is every system message before `start` and all messages from `start` on;
    `whole` is the token count of the whole conversation's prompt.
    """

    kept: Messages
    start: int
    text: str
    tokens: list[int]
    whole: int


def image_count(messages: Messages) -> int:
    return sum(len(m.get("images") or []) for m in messages)


async def truncate_history(messages: Messages, render: Render, tokenize: Tokenize,
                           num_ctx: int, image_tokens: int = 0) -> History:
    """Drop the oldest non-system messages until the prompt leaves room in `num_ctx` for
    at least one generated token; the last message always stays.

    Ollama (`chatPrompt`, server/prompt.go) renders and tokenizes once per dropped
    message, which is quadratic: 800 messages took 58 s. The cost falls as the start
    moves later, so the first start that fits is found by bisection: the whole history
    first (the common case, one render), then at most about log2(N) more. Ollama accepts
    a prompt of exactly `num_ctx` tokens and its runner shifts the context to generate;
    llama-server refuses a prompt that fills its context, so the budget is `num_ctx - 1`.
    """
    # the latest render that fits (or must be kept), and only it: a long history's token
    # lists are large; bisection only moves to earlier starts, so it is the first that fits
    best: History | None = None
    whole = 0

    async def fits(start: int, keep: bool = False) -> bool:
        nonlocal best, whole
        kept = [m for m in messages[:start] if m.get("role") == "system"] + messages[start:]
        prompt = await render(kept)
        tokens = await tokenize(prompt)
        count = len(tokens) + image_tokens * image_count(messages[start:])
        whole = whole or count
        ok = count <= num_ctx - 1
        if ok or keep:
            best = History(kept, start, prompt, tokens, whole)
        return ok

    last = len(messages) - 1
    if not await fits(0, keep=last <= 0):
        low, high = 1, last  # the first start that fits is in low..high (last if none)
        while low < high:
            middle = (low + high) // 2
            if await fits(middle):
                high = middle
            else:
                low = middle + 1
        if best is None:  # nothing before `last` fits and `last` was not tried: keep it
            await fits(last, keep=True)
    assert best is not None
    return best


def cut_middle(text: str, cut: int) -> str:
    """`text` without `cut` characters from its middle (the head keeps the odd one)."""
    if cut <= 0:
        return text
    left = len(text) - min(cut, len(text))
    head = left - left // 2
    return text[:head] + CUT_MARK + text[len(text) - left // 2:]


async def cut_messages(kept: Messages, render: Render, tokenize: Tokenize, limit: int,
                       image_tokens: int = 0) -> tuple[Messages, str, list[int], int] | None:
    """Cut the middle out of the longest contents of `kept` until the prompt's tokens
    (with `image_tokens` per image) are at most `limit`: the longest message first, by
    as few characters as bisection finds (within `_CUT_PRECISION`), then the next
    longest if even all of it is not enough.

    Returns the messages as cut, their prompt, its tokens and the characters cut; None
    when the prompt does not fit even with every content cut away.
    """
    images = image_tokens * image_count(kept)
    current = [dict(m) for m in kept]

    async def attempt(index: int, cut: int) -> tuple[str, list[int]] | None:
        trial = list(current)
        trial[index] = {**current[index], "content": cut_middle(kept[index]["content"], cut)}
        prompt = await render(trial)
        tokens = await tokenize(prompt)
        return (prompt, tokens) if len(tokens) + images <= limit else None

    order = sorted(range(len(kept)), key=lambda i: -len(kept[i].get("content") or ""))
    cut_total = 0
    for index in order:
        size = len(kept[index].get("content") or "")
        if not size:
            break
        best = await attempt(index, size)
        if best is None:  # not enough: cut all of it and go on to the next longest
            current[index]["content"] = cut_middle(kept[index]["content"], size)
            cut_total += size
            continue
        low, high = 1, size  # cutting `high` characters fits
        while high - low > _CUT_PRECISION:
            middle = (low + high) // 2
            if (found := await attempt(index, middle)) is not None:
                high, best = middle, found
            else:
                low = middle + 1
        current[index]["content"] = cut_middle(kept[index]["content"], high)
        return current, best[0], best[1], cut_total + high
    return None


def cut_tokens(tokens: list[int], limit: int, keep: int) -> list[int]:
    """Ollama's cut of an over-long prompt: the first `keep` tokens and the last ones, to
    `limit` tokens in all."""
    if len(tokens) <= limit:
        return tokens
    keep = max(0, min(keep, limit))
    return tokens[:keep] + tokens[len(tokens) - (limit - keep):]


def answer_room(num_ctx: int, num_predict: int | None) -> int:
    """How many tokens a cut prompt leaves for the answer: what `num_predict` asks, at
    most half the context; a quarter of it when the answer's length is open. (Ollama
    leaves half of what `num_keep` does not hold.)"""
    wanted = num_predict if num_predict is not None and num_predict > 0 else num_ctx // 4
    return max(1, min(wanted, num_ctx // 2))
