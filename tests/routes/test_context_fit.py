"""A prompt longer than the context, against the fake engine (one token a character):
Ollama answers rather than refusing, and Pasture cuts text, not framing, says what it
cut in a `truncated` field and a WARN line, and honours `truncate` and `shift`."""

from __future__ import annotations

import logging

import pytest

from pasture.prompt.fit import CUT_MARK
from pasture.server.pipeline.prompt import TOO_LONG
from tests.routes.conftest import Serve, Server

CONTEXT = 256
LONG = "".join(f"<{i}>" for i in range(300))  # 1,190 characters: no two cuts look alike


def _sent(server: Server) -> str:
    prompt = server.runner.requests[-1].prompt
    return prompt if isinstance(prompt, str) else "".join(map(chr, prompt))


@pytest.mark.parametrize("model", ["plain", "qwen"])  # native and Go-template modes
def test_an_over_long_last_message_is_cut_in_its_middle_and_answered(
        serve: Serve, model: str, caplog: pytest.LogCaptureFixture) -> None:
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "old question"},
                {"role": "assistant", "content": "old answer"},
                {"role": "user", "content": LONG}]

    async def scenario(server: Server) -> None:
        with caplog.at_level(logging.WARNING, logger="pasture"):
            reply = await server.post("/api/chat", model=model, messages=messages,
                                      stream=False, think=False,
                                      options={"num_ctx": CONTEXT, "num_predict": 32})
        assert reply.status_code == 200, reply.text
        sent = _sent(server)
        assert "Answer briefly." in sent and "old question" not in sent  # turns dropped first
        assert "<0><1><2>" in sent and "<298><299>" in sent and CUT_MARK in sent
        assert len(sent) <= CONTEXT - 32  # room left for the answer asked for
        truncated = reply.json()["truncated"]
        assert truncated["kept"] == len(sent) < truncated["prompt_tokens"]
        assert truncated["prompt_tokens"] > len(LONG)
        assert any("truncating input prompt" in r.getMessage() and r.levelname == "WARNING"
                   for r in caplog.records)

    serve(scenario)


def test_a_prompt_that_fits_has_no_truncated_field(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="plain", stream=False,
                                  messages=[{"role": "user", "content": "Hi"}])
        assert reply.status_code == 200 and "truncated" not in reply.json()
        openai = await server.post("/v1/chat/completions", model="plain",
                                   messages=[{"role": "user", "content": "Hi"}])
        assert "truncated" not in openai.json()["usage"]

    serve(scenario)


def test_shift_false_refuses_what_only_a_cut_would_fit_with_ollamas_words(
        serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="plain", shift=False,
                                  messages=[{"role": "user", "content": LONG}],
                                  options={"num_ctx": CONTEXT})
        assert reply.status_code == 400
        assert reply.json() == {"error": TOO_LONG}
        assert not server.runner.requests

    serve(scenario)


def test_shift_false_ends_the_answer_where_the_context_does(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", prompt="Hi", shift=False,
                                  stream=False, options={"num_ctx": CONTEXT})
        assert reply.status_code == 200, reply.text
        request = server.runner.requests[-1]
        assert request.options["num_predict"] == CONTEXT - len(_sent(server)) - 1
        shifting = await server.post("/api/generate", model="plain", prompt="Hi",
                                     stream=False, options={"num_ctx": CONTEXT})
        assert shifting.status_code == 200
        assert server.runner.requests[-1].options["num_predict"] == -1

    serve(scenario)


def test_truncate_false_sends_the_whole_prompt(serve: Serve) -> None:
    """The engine itself then refuses it (tests/integration/test_context_fit.py)."""
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="plain", truncate=False, stream=False,
                                  messages=[{"role": "user", "content": LONG}],
                                  options={"num_ctx": CONTEXT})
        assert reply.status_code == 200
        assert LONG in _sent(server) and "truncated" not in reply.json()

    serve(scenario)


def test_a_raw_prompt_is_cut_in_its_middle(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", prompt=LONG, raw=True,
                                  stream=False, options={"num_ctx": CONTEXT})
        assert reply.status_code == 200, reply.text
        sent = _sent(server)
        assert sent.startswith("<0><1>") and sent.endswith("<299>") and CUT_MARK in sent
        assert len(sent) <= CONTEXT * 3 // 4
        assert reply.json()["truncated"]["kept"] == len(sent)

    serve(scenario)


def test_openai_chat_reports_the_cut_in_usage(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        # OpenAI's API has no num_ctx: the model's context, 4,096 here, must be passed
        reply = await server.post("/v1/chat/completions", model="plain", max_tokens=8,
                                  messages=[{"role": "user", "content": LONG * 4}])
        assert reply.status_code == 200, reply.text
        usage = reply.json()["usage"]
        assert usage["truncated"]["prompt_tokens"] > len(LONG * 4)

    serve(scenario)


def test_a_cut_conversation_keeps_its_last_image_tagged_in_the_cut_message(
        serve: Serve) -> None:
    """Dropped turns take their images with them; the last message, cut in its middle,
    keeps its own, tagged where the engine places it (the prompt is rendered again with
    the tag after fitting)."""
    old, new = "b2xkIGltYWdl", "bmV3IGltYWdl"  # base64 of two different payloads
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "old question", "images": [old]},
                {"role": "assistant", "content": "old answer"},
                {"role": "user", "content": LONG * 2, "images": [new]}]

    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="seer", messages=messages, stream=False,
                                  options={"num_ctx": 2048, "num_predict": 32})
        assert reply.status_code == 200, reply.text
        request = server.runner.requests[-1]
        sent = request.prompt
        assert isinstance(sent, str) and request.images == [new]
        assert "Answer briefly." in sent and "old question" not in sent
        assert "<|user|>[img-0]<0><1><2>" in sent and "<298><299>\n<|assistant|>" in sent
        assert sent.count(CUT_MARK) == 1 and "[img-1]" not in sent
        truncated = reply.json()["truncated"]
        image = truncated["kept"] - (len(sent) - len("[img-0]"))  # the image's reserve
        assert image > 0 and truncated["kept"] <= 2048 - 32
        assert truncated["prompt_tokens"] == len(LONG) * 2 + 2 * image + len(
            "<|system|>Answer briefly.\n<|user|>old question\n<|assistant|>old answer\n"
            "<|user|>\n<|assistant|>")

    serve(scenario)
