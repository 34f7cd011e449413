"""The official `openai` SDK against Pasture's `/v1` endpoints, on the shared server."""

from __future__ import annotations

from typing import Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.integration.conftest import MODEL

HI = [{"role": "user", "content": "Say hello."}]



def test_chat_completion_reports_text_and_usage(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model=MODEL, messages=HI, max_tokens=8)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_max_tokens_ends_with_finish_reason_length(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model=MODEL, messages=HI, max_completion_tokens=2)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 2


def test_chat_stream_sends_role_deltas_finish_and_usage(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=4, stream=True,
        stream_options={"include_usage": True},
    ))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4


def test_seed_makes_sampling_reproducible(oai: openai.OpenAI) -> None:
    def sample() -> str:
        reply = oai.chat.completions.create(model=MODEL, messages=HI, max_tokens=10,
                                               seed=1234, temperature=1.0)
        return reply.choices[0].message.content or ""

    assert sample() == sample()


def test_stop_sequence_ends_the_reply_before_it(oai: openai.OpenAI) -> None:
    free = oai.chat.completions.create(model=MODEL, messages=HI, max_tokens=12,
                                          temperature=0).choices[0].message.content or ""
    words = free.split()
    assert len(words) >= 3, free
    stop = " " + words[2]
    stopped = oai.chat.completions.create(model=MODEL, messages=HI, max_tokens=12,
                                             temperature=0, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == free[: free.index(stop)]


def test_ollama_options_pass_through_extra_body(oai: openai.OpenAI) -> None:
    # `num_predict` from `options` applies when max_tokens is absent.
    reply = oai.chat.completions.create(model=MODEL, messages=HI,
                                           extra_body={"options": {"num_predict": 3}})
    assert reply.usage.completion_tokens == 3


class Color(BaseModel):
    color: Literal["red", "blue"]


def test_json_schema_response_format_parses_into_pydantic(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.parse(
        model=MODEL, max_tokens=16, temperature=0, response_format=Color,
        messages=[{"role": "user", "content": "Pick a color, as JSON."}],
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, Color) and parsed.color in ("red", "blue")


def test_legacy_completion_returns_text(oai: openai.OpenAI) -> None:
    reply = oai.completions.create(model=MODEL, prompt="The sky is", max_tokens=4)
    assert reply.object == "text_completion"
    assert reply.choices[0].text and reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 4


def test_models_list_and_retrieve(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert MODEL in ids
    model = oai.models.retrieve(MODEL)
    assert model.id == MODEL and model.owned_by == "library" and model.created > 0
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")


def test_embeddings_base64_and_float_match_native_embed(oai: openai.OpenAI,
                                                        api: httpx.Client) -> None:
    texts = ["hello world", "blue sky"]
    native = api.post("/api/embed", json={"model": MODEL, "input": texts}).json()
    default = oai.embeddings.create(model=MODEL, input=texts)  # the SDK asks for base64
    floats = oai.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    for reply in (default, floats):
        assert [d.index for d in reply.data] == [0, 1]
        for got, want in zip(reply.data, native["embeddings"], strict=True):
            assert got.embedding == pytest.approx(want, abs=1e-5)
    assert floats.usage.prompt_tokens == native["prompt_eval_count"]
    short = oai.embeddings.create(model=MODEL, input="sky", dimensions=16)
    assert len(short.data[0].embedding) == 16


def test_unknown_model_raises_not_found_in_openai_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="no-such-model", messages=HI, max_tokens=1)
    assert caught.value.body["type"] == "not_found_error"
    assert "no-such-model" in caught.value.body["message"]


def test_bad_requests_raise_bad_request_in_openai_shape(oai: openai.OpenAI,
                                                        api: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    assert caught.value.body["type"] == "invalid_request_error"
    malformed = api.post("/v1/chat/completions", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json() == {"error": {"message": "invalid JSON in request body",
                                          "type": "invalid_request_error",
                                          "param": None, "code": None}}


def test_responses_api_returns_output_text(oai: openai.OpenAI) -> None:
    reply = oai.responses.create(model=MODEL, input="Say hello.", max_output_tokens=6,
                                    instructions="Answer briefly.")
    assert reply.object == "response" and reply.output_text
    assert reply.status in ("completed", "incomplete")
    assert reply.usage.output_tokens <= 6 and reply.usage.input_tokens > 5


def test_responses_api_streams_typed_events(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model=MODEL, input="Say hello.",
                                          max_output_tokens=4, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done",
                            "response.output_item.done"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas and deltas == done.text
    assert [e.sequence_number for e in events] == list(range(len(events)))
