"""Anthropic's Messages API (`POST /v1/messages`), translated onto the native internals.

`system` and the content blocks (text, base64 images, earlier `thinking` and `tool_use`,
`tool_result`) become an Ollama chat run through the generation pipeline; `max_tokens`,
`stop_sequences`, `temperature`, `top_p` and `top_k` become Ollama options and
`thinking` (or, without it, `output_config.effort`, as a level) its `think` (dropped, not
refused, for a model that cannot think, as in Ollama). The answer's blocks come in the
order the model wrote them: `thinking`, then text and `tool_use`. The API key and
`anthropic-version` header are not checked, as in Ollama. Beyond Ollama,
`/v1/messages/count_tokens` counts a request's prompt as the model would read it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pasture import options as opts
from pasture.api import anthropic as an
from pasture.errors import BadRequestError
from pasture.server.error_shapes import anthropic_error
from pasture.server.pipeline import images
from pasture.server.pipeline.generation import Finish, Generation, Piece, collect, prepend
from pasture.server.pipeline.turn import Turn, messages_of, options_of
from pasture.server.state import state_of
from pasture.server.streaming import event, sse_framing, stream, unless_disconnected

router = APIRouter()

_SKIPPED = ("tool_use", "tool_result", "redacted_thinking")  # carried otherwise, or opaque


def tool_result(block: an.ContentBlock) -> dict[str, Any]:
    """A `tool_result` block's text and images, as a tool message's fields."""
    content = block.content
    if not isinstance(content, list):
        return {"content": content or ""}
    texts = [str(part.get("text", "")) for part in content if part.get("type") == "text"]
    found = [images.from_source(part.get("source")) for part in content
             if part.get("type") == "image"]
    return {"content": "\n".join(texts), **({"images": found} if found else {})}


def turn(role: str, blocks: list[an.ContentBlock]) -> dict[str, Any]:
    """The text, image, thinking and tool_use blocks of one message as an Ollama message."""
    texts, found, thoughts = [], [], []
    for block in blocks:
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "image":
            found.append(images.from_source(block.source))
        elif block.type == "thinking":
            thoughts.append(block.thinking or "")
        elif block.type not in _SKIPPED:
            raise BadRequestError(f"unsupported content block type: {block.type}")
    entry: dict[str, Any] = {"role": role, "content": "\n".join(texts)}
    if found:
        entry["images"] = found
    if any(thoughts):
        entry["thinking"] = "\n".join(thoughts)
    uses = [b for b in blocks if b.type == "tool_use"]
    if uses:
        entry["tool_calls"] = [{"id": b.id, "function": {
            "name": b.name or "", "arguments": b.input or {}}} for b in uses]
    return entry


def chat_messages(body: an.CountTokensRequest) -> list[dict[str, Any]]:
    """`system` and the messages as Ollama chat messages."""
    messages: list[dict[str, Any]] = []
    if body.system:
        system = body.system if isinstance(body.system, str) else \
            "\n".join(block.text for block in body.system)
        messages.append({"role": "system", "content": system})
    tool_names: dict[str, str] = {}  # tool_use id → the tool it called
    for message in body.messages:
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
            continue
        results = [b for b in message.content if b.type == "tool_result"]
        for block in results:
            messages.append({"role": "tool", **tool_result(block),
                             "tool_call_id": block.tool_use_id,
                             **({"tool_name": tool_names[block.tool_use_id]}
                                if block.tool_use_id in tool_names else {})})
        rest = [b for b in message.content if b.type != "tool_result"]
        if rest or not results:
            entry = turn(message.role, rest)
            tool_names.update({call["id"]: call["function"]["name"]
                               for call in entry.get("tool_calls", []) if call["id"]})
            messages.append(entry)
    if not body.messages:
        raise BadRequestError("messages: at least one message is required")
    return messages


def think(thinking: dict[str, Any] | None,
          output_config: dict[str, Any] | None = None) -> bool | str | None:
    """`thinking: {"type": "enabled" | "disabled"}` as `think`; without it, as in Ollama,
    `output_config.effort` as a thinking level (`xhigh` read as `high`); else the model's
    default."""
    kind = (thinking or {}).get("type")
    if kind in ("enabled", "disabled"):
        return kind == "enabled"
    effort = (output_config or {}).get("effort")
    level = effort.strip().lower() if isinstance(effort, str) else ""
    level = "high" if level == "xhigh" else level
    return level if level in opts.THINK_LEVELS else None


def ollama_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Anthropic tools (`name`, `description`, `input_schema`) as Ollama's."""
    if not tools:
        return None
    return [{"type": "function", "function": {
        "name": tool.get("name"), "description": tool.get("description", ""),
        "parameters": tool.get("input_schema") or {"type": "object"}}} for tool in tools]


def tool_choice(choice: dict[str, Any] | None) -> Any:
    """Anthropic's `auto`/`any`/`tool`/`none` as OpenAI's `tool_choice`."""
    if choice is None:
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind in ("auto", "any", "none"):
        return "required" if kind == "any" else kind
    raise BadRequestError(f"tool_choice: unsupported type {kind!r}")


def tool_use(call: dict[str, Any]) -> an.ToolUseBlock:
    function = call["function"]
    return an.ToolUseBlock(id=call["id"], name=function["name"], input=function["arguments"])


def stop_reason(finish: Finish, called: bool = False) -> str:
    if called:
        return "tool_use"
    if finish.done_reason == "length":
        return "max_tokens"
    return "stop_sequence" if finish.stop_word else "end_turn"


def error_event(status: int, message: str) -> bytes:
    return event(anthropic_error(status, message), "error")


def frame(kind: str, **fields: Any) -> bytes:
    return event({"type": kind, **fields}, kind)


class Blocks:
    """A generation as content blocks, and the stream events that build them.

    A thinking or text block opens when the model starts writing one and closes when
    something else begins or the generation ends; each tool call is a whole block.
    `content` holds the blocks so far, for the message when not streaming.
    """

    def __init__(self) -> None:
        self.content: list[an.ThinkingBlock | an.TextBlock | an.ToolUseBlock] = []
        self._open = False  # the last block is a thinking or text block still being written

    def feed(self, piece: Piece) -> Iterator[bytes]:
        if piece.thinking:
            yield from self._write(an.ThinkingBlock, piece.thinking)
        if piece.text:
            yield from self._write(an.TextBlock, piece.text)
        for call in piece.tool_calls:
            yield from self._close()
            block = tool_use(call)
            self.content.append(block)
            index = len(self.content) - 1
            yield frame("content_block_start", index=index,
                        content_block=block.model_dump(mode="json") | {"input": {}})
            yield frame("content_block_delta", index=index, delta={
                "type": "input_json_delta", "partial_json": json.dumps(block.input)})
            yield frame("content_block_stop", index=index)

    def finish(self) -> Iterator[bytes]:
        if not self.content:  # an empty answer is one empty text block
            yield from self._write(an.TextBlock, "")
        yield from self._close()

    @property
    def called(self) -> bool:
        return any(isinstance(block, an.ToolUseBlock) for block in self.content)

    def _write(self, kind: type[an.ThinkingBlock] | type[an.TextBlock], text: str
               ) -> Iterator[bytes]:
        if not (self._open and isinstance(self.content[-1], kind)):
            yield from self._close()
            block = an.ThinkingBlock(thinking="") if kind is an.ThinkingBlock else \
                an.TextBlock(text="")
            self.content.append(block)
            self._open = True
            yield frame("content_block_start", index=len(self.content) - 1,
                        content_block=block.model_dump(mode="json"))
        if not text:
            return
        block = self.content[-1]
        if isinstance(block, an.ThinkingBlock):
            block.thinking += text
            delta = {"type": "thinking_delta", "thinking": text}
        else:
            assert isinstance(block, an.TextBlock)
            block.text += text
            delta = {"type": "text_delta", "text": text}
        yield frame("content_block_delta", index=len(self.content) - 1, delta=delta)

    def _close(self) -> Iterator[bytes]:
        if self._open:
            self._open = False
            yield frame("content_block_stop", index=len(self.content) - 1)


def prompt_turn(body: an.CountTokensRequest, **fields: Any) -> Turn:
    """The turn a request's prompt comes from; `fields` are the rest of the `Turn`."""
    return Turn(
        model=body.model, messages=messages_of(chat_messages(body)),
        tools=ollama_tools(body.tools), tool_choice=tool_choice(body.tool_choice),
        think=think(body.thinking, body.output_config), relax_think=True, **fields)


def messages_turn(body: an.MessagesRequest) -> Turn:
    if body.max_tokens < 1:
        raise BadRequestError("max_tokens: must be greater than or equal to 1")
    sampling = options_of(num_predict=body.max_tokens, stop=body.stop_sequences,
                          temperature=body.temperature, top_p=body.top_p, top_k=body.top_k)
    return prompt_turn(body, options=(sampling,), grammar=body.grammar)


def usage(finish: Finish) -> an.Usage:
    return an.Usage(input_tokens=finish.prompt_eval_count, output_tokens=finish.eval_count,
                    cache_read_input_tokens=finish.cached_tokens)


@router.post("/v1/messages/count_tokens")
async def count_tokens(body: an.CountTokensRequest, request: Request) -> Response:
    """The prompt's tokens, rendered and counted as `/v1/messages` would build it, but
    whole: a conversation too long for the context is counted, not cut."""
    generation = await Generation.open(state_of(request), prompt_turn(body, truncate=False))
    count = await generation.prompt_tokens()
    return JSONResponse(an.CountTokensResponse(input_tokens=count).model_dump(mode="json"))


@router.post("/v1/messages")
async def messages(body: an.MessagesRequest, request: Request) -> Response:
    generation = await Generation.open(state_of(request), messages_turn(body))
    message_id = "msg_" + secrets.token_hex(12)
    blocks = Blocks()

    if not body.stream:
        reply = await unless_disconnected(request, collect(generation.events()))
        finish = reply.finish
        list(blocks.feed(reply.piece()))
        list(blocks.finish())
        return JSONResponse(an.Message(
            id=message_id, model=generation.display, content=blocks.content,
            stop_reason=stop_reason(finish, blocks.called), stop_sequence=finish.stop_word,
            usage=usage(finish),
        ).model_dump(mode="json"))

    async def frames() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(generation.events()) as events:
            first = await anext(events)  # loads the model: failures here keep their status
            start = an.Message(id=message_id, model=generation.display,
                               usage=an.Usage(input_tokens=0, output_tokens=0))
            yield frame("message_start", message=start.model_dump(mode="json"))
            yield frame("ping")
            async for item in prepend(first, events):
                if isinstance(item, Piece):
                    for block_frame in blocks.feed(item):
                        yield block_frame
                    continue
                for block_frame in blocks.finish():
                    yield block_frame
                yield frame("message_delta",
                            delta={"stop_reason": stop_reason(item, blocks.called),
                                   "stop_sequence": item.stop_word},
                            usage=usage(item).model_dump(mode="json", exclude_none=True))
                yield frame("message_stop")

    return await stream(frames(), sse_framing(error_event), request)
