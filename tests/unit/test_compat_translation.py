"""The compatibility layers' translations into Ollama terms and back, without a model.

Requests: images (data URIs, Anthropic sources) reach the native messages as base64
that decodes to the original bytes; thoughts and calls in the history become the native
`thinking` and `tool_calls`. Answers: a generation's pieces become OpenAI's legacy
logprobs, Responses output items and Anthropic content blocks, with their stream events.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pasture.api import anthropic as an
from pasture.api import openai as oa
from pasture.config import Settings
from pasture.errors import BadRequestError, ImageTooLargeError
from pasture.runner.base import TokenLogprob
from pasture.server.pipeline import images
from pasture.server.pipeline.generation import Finish, Piece
from pasture.server.routes import anthropic, openai, openai_wire, responses

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
B64 = base64.b64encode(PNG).decode()
CALL = {"id": "call_abc", "function": {"index": 0, "name": "get_weather",
                                       "arguments": {"city": "Paris"}}}
DONE = Finish("stop", prompt_eval_count=10, eval_count=5)


def sse(frames: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) for each SSE frame."""
    parsed = []
    for frame in frames:
        head, data = frame.decode().strip().split("\n")
        parsed.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return parsed


# ----- images -----------------------------------------------------------------------------


def test_image_urls_unwrap_to_base64_and_web_urls_are_refused() -> None:
    assert images.from_url(f"data:image/png;base64,{B64}") == B64
    assert images.from_url(f"data:;base64,{B64}") == B64
    assert images.from_url(B64) == B64  # bare base64, as /api/chat takes it
    with pytest.raises(BadRequestError, match="offline"):
        images.from_url("https://example.com/cat.png")
    with pytest.raises(BadRequestError, match="invalid image input"):
        images.from_url("data:text/plain,hello")
    assert images.from_source({"type": "base64", "media_type": "image/png", "data": B64}) == B64
    with pytest.raises(BadRequestError, match="offline"):
        images.from_source({"type": "url", "url": "https://example.com/cat.png"})
    with pytest.raises(BadRequestError, match="Only base64"):
        images.from_source({"type": "file", "file_id": "f"})


def test_decode_checks_size_before_decoding_and_refuses_bad_base64() -> None:
    assert images.decode(B64, len(PNG)) == PNG
    assert images.decode(B64[:20] + "\n" + B64[20:], len(PNG)) == PNG  # as Go's decoder
    with pytest.raises(ImageTooLargeError) as caught:
        images.decode(B64, len(PNG) - 1)
    assert caught.value.status == 413
    assert caught.value.message == (f"image too large: {len(PNG)} bytes, over the limit of "
                                    f"{len(PNG) - 1} bytes (PASTURE_MAX_IMAGE_BYTES)")
    for bad in ("abc", "ab!=", "aGk=aGk=", "", "\u00a1L\u0013P\u0088\U0006037e\u00eag"):
        with pytest.raises(BadRequestError, match="invalid image input"):
            images.decode(bad, 100)


def test_max_image_bytes_setting_defaults_to_20_mib() -> None:
    assert Settings.from_env({}).max_image_bytes == 20 << 20
    assert Settings.from_env({"PASTURE_MAX_IMAGE_BYTES": "1MiB"}).max_image_bytes == 1 << 20
    assert Settings.from_env({"OLLAMA_MAX_IMAGE_BYTES": "5000"}).max_image_bytes == 5000


def test_openai_image_parts_and_reasoning_reach_the_native_messages() -> None:
    messages = openai.chat_messages([
        oa.ChatMessage(role="user", content=[
            oa.ContentPart(type="text", text="What is this?"),
            oa.ContentPart(type="image_url", image_url=oa.ImageURL(
                url=f"data:image/png;base64,{B64}"))]),
        oa.ChatMessage(role="assistant", content="A cat.", reasoning="It has whiskers."),
    ])
    assert messages[0] == {"role": "user", "content": "What is this?", "images": [B64]}
    assert base64.b64decode(messages[0]["images"][0]) == PNG
    assert messages[1] == {"role": "assistant", "content": "A cat.",
                           "thinking": "It has whiskers."}
    with pytest.raises(BadRequestError, match="offline"):
        openai.chat_messages([oa.ChatMessage(role="user", content=[oa.ContentPart(
            type="image_url", image_url="http://example.com/a.png")])])


def test_anthropic_images_thinking_and_tool_results_reach_the_native_messages() -> None:
    image = {"type": "base64", "media_type": "image/png", "data": B64}
    body = an.MessagesRequest.model_validate({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "image", "source": image},
                                     {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Whiskers.", "signature": ""},
            {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"x": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "a cat"},
                                                  {"type": "image", "source": image}]}]},
    ]})
    user, assistant, result = anthropic.chat_messages(body)
    assert user == {"role": "user", "content": "What is this?", "images": [B64]}
    assert base64.b64decode(user["images"][0]) == PNG
    assert assistant == {"role": "assistant", "content": "", "thinking": "Whiskers.",
                         "tool_calls": [{"id": "toolu_1", "function": {
                             "name": "look", "arguments": {"x": 1}}}]}
    assert result == {"role": "tool", "content": "a cat", "images": [B64],
                      "tool_call_id": "toolu_1", "tool_name": "look"}
    assert [anthropic.think(t) for t in ({"type": "enabled", "budget_tokens": 1024},
                                         {"type": "disabled"}, None)] == [True, False, None]


# ----- reasoning effort and Responses input -----------------------------------------------


def test_reasoning_effort_maps_onto_think_as_in_ollama() -> None:
    efforts = ["none", "minimal", "low", "medium", "high", "max", "xhigh", "ultra", None, ""]
    assert [openai_wire.think_from_effort(e) for e in efforts] == [
        False, "low", "low", "medium", "high", "max", "max", "max", None, None]
    with pytest.raises(BadRequestError, match='invalid reasoning value: "extreme"'):
        openai_wire.think_from_effort("extreme")


def test_responses_input_items_become_a_chat() -> None:
    body = oa.ResponsesRequest.model_validate({"model": "m", "instructions": "Be brief.",
                                               "input": [
        {"role": "user", "content": [
            {"type": "input_text", "text": "Weather?"},
            {"type": "input_image", "image_url": f"data:image/jpeg;base64,{B64}"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [
            {"type": "summary_text", "text": "Call the tool."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Sunny."}]},
    ]})
    assert responses.input_messages(body) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?", "images": [B64]},
        {"role": "assistant", "content": "", "thinking": "Call the tool.", "tool_calls": [
            {"id": "call_1", "function": {"name": "get_weather",
                                          "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1",
         "tool_name": "get_weather"},
        {"role": "assistant", "content": "Sunny."},
    ]
    bad = oa.ResponsesRequest.model_validate({"model": "m", "input": [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]})
    with pytest.raises(BadRequestError, match="JSON object"):
        responses.input_messages(bad)


def test_responses_tools_and_tool_choice_take_the_chat_shape() -> None:
    tool = {"type": "function", "name": "f", "description": "d", "strict": True,
            "parameters": {"type": "object", "properties": {}}}
    assert responses.function_tools([tool]) == [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(BadRequestError, match="only function tools"):
        responses.function_tools([{"type": "web_search"}])
    assert responses.chat_tool_choice("required") == "required"
    assert responses.chat_tool_choice({"type": "function", "name": "f"}) == {
        "type": "function", "function": {"name": "f"}}
    with pytest.raises(BadRequestError):
        responses.chat_tool_choice({"type": "file_search"})


# ----- answers ----------------------------------------------------------------------------


def test_legacy_logprobs_have_tokens_offsets_and_top_alternatives() -> None:
    entries = [TokenLogprob("He", -0.5, [72, 101], (TokenLogprob("He", -0.5, []),
                                                    TokenLogprob("Hi", -1.5, []))),
               TokenLogprob("llo", -0.25, [], (TokenLogprob("llo", -0.25, []),
                                               TokenLogprob("y", -2.0, [])))]
    assert openai.legacy_logprobs(entries, offset=3) == {
        "tokens": ["He", "llo"], "token_logprobs": [-0.5, -0.25],
        "top_logprobs": [{"He": -0.5, "Hi": -1.5}, {"llo": -0.25, "y": -2.0}],
        "text_offset": [3, 5]}


def _output_items() -> responses.OutputItems:
    def response(status: str, output: list[oa.OutputItem], finish: Finish | None
                 ) -> oa.Response:
        return oa.Response(id="resp_1", created_at=0, status=status, model="m",
                           output=list(output))

    return responses.OutputItems(response)


def test_responses_stream_opens_a_reasoning_item_then_a_message() -> None:
    items = _output_items()
    frames = [*items.start(), *items.feed(Piece("", thinking="Hmm")),
              *items.feed(Piece("Hi", thinking=" ok")), *items.feed(Piece(" there")),
              *items.finish(DONE)]
    events = sse(frames)
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert [payload["sequence_number"] for _, payload in events] == list(range(len(events)))
    output = events[-1][1]["response"]["output"]
    assert output[0]["type"] == "reasoning" and output[0]["summary"] == [
        {"type": "summary_text", "text": "Hmm ok"}]
    assert output[0]["encrypted_content"] == "Hmm ok"
    assert output[1]["type"] == "message" and output[1]["content"][0]["text"] == "Hi there"
    assert [p["output_index"] for n, p in events if n == "response.output_item.added"] == [0, 1]
    assert items.final is not None and items.final.status == "completed"


def test_responses_stream_announces_function_calls() -> None:
    items = _output_items()
    events = sse([*items.feed(Piece("", tool_calls=[CALL])),
                  *items.finish(Finish("length", prompt_eval_count=1, eval_count=1))])
    assert [name for name, _ in events] == [
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.incomplete"]
    added, delta = events[0][1], events[1][1]
    assert added["item"]["status"] == "in_progress" and added["item"]["arguments"] == ""
    assert json.loads(delta["delta"]) == {"city": "Paris"}
    (call,) = events[-1][1]["response"]["output"]
    assert call["type"] == "function_call" and call["call_id"] == "call_abc"
    assert call["name"] == "get_weather" and call["id"] == delta["item_id"]
    empty = _output_items()
    assert [n for n, _ in sse(list(empty.finish(DONE)))][-1] == "response.completed"
    assert empty.final is not None and [i.type for i in empty.final.output] == ["message"]
    thought_only = _output_items()
    list(thought_only.feed(Piece("", thinking="Hmm")))
    list(thought_only.finish(Finish("length", prompt_eval_count=1, eval_count=1)))
    assert thought_only.final is not None
    assert [i.type for i in thought_only.final.output] == ["reasoning", "message"]


def test_anthropic_blocks_stream_thinking_then_text_then_tool_use() -> None:
    blocks = anthropic.Blocks()
    events = sse([*blocks.feed(Piece("", thinking="Hmm")), *blocks.feed(Piece("Hi")),
                  *blocks.feed(Piece("", tool_calls=[CALL])), *blocks.finish()])
    assert [(name, payload.get("index"), (payload.get("delta") or {}).get("type"))
            for name, payload in events] == [
        ("content_block_start", 0, None), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None), ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, None), ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None)]
    assert events[0][1]["content_block"] == {"type": "thinking", "thinking": "",
                                             "signature": ""}
    assert [block.type for block in blocks.content] == ["thinking", "text", "tool_use"]
    assert blocks.called
    empty = anthropic.Blocks()
    assert [name for name, _ in sse(list(empty.finish()))] == ["content_block_start",
                                                               "content_block_stop"]
    assert empty.content == [an.TextBlock(text="")]
