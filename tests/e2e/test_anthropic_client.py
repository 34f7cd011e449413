"""The official `anthropic` SDK against Pasture's `/v1/messages`, on the shared server."""

from __future__ import annotations

import anthropic
import pytest

from tests.integration.conftest import MODEL

HI = [{"role": "user", "content": "Say hello."}]



def test_message_reports_text_stop_reason_and_usage(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(model=MODEL, max_tokens=3, messages=HI,
                                   system="You are terse.")
    assert reply.type == "message" and reply.role == "assistant" and reply.model == MODEL
    assert reply.content[0].type == "text" and reply.content[0].text
    assert reply.stop_reason == "max_tokens"
    assert reply.usage.output_tokens == 3 and reply.usage.input_tokens > 5


def test_stop_sequence_is_reported(claude: anthropic.Anthropic) -> None:
    # This SDK release no longer has sampling arguments; older ones send them as fields.
    greedy = {"temperature": 0, "top_k": 1}
    free = claude.messages.create(model=MODEL, max_tokens=12, messages=HI, extra_body=greedy)
    words = free.content[0].text.split()
    assert len(words) >= 3, free.content[0].text
    stop = " " + words[2]
    stopped = claude.messages.create(model=MODEL, max_tokens=12, messages=HI, extra_body=greedy,
                                     stop_sequences=[stop])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == stop
    assert stopped.content[0].text == free.content[0].text[: free.content[0].text.index(stop)]


def test_streamed_message_has_events_text_and_usage(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=4, messages=HI) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert final.content[0].text and final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens > 5


def test_unknown_model_raises_not_found_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=1, messages=HI)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_missing_max_tokens_is_bad_request(claude: anthropic.Anthropic) -> None:
    response = claude._client.post(  # the SDK refuses to send it; the wire must refuse too
        str(claude.base_url).rstrip("/") + "/v1/messages",
        json={"model": MODEL, "messages": HI},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
