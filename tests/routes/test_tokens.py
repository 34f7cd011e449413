"""`/api/tokenize`, `/api/detokenize` and Anthropic's `/v1/messages/count_tokens` against
the fake engine (one token a character): what reaches the engine, the bounds, the errors,
and that none of them waits behind a generation for a slot."""

from __future__ import annotations

import asyncio

from pasture.server.pipeline.tokens import MAX_DETOKENIZE_TOKENS, MAX_TOKENIZE_CHARACTERS
from tests.fake_runner import Script
from tests.routes.conftest import Serve, Server


def test_tokenize_and_detokenize_round_trip(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/tokenize", model="plain", content="Hi there")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"tokens": [ord(c) for c in "Hi there"]}
        assert server.runner.special == [False]  # llama-server's default: no BOS
        back = await server.post("/api/detokenize", model="plain", tokens=reply.json()["tokens"])
        assert back.status_code == 200, back.text
        assert back.json() == {"content": "Hi there"}

    serve(scenario)


def test_tokenize_takes_prompt_and_add_special(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/tokenize", model="plain", prompt="ok", add_special=True)
        assert reply.json() == {"tokens": [ord("o"), ord("k")]}
        assert server.runner.special == [True]
        empty = await server.post("/api/tokenize", model="plain", content="")
        assert empty.json() == {"tokens": []}

    serve(scenario)


def test_ids_outside_the_vocabulary_are_a_400_before_the_engine(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        for bad in ([-1], [5, 391], [2**40]):  # `plain` has a 391-token vocabulary
            reply = await server.post("/api/detokenize", model="plain", tokens=bad)
            assert reply.status_code == 400, bad
            assert "outside this model's vocabulary (0 to 390)" in reply.json()["error"]
        assert not server.engine.started  # refused before any model loaded
        wrong = await server.post("/api/detokenize", model="plain", tokens=["x"])
        assert wrong.status_code == 400

    serve(scenario)


def test_inputs_are_bounded(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        long = await server.post("/api/tokenize", model="plain",
                                 content="a" * (MAX_TOKENIZE_CHARACTERS + 1))
        assert long.status_code == 400
        assert "too long to tokenize" in long.json()["error"]
        many = await server.post("/api/detokenize", model="plain",
                                 tokens=[1] * (MAX_DETOKENIZE_TOKENS + 1))
        assert many.status_code == 400
        assert "too many tokens" in many.json()["error"]
        assert not server.engine.started

    serve(scenario)


def test_an_unknown_model_is_a_404(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        for path, body in (("/api/tokenize", {"content": "x"}), ("/api/detokenize",
                                                                 {"tokens": [1]})):
            reply = await server.post(path, model="nothing-here", **body)
            assert reply.status_code == 404, path

    serve(scenario)


def test_tokenizing_counting_and_debug_rendering_do_not_wait_for_a_busy_slot(serve: Serve) -> None:
    gate = asyncio.Event()

    async def scenario(server: Server) -> None:
        busy = asyncio.create_task(server.post(
            "/api/chat", model="plain", messages=[{"role": "user", "content": "Hi"}]))
        await server.engine_busy()  # the one slot (num_parallel 1) is taken
        reply = await server.post("/api/tokenize", model="plain", content="ab")
        assert reply.json() == {"tokens": [97, 98]}
        counted = await server.post("/v1/messages/count_tokens", model="plain",
                                    messages=[{"role": "user", "content": "Hi"}])
        assert counted.status_code == 200, counted.text
        rendered = await server.post("/api/chat", model="plain", stream=False,
                                     messages=[{"role": "user", "content": "Hi"}],
                                     _debug_render_only=True)
        assert rendered.status_code == 200, rendered.text
        assert not busy.done()
        gate.set()
        assert (await busy).status_code == 200

    serve(scenario, Script(gate=gate))


def test_count_tokens_counts_the_prompt_as_messages_builds_it(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        body = {"model": "qwen", "system": "Be brief.",
                "messages": [{"role": "user", "content": "Weather?"}],
                "tools": [{"name": "get_weather", "description": "Weather",
                           "input_schema": {"type": "object"}}]}
        counted = await server.post("/v1/messages/count_tokens", **body)
        assert counted.status_code == 200, counted.text
        answered = await server.post("/v1/messages", max_tokens=5, **body)
        prompt = server.runner.requests[-1].prompt
        assert counted.json() == {"input_tokens": len(prompt)}
        assert answered.json()["usage"]["input_tokens"] == len(prompt)
        assert "get_weather" in "".join(map(chr, prompt))  # the tools are in the count

    serve(scenario)


def test_count_tokens_counts_a_conversation_too_long_to_answer_whole(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        long = "word " * 1000
        counted = await server.post("/v1/messages/count_tokens", model="plain", messages=[
            {"role": "user", "content": long}])
        assert counted.json()["input_tokens"] == len(f"<|user|>{long}\n<|assistant|>")

    serve(scenario, CONTEXT_LENGTH="256")


def test_count_tokens_needs_no_max_tokens_and_refuses_what_messages_refuses(
        serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        missing = await server.post("/v1/messages/count_tokens", model="nothing-here",
                                    messages=[{"role": "user", "content": "Hi"}])
        assert missing.status_code == 404
        assert missing.json()["type"] == "error"  # Anthropic's error shape
        embedder = await server.post("/v1/messages/count_tokens", model="embedder",
                                     messages=[{"role": "user", "content": "Hi"}])
        assert embedder.status_code == 400

    serve(scenario)


def test_tokens_use_the_loaded_runner_whatever_its_load_options(serve: Serve) -> None:
    """A runner loaded with a request's own num_ctx tokenizes as any would: tokenize,
    count_tokens and debug rendering use it, rather than reloading the model."""
    async def scenario(server: Server) -> None:
        hi = [{"role": "user", "content": "Hi"}]
        loaded = await server.post("/api/chat", model="plain", messages=hi, stream=False,
                                   options={"num_ctx": 256})
        assert loaded.status_code == 200, loaded.text
        tokenized = await server.post("/api/tokenize", model="plain", content="Hi")
        counted = await server.post("/v1/messages/count_tokens", model="plain",
                                    messages=hi)
        rendered = await server.post("/api/chat", model="plain", messages=hi,
                                     _debug_render_only=True, stream=False)
        assert (tokenized.status_code, counted.status_code, rendered.status_code) == \
            (200, 200, 200), (tokenized.text, counted.text, rendered.text)
        assert len(server.engine.started) == 1 and server.runner.spec.num_ctx == 256

    serve(scenario)
