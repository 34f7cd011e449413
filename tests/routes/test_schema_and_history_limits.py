"""Hostile requests of issue 15 that Pasture answers before the engine works on them: a
`format` that demands more than the limits allow (item 1), and a long history truncated
to a small context (item 9)."""

from __future__ import annotations

import math

from tests.loop_probe import STALL_LIMIT, LoopProbe
from tests.routes.conftest import Serve, Server

HOSTILE = {"type": "array", "minItems": 1_000_000_000, "items": {"type": "integer"}}
REFUSAL = "invalid format: minItems 1000000000 is over the limit of 10000"


def history(count: int) -> list[dict[str, str]]:
    """A system prompt, then `count - 1` turns of about 30 characters (tokens, here)."""
    return [{"role": "system", "content": "Be brief."}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i:04} " + "x" * 17}
        for i in range(count - 1)]


def test_a_format_demanding_a_billion_items_is_a_400_before_any_model_loads(
        serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        chat = await server.post("/api/chat", model="plain", stream=False, format=HOSTILE,
                                 messages=[{"role": "user", "content": "numbers"}])
        assert (chat.status_code, chat.json()) == (400, {"error": REFUSAL})
        openai = await server.post(
            "/v1/chat/completions", model="plain",
            messages=[{"role": "user", "content": "numbers"}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "n", "schema": HOSTILE}})
        assert openai.status_code == 400 and REFUSAL in openai.text
        assert server.engine.started == []  # nothing reached an engine

    serve(scenario)


def test_a_forced_tool_call_with_a_hostile_parameter_schema_is_a_400(serve: Serve) -> None:
    tools = [{"type": "function", "function": {"name": "count", "parameters": {
        "type": "object", "properties": {"xs": HOSTILE}}}}]

    async def scenario(server: Server) -> None:
        reply = await server.post("/v1/chat/completions", model="qwen", tools=tools,
                                  tool_choice="required",
                                  messages=[{"role": "user", "content": "count"}])
        assert reply.status_code == 400
        assert "invalid tools: minItems 1000000000 is over the limit of 10000" in reply.text
        assert all(runner.requests == [] for runner in server.engine.started)

    serve(scenario)


def test_a_long_history_is_cut_in_few_renders_and_leaves_room_to_answer(
        serve: Serve) -> None:
    messages = history(800)

    async def scenario(server: Server) -> None:
        async with LoopProbe() as probe:
            reply = await server.post("/api/chat", model="qwen", messages=messages,
                                      stream=False)
        assert reply.status_code == 200, reply.text
        runner = server.runner
        assert runner.spec.num_ctx == 512
        sent = runner.requests[0].prompt
        assert isinstance(sent, list) and len(sent) <= 511  # one token left to generate
        text = "".join(map(chr, sent))
        assert text.startswith("<|im_start|>system\nBe brief.") and "message 0797" in text
        assert "message 0700" not in text
        assert runner.tokenized <= math.ceil(math.log2(800)) + 2  # one count per render
        assert probe.worst < STALL_LIMIT

    serve(scenario, CONTEXT_LENGTH="512")


def test_native_truncation_fits_below_the_context_in_few_template_calls(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        for count in (200, 400, 800):
            reply = await server.post("/api/chat", model="plain", messages=history(count),
                                      stream=False)
            assert reply.status_code == 200, reply.text
        runner = server.runner
        assert [len(request.prompt) <= 511 for request in runner.requests] == [True] * 3
        assert len(runner.templated) <= 3 * (math.ceil(math.log2(800)) + 2)
        assert runner.tokenized == len(runner.templated)

    serve(scenario, CONTEXT_LENGTH="512")
