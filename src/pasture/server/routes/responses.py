"""OpenAI's Responses API (`POST /v1/responses`), stateless, as in Ollama.

`instructions` and the `input` items (messages with text and images, earlier
`function_call`s and their `function_call_output`s, `reasoning`) become an Ollama chat
run through the generation pipeline like every other chat; function `tools` and `tool_choice`
work as on chat completions, and `reasoning.effort` is Ollama's `think`. The answer is a
list of output items in the order the model wrote them: its thought as a `reasoning`
item, a `message`, `function_call`s. Streaming sends the typed SSE events the `openai`
SDK's `responses.stream()` consumes, each with a `sequence_number`; a non-streaming
answer is the same items, collected.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pasture.api import openai as oa
from pasture.errors import BadRequestError
from pasture.server.pipeline import images
from pasture.server.pipeline.generation import Finish, Generation, Piece, collect, prepend
from pasture.server.pipeline.turn import Turn, messages_of, options_of
from pasture.server.routes.openai_wire import (
    OPENAI_DEFAULTS,
    dump,
    error_event,
    new_id,
    now,
    ollama_tool_call,
    think_from_effort,
)
from pasture.server.state import state_of
from pasture.server.streaming import event, sse_framing, stream, unless_disconnected

router = APIRouter()

_TEXT_PARTS = ("input_text", "output_text", "text")


# ----- translation into Ollama terms ------------------------------------------------------


def _content(content: Any) -> tuple[str, list[str]]:
    """A message's (or a function output's) text and images (base64)."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise BadRequestError("invalid input: message content must be a string or a list")
    texts, found = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            texts.append(str(part.get("text", "")))
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            found.append(images.from_url(part["image_url"]))
        else:
            raise BadRequestError(f"unsupported content part type: {kind}")
    return "\n".join(texts), found


def _message(role: str, content: Any) -> dict[str, Any]:
    text, found = _content(content)
    return {"role": role, "content": text, **({"images": found} if found else {})}


def input_messages(body: oa.ResponsesRequest) -> list[dict[str, Any]]:
    """`instructions` and `input` as Ollama chat messages.

    As in Ollama, a `function_call` joins the assistant turn before it (or starts one),
    and a `reasoning` item's text becomes the `thinking` of the assistant turn after it.
    """
    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    if isinstance(body.input, str):
        return [*messages, {"role": "user", "content": body.input}]
    thought = ""  # from a reasoning item, waiting for its assistant turn
    names: dict[str, str] = {}  # call_id → the function it called
    for item in body.input:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = str(item.get("role", "user")).lower()  # as `Message` reads it
            messages.append(_message("system" if role == "developer" else role,
                                     item.get("content", "")))
        elif kind == "function_call":
            call = ollama_tool_call({"id": item.get("call_id"), "function": {
                "name": item.get("name", ""), "arguments": item.get("arguments")}})
            names[str(item.get("call_id"))] = call["function"]["name"]
            if not messages or messages[-1]["role"] != "assistant":
                messages.append({"role": "assistant", "content": ""})
            messages[-1].setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            call_id = str(item.get("call_id"))
            message = _message("tool", item.get("output", ""))
            messages.append({**message, "tool_call_id": call_id,
                             **({"tool_name": names[call_id]} if call_id in names else {})})
        elif kind == "reasoning":
            summary = item.get("summary") or []
            thought = item.get("encrypted_content") or "\n".join(
                str(part.get("text", "")) for part in summary if isinstance(part, dict))
            continue
        else:
            raise BadRequestError(f"unsupported input item type: {kind}")
        if thought and messages[-1]["role"] == "assistant":
            messages[-1]["thinking"], thought = thought, ""
    if thought:
        messages.append({"role": "assistant", "content": "", "thinking": thought})
    if not messages:
        raise BadRequestError("input must not be empty")
    return messages


def function_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Responses function tools (`name`, `parameters` at the top) as Ollama's."""
    converted = []
    for tool in tools or []:
        if tool.get("type") != "function":
            raise BadRequestError(f"unsupported tool type: {tool.get('type')!r}; only function "
                                  "tools are supported")
        converted.append({"type": "function", "function": {
            "name": tool.get("name"), "description": tool.get("description") or "",
            "parameters": tool.get("parameters") or {"type": "object"}}})
    return converted or None


def chat_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """Responses' `tool_choice` as chat completions' (a named function is nested there)."""
    if not isinstance(choice, dict):
        return choice
    if choice.get("type") != "function":
        raise BadRequestError(f"unsupported tool_choice type: {choice.get('type')!r}")
    return {"type": "function", "function": {"name": choice.get("name")}}


def text_format(text: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """`text.format` as Ollama's `format`."""
    fmt = (text or {}).get("format") or {}
    kind = fmt.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"]
    raise BadRequestError("invalid text.format: expected text, json_object or json_schema "
                          "with a schema")


# ----- output items and their events ------------------------------------------------------


class OutputItems:
    """A generation as Responses output items, and the SSE events that announce them.

    Items open as the model starts writing them (a thought, text, a call) and close when
    something else begins or the generation ends; then `final` is the whole response,
    built by `response(status, items, finish)`.
    """

    def __init__(self, response: Callable[[str, list[oa.OutputItem], Finish | None],
                                          oa.Response]) -> None:
        self._response = response
        self.items: list[oa.OutputItem] = []
        self.final: oa.Response | None = None
        self.sequence = 0
        self._open: str | None = None  # "reasoning" or "message": the item being written
        self._text = ""

    def frame(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event(payload, kind)

    def start(self) -> Iterator[bytes]:
        response = dump(self._response("in_progress", [], None))
        yield self.frame("response.created", response=response)
        yield self.frame("response.in_progress", response=response)

    def feed(self, piece: Piece) -> Iterator[bytes]:
        if piece.thinking:
            yield from self._write("reasoning", piece.thinking)
        if piece.text:
            yield from self._write("message", piece.text)
        for call in piece.tool_calls:
            yield from self._close()
            function = call["function"]
            item = oa.FunctionCall(id=new_id("fc_"), call_id=call["id"],
                                   name=function["name"],
                                   arguments=json.dumps(function["arguments"]))
            where = {"item_id": item.id, "output_index": len(self.items)}
            self.items.append(item)
            yield self.frame("response.output_item.added", output_index=where["output_index"],
                             item=dump(item.model_copy(update={"status": "in_progress",
                                                               "arguments": ""})))
            yield self.frame("response.function_call_arguments.delta", **where,
                             delta=item.arguments)
            yield self.frame("response.function_call_arguments.done", **where,
                             arguments=item.arguments)
            yield self.frame("response.output_item.done", output_index=where["output_index"],
                             item=dump(item))

    def finish(self, finish: Finish) -> Iterator[bytes]:
        status = "incomplete" if finish.done_reason == "length" else "completed"
        if not any(item.type in ("message", "function_call") for item in self.items):
            yield from self._write("message", "")  # an answer is a message, if only an empty one
        yield from self._close(status)
        self.final = self._response(status, self.items, finish)
        yield self.frame(f"response.{status}", response=dump(self.final))

    def _write(self, kind: str, text: str) -> Iterator[bytes]:
        """Add `text` to the open item of `kind`, opening one first if need be."""
        if self._open != kind:
            yield from self._close()
            yield from self._begin(kind)
        self._text += text
        where = {"item_id": self.items[-1].id, "output_index": len(self.items) - 1}
        if kind == "reasoning":
            yield self.frame("response.reasoning_summary_text.delta", **where, summary_index=0,
                             delta=text)
        elif text:
            yield self.frame("response.output_text.delta", **where, content_index=0,
                             delta=text, logprobs=[])

    def _begin(self, kind: str) -> Iterator[bytes]:
        item: oa.OutputItem
        if kind == "reasoning":
            item = oa.ReasoningItem(id=new_id("rs_"), summary=[])
        else:
            item = oa.OutputMessage(id=new_id("msg_"), status="in_progress", content=[])
        self.items.append(item)
        self._open, self._text = kind, ""
        index = len(self.items) - 1
        yield self.frame("response.output_item.added", output_index=index, item=dump(item))
        if kind == "message":
            yield self.frame("response.content_part.added", item_id=item.id, output_index=index,
                             content_index=0, part=dump(oa.OutputText(text="")))

    def _close(self, status: str = "completed") -> Iterator[bytes]:
        """Finish the open item: its final text in place, its `done` events."""
        if self._open is None:
            return
        index, text = len(self.items) - 1, self._text
        where = {"item_id": self.items[index].id, "output_index": index}
        if self._open == "reasoning":
            item: oa.OutputItem = oa.ReasoningItem(id=where["item_id"], encrypted_content=text,
                                                   summary=[oa.SummaryText(text=text)])
            yield self.frame("response.reasoning_summary_text.done", **where, summary_index=0,
                             text=text)
        else:
            part = oa.OutputText(text=text)
            item = oa.OutputMessage(id=where["item_id"], status=status, content=[part])
            yield self.frame("response.output_text.done", **where, content_index=0, text=text,
                             logprobs=[])
            yield self.frame("response.content_part.done", **where, content_index=0,
                             part=dump(part))
        self.items[index] = item
        self._open = None
        yield self.frame("response.output_item.done", output_index=index, item=dump(item))


# ----- the route --------------------------------------------------------------------------


def responses_turn(body: oa.ResponsesRequest) -> Turn:
    return Turn(
        model=body.model, messages=messages_of(input_messages(body)),
        options=(OPENAI_DEFAULTS, body.options, options_of(
            num_predict=body.max_output_tokens, temperature=body.temperature,
            top_p=body.top_p)),
        tools=function_tools(body.tools), tool_choice=chat_tool_choice(body.tool_choice),
        think=think_from_effort(body.reasoning.effort if body.reasoning else None),
        format=text_format(body.text), grammar=body.grammar)


@router.post("/v1/responses")
async def responses(body: oa.ResponsesRequest, request: Request) -> Response:
    generation = await Generation.open(state_of(request), responses_turn(body))
    response_id, created = new_id("resp_"), now()

    def response(status: str, output: list[oa.OutputItem], finish: Finish | None
                 ) -> oa.Response:
        return oa.Response(
            id=response_id, created_at=created, status=status, model=generation.display,
            output=list(output), instructions=body.instructions,
            max_output_tokens=body.max_output_tokens,
            temperature=generation.options.get("temperature"),
            top_p=generation.options.get("top_p"),
            text=body.text or {"format": {"type": "text"}},
            tools=body.tools or [], tool_choice=body.tool_choice or "auto",
            reasoning=body.reasoning, metadata=body.metadata or {},
            incomplete_details={"reason": "max_output_tokens"}
            if status == "incomplete" else None,
            usage=oa.ResponseUsage(
                input_tokens=finish.prompt_eval_count, output_tokens=finish.eval_count,
                total_tokens=finish.prompt_eval_count + finish.eval_count,
                stats=finish.stats(),
            ) if finish else None,
        )

    output = OutputItems(response)
    if not body.stream:
        reply = await unless_disconnected(request, collect(generation.events()))
        list(output.feed(reply.piece()))
        list(output.finish(reply.finish))
        return JSONResponse(dump(output.final))

    async def frames() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(generation.events()) as events:
            first = await anext(events)  # loads the model: failures here keep their status
            for frame in output.start():
                yield frame
            async for item in prepend(first, events):
                for frame in (output.feed(item) if isinstance(item, Piece)
                              else output.finish(item)):
                    yield frame

    return await stream(frames(), sse_framing(error_event), request)
