"""Vision: a text model and a projector GGUF, created from two FROM files as in Ollama,
see images. The projector is stored as its own layer, `show` lists `vision`, the engine
loads it beside the model, and every image the prompt tags costs the projector's image
tokens, with the GGUF's own template (native mode) and with a Go TEMPLATE (rendered
mode). The projector is random (tests/ggufs.py), so what the model says is noise: the
prompt's token count is what proves the image reached the engine.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.ggufs import write_projector
from tests.integration.conftest import MODEL, VISION_IMAGE_TOKENS, RunningServer

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
       "RU5ErkJggg==")  # one pixel
NOT_A_PICTURE = base64.b64encode(b"valid base64, but no image format").decode()
CHATML = ("{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
          "<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def rendered_vision(api: httpx.Client, vision: str) -> Iterator[str]:
    """The vision model with a Go TEMPLATE (rendered mode); it inherits the projector."""
    name = "smollm2-vision-chatml"
    response = api.post("/api/create", json={"model": name, "from": vision,
                                             "template": CHATML, "stream": False})
    assert response.status_code == 200, response.text
    yield name
    api.request("DELETE", "/api/delete", json={"model": name})


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def chat(api: httpx.Client, model: str, messages: list[dict[str, Any]],
         **options: Any) -> dict[str, Any]:
    response = api.post("/api/chat", json={"model": model, "stream": False, "messages": messages,
                                           "options": {"num_predict": 1, **options}})
    assert response.status_code == 200, response.text
    return response.json()


def generate(api: httpx.Client, model: str, prompt: str, images: list[str],
             raw: bool = False) -> dict[str, Any]:
    response = api.post("/api/generate", json={
        "model": model, "stream": False, "prompt": prompt, "images": images, "raw": raw,
        "options": {"num_predict": 1}})
    assert response.status_code == 200, response.text
    return response.json()


def media_types(server: RunningServer, name: str) -> list[str]:
    path = server.models_dir / f"manifests/registry.ollama.ai/library/{name}/latest"
    layers = json.loads(path.read_text())["layers"]
    return [layer["mediaType"].rsplit(".", 1)[1] for layer in layers]


def test_the_projector_is_a_layer_of_its_own_and_gives_vision(
        server: RunningServer, api: httpx.Client, vision: str, rendered_vision: str) -> None:
    assert media_types(server, vision) == ["model", "projector"]
    assert "projector" in media_types(server, rendered_vision)
    shown = api.post("/api/show", json={"model": vision}).json()
    assert shown["capabilities"] == ["completion", "vision"]
    assert shown["projector_info"]["clip.projector_type"] == "mlp"
    assert shown["model_info"]["general.architecture"] == "llama"
    text_only = api.post("/api/show", json={"model": MODEL}).json()
    assert "vision" not in text_only["capabilities"] and "projector_info" not in text_only


@pytest.mark.parametrize("mode", ["native", "rendered"])
def test_every_tagged_image_costs_the_projectors_tokens(
        api: httpx.Client, vision: str, rendered_vision: str, mode: str) -> None:
    model = vision if mode == "native" else rendered_vision

    def cost(images: list[str]) -> int:
        reply = chat(api, model, [{"role": "user", "content": "What is this?", "images": images}])
        return reply["prompt_eval_count"]

    text = cost([])
    assert cost([PNG]) == text + VISION_IMAGE_TOKENS
    assert cost([PNG, PNG]) == text + 2 * VISION_IMAGE_TOKENS
    prompt = generate(api, model, "What is this?", [])["prompt_eval_count"]
    assert generate(api, model, "What is this?", [PNG])["prompt_eval_count"] == (
        prompt + VISION_IMAGE_TOKENS)


def test_a_raw_prompt_places_images_with_its_own_tags(api: httpx.Client, vision: str) -> None:
    once = generate(api, vision, "Look: [img-0] now", [PNG], raw=True)["prompt_eval_count"]
    twice = generate(api, vision, "Look: [img-0][img-0] now", [PNG], raw=True)
    assert twice["prompt_eval_count"] == once + VISION_IMAGE_TOKENS
    # Only tagged images are sent (the second is no picture), and a tag naming no image
    # stays text.
    generate(api, vision, "Look: [img-0] and [img-7]", [PNG, NOT_A_PICTURE], raw=True)
    refused = api.post("/api/generate", json={"model": vision, "stream": False, "raw": True,
                                              "prompt": "Look: [img-1] now",
                                              "images": [PNG, NOT_A_PICTURE]})
    assert refused.status_code == 400, refused.text


def test_an_image_ending_the_prompt_is_refused_before_it_can_abort_the_engine(
        server: RunningServer, api: httpx.Client, vision: str) -> None:
    # llama-server asserts (and the runner dies) when no text follows the last image.
    generate(api, vision, "Look: [img-0] now", [PNG], raw=True)
    runners = server.children()
    ended = api.post("/api/generate", json={"model": vision, "stream": False, "raw": True,
                                            "prompt": "Look: [img-0]", "images": [PNG]})
    assert ended.status_code == 400
    assert ended.json() == {"error": "an image cannot end the prompt: put text after it"}
    generate(api, vision, "Look: [img-0] now", [PNG], raw=True)
    assert server.children() == runners  # the same runner serves on


def test_images_of_messages_dropped_by_truncation_are_not_sent(
        api: httpx.Client, vision: str) -> None:
    # Ollama counts 768 tokens per image when truncating: at num_ctx 2048 (a vision
    # model's least) three images do not fit, two do, so the first message and its image
    # are dropped. Were its image sent instead of a later one, the engine would refuse it
    # (it is no picture).
    messages = [{"role": "user", "content": "First.", "images": [NOT_A_PICTURE]},
                {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "Second.", "images": [PNG]},
                {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "What is this?", "images": [PNG]}]
    kept = chat(api, vision, messages[1:], num_ctx=2048)
    assert chat(api, vision, messages, num_ctx=2048)["prompt_eval_count"] == (
        kept["prompt_eval_count"])


def test_a_vision_model_gets_at_least_2048_context(api: httpx.Client, vision: str) -> None:
    """As in Ollama: a smaller num_ctx is raised for a model with a projector."""
    chat(api, vision, [{"role": "user", "content": "Hi"}], num_ctx=512)
    (loaded,) = [m for m in api.get("/api/ps").json()["models"]
                 if m["name"] == f"{vision}:latest"]
    assert loaded["context_length"] == 2048


def test_a_webp_image_reaches_the_engine_as_png(api: httpx.Client, vision: str) -> None:
    """The engine cannot read WebP; Pasture transcodes it, as Ollama does."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 120, 240)).save(out, format="WEBP")
    webp = base64.b64encode(out.getvalue()).decode()
    ask = [{"role": "user", "content": "What is this?", "images": [webp]}]
    assert chat(api, vision, ask)["prompt_eval_count"] == \
        chat(api, vision, [{**ask[0], "images": [PNG]}])["prompt_eval_count"]
    broken = base64.b64encode(b"RIFF\x10\x00\x00\x00WEBPVP8 broken").decode()
    response = api.post("/api/chat", json={"model": vision, "stream": False,
                                           "messages": [{**ask[0], "images": [broken]}]})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid image input: the WebP image cannot be decoded"}


def test_an_image_the_engine_cannot_decode_is_a_bad_request(
        api: httpx.Client, vision: str) -> None:
    response = api.post("/api/chat", json={"model": vision, "stream": False, "messages": [
        {"role": "user", "content": "What is this?", "images": [NOT_A_PICTURE]}]})
    assert response.status_code == 400
    assert response.json() == {"error": "Failed to load image or audio file"}


def test_a_projector_without_a_text_model_is_refused_at_create(
        api: httpx.Client, tmp_path: Path) -> None:
    data = write_projector(tmp_path / "mmproj.gguf", text_embd=576, seed=1).read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    api.post(f"/api/blobs/{digest}", content=data).raise_for_status()
    response = api.post("/api/create", json={"model": "projector-only", "stream": False,
                                             "files": {"mmproj.gguf": digest}})
    assert response.status_code == 400
    assert response.json() == {
        "error": "expected exactly one GGUF model file besides the vision projector"}
