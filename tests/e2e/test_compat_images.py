"""Images through every API family: decoded, size-checked, passed on as native images.

SmolLM2 has no vision, so an image that reaches it gets Ollama's 400 `"<model>" does
not support vision`, in each API's error shape, from the official SDKs; web URLs are
refused (Pasture works offline), malformed base64 is a 400 and an image over
PASTURE_MAX_IMAGE_BYTES (decoded) a 413 naming the limit, before any model runs. With a
vision projector (the `vision` fixture) the SDKs' images reach the engine: the prompt
costs the image's tokens, as the same native chat does.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx
import openai
import pytest

from pasture.config import Settings
from tests.integration.conftest import MODEL, VISION_IMAGE_TOKENS

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
       "RU5ErkJggg==")  # one pixel
NO_VISION = f'"{MODEL}" does not support vision'


def openai_chat(oai: openai.OpenAI, url: str, model: str = MODEL) -> Any:
    return oai.chat.completions.create(model=model, max_tokens=1, messages=[
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": url}}]}])


def anthropic_message(claude: anthropic.Anthropic, data: str, model: str = MODEL) -> Any:
    return claude.messages.create(model=model, max_tokens=1, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "What is this?"}]}])


def test_sdk_images_reach_a_vision_model(
        oai: openai.OpenAI, claude: anthropic.Anthropic, api: httpx.Client, vision: str) -> None:
    def native(images: list[str]) -> int:
        reply = api.post("/api/chat", json={"model": vision, "stream": False, "options": {
            "num_predict": 1}, "messages": [{"role": "user", "content": "What is this?",
                                             "images": images}]})
        assert reply.status_code == 200, reply.text
        return reply.json()["prompt_eval_count"]

    with_image = native([PNG])
    assert with_image == native([]) + VISION_IMAGE_TOKENS
    chat = openai_chat(oai, f"data:image/png;base64,{PNG}", vision)
    assert chat.usage.prompt_tokens == with_image
    message = anthropic_message(claude, PNG, vision)
    assert message.usage.input_tokens == with_image


def test_an_image_reaches_a_model_without_vision_in_every_api(
        oai: openai.OpenAI, claude: anthropic.Anthropic, api: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as chat:
        openai_chat(oai, f"data:image/png;base64,{PNG}")
    assert chat.value.body == {"message": NO_VISION, "type": "invalid_request_error",
                               "param": None, "code": None}
    with pytest.raises(openai.BadRequestError) as responses:
        oai.responses.create(model=MODEL, max_output_tokens=1, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}",
             "detail": "auto"}]}])
    assert responses.value.body["message"] == NO_VISION
    with pytest.raises(anthropic.BadRequestError) as message:
        anthropic_message(claude, PNG)
    assert message.value.body["error"] == {"type": "invalid_request_error",
                                           "message": NO_VISION}
    for path, body in [("/api/chat", {"messages": [{"role": "user", "content": "Hi",
                                                    "images": [PNG]}]}),
                       ("/api/generate", {"prompt": "Hi", "images": [PNG]})]:
        native = api.post(path, json={"model": MODEL, "stream": False, **body})
        assert native.status_code == 400 and native.json() == {"error": NO_VISION}


def test_image_urls_and_malformed_base64_are_bad_requests(
        oai: openai.OpenAI, claude: anthropic.Anthropic, api: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as web:
        openai_chat(oai, "https://example.com/cat.png")
    assert "offline" in web.value.body["message"]
    with pytest.raises(openai.BadRequestError) as malformed:
        openai_chat(oai, "data:image/png;base64,not*base64")
    assert "invalid image input" in malformed.value.body["message"]
    with pytest.raises(anthropic.BadRequestError) as bad:
        anthropic_message(claude, PNG[:-3])
    assert "invalid image input" in bad.value.body["error"]["message"]
    native = api.post("/api/chat", json={"model": MODEL, "stream": False, "messages": [
        {"role": "user", "content": "Hi", "images": ["%%%%"]}]})
    assert native.status_code == 400 and "invalid image input" in native.json()["error"]


def test_an_image_over_the_limit_is_too_large_in_every_api(
        oai: openai.OpenAI, claude: anthropic.Anthropic, api: httpx.Client) -> None:
    limit = Settings.from_env().max_image_bytes  # what the server read from the same env
    big = base64.b64encode(bytes(limit + 1)).decode()
    expected = (f"image too large: {limit + 1} bytes, over the limit of {limit} bytes "
                "(PASTURE_MAX_IMAGE_BYTES)")
    with pytest.raises(openai.APIStatusError) as chat:
        openai_chat(oai, f"data:image/png;base64,{big}")
    assert chat.value.status_code == 413 and chat.value.body["message"] == expected
    with pytest.raises(anthropic.APIStatusError) as message:
        anthropic_message(claude, big)
    assert message.value.status_code == 413
    assert message.value.body["error"] == {"type": "request_too_large", "message": expected}
    native = api.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "images": [big]})
    assert native.status_code == 413 and native.json() == {"error": expected}
