"""What a Go TEMPLATE sees of a request, as Ollama gives it: roles lower-cased whichever
API family sent them, tool-call arguments as Go's float64 prints them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.routes.conftest import Serve, Server
from tests.routes.test_tools_and_thinking import prompt_text

SHOUTED = [{"role": "System", "content": "Be brief."},
           {"role": "USER", "content": "Hi"},
           {"role": "Assistant", "content": "Hello!"},
           {"role": "uSeR", "content": "Weather?"}]
# QWEN_TEMPLATE: `.System` collects system messages, and `eq .Role "assistant"` picks
# the assistant branch; a role left as sent would be printed as `<|im_start|>Assistant`.
LOWERED = ("<|im_start|>system\nBe brief.<|im_end|>\n"
           "<|im_start|>system\nBe brief.<|im_end|>\n"
           "<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n"
           "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n")


def test_native_chat_roles_reach_the_template_lower_cased(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="qwen", messages=SHOUTED, stream=False,
                                  _debug_render_only=True)
        assert reply.status_code == 200, reply.text
        assert reply.json()["_debug_info"]["rendered_template"] == LOWERED

    serve(scenario)


@pytest.mark.parametrize(("path", "extra"), [
    ("/v1/chat/completions", {"messages": SHOUTED}),
    ("/v1/responses", {"input": [{"role": m["role"], "content": m["content"]}
                                 for m in SHOUTED]}),
])
def test_openai_roles_reach_the_template_lower_cased(serve: Serve, path: str,
                                                     extra: dict[str, Any]) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post(path, model="qwen", **extra)
        assert reply.status_code == 200, reply.text
        (request,) = server.runner.requests
        assert prompt_text(request) == LOWERED

    serve(scenario)
