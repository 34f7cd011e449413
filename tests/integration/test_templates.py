"""Go TEMPLATEs on the real server: validated at create, rendered for chat and generate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import MODEL, RunningServer

CHATML = (Path(__file__).parents[1] / "unit" / "templates" / "chatml.gotmpl").read_text()
QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl").read_text()
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "description": "City"}}}}}


@pytest.fixture(scope="module")
def chatml_model(api: httpx.Client) -> str:
    name = "gotmpl-chatml:latest"
    reply = api.post("/api/create", json={"model": name, "from": MODEL, "template": CHATML,
                                          "system": "You are terse.", "stream": False})
    assert reply.status_code == 200, reply.text
    return name


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:  # module scope, for chatml_model
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def test_debug_render_only_returns_the_exact_rendered_prompt(api: httpx.Client,
                                                             chatml_model: str) -> None:
    reply = api.post("/api/chat", json={
        "model": chatml_model, "stream": False, "_debug_render_only": True,
        "messages": [{"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello."},
                     {"role": "user", "content": "Bye"}]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["done"] is True
    assert body["_debug_info"] == {"rendered_template": (
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"), "image_count": 0}
    streamed = api.post("/api/generate", json={
        "model": chatml_model, "prompt": "Hi", "system": "Be kind.", "_debug_render_only": True})
    assert streamed.status_code == 200
    assert streamed.json()["_debug_info"]["rendered_template"] == (
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n")


def test_chat_runs_through_the_go_template(api: httpx.Client, chatml_model: str) -> None:
    reply = api.post("/api/chat", json={
        "model": chatml_model, "stream": False, "options": {"num_predict": 8, "seed": 1},
        "messages": [{"role": "user", "content": "Say hello."}]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["done"] is True and body["message"]["content"].strip()
    # the prompt the engine saw is the rendered one: system turn, user turn, open assistant
    assert body["prompt_eval_count"] >= 15


def test_native_mode_debug_render_uses_the_gguf_template(api: httpx.Client) -> None:
    reply = api.post("/api/chat", json={
        "model": MODEL, "stream": False, "_debug_render_only": True,
        "messages": [{"role": "user", "content": "Hi there"}]})
    assert reply.status_code == 200, reply.text
    assert "<|im_start|>user\nHi there<|im_end|>" in reply.json()["_debug_info"][
        "rendered_template"]


def test_bad_template_at_create_is_a_400_with_position(api: httpx.Client) -> None:
    reply = api.post("/api/create", json={
        "model": "gotmpl-broken", "from": MODEL, "stream": True,
        "template": "{{ range .Messages }}\n{{ .Content }"})
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("template: :2:")
    assert api.post("/api/show", json={"model": "gotmpl-broken"}).status_code == 404


def test_tools_need_the_tools_capability_but_an_empty_list_is_fine(
        api: httpx.Client, chatml_model: str) -> None:
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    refused = api.post("/api/chat", json={"model": chatml_model, "messages": messages,
                                          "tools": [TOOL], "stream": False})
    assert refused.status_code == 400
    assert refused.json() == {"error": f'"{chatml_model}" does not support tools'}
    accepted = api.post("/api/chat", json={"model": chatml_model, "messages": messages,
                                           "tools": [], "_debug_render_only": True})
    assert accepted.status_code == 200
    thinking = api.post("/api/chat", json={"model": chatml_model, "messages": messages,
                                           "think": True, "stream": False})
    assert thinking.status_code == 400
    assert thinking.json()["error"] == f'"{chatml_model}" does not support thinking'


def test_tools_reach_a_template_that_uses_them(api: httpx.Client) -> None:
    name = "gotmpl-qwen-tools"
    created = api.post("/api/create", json={"model": name, "from": MODEL,
                                            "template": QWEN_TOOLS, "stream": False})
    assert created.status_code == 200, created.text
    assert "tools" in api.post("/api/show", json={"model": name}).json()["capabilities"]
    reply = api.post("/api/chat", json={
        "model": name, "stream": False, "_debug_render_only": True, "tools": [TOOL],
        "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    assert reply.status_code == 200, reply.text
    assert ('{"type": "function", "function": {"name":"get_weather","description":'
            '"Weather for a city","parameters":{"type":"object","required":["city"],'
            '"properties":{"city":{"type":"string","description":"City"}}}}}'
            ) in reply.json()["_debug_info"]["rendered_template"]
