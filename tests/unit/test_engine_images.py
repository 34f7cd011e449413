"""How a prompt's `[img-N]` tags become llama-server's multimodal prompt: the engine's
media marker where each tag was, and the images in the order their tags appear."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import pytest
from PIL import Image

from pasture.errors import BadRequestError
from pasture.prompt.render import Think, parse_template
from pasture.runner import media as images
from pasture.runner.llama_server import engine_prompt
from pasture.server.pipeline.prompt import chat_prompt, renderer

MARK = "<__media_x__>"


def test_tags_become_markers_and_images_follow_in_tag_order() -> None:
    prompt = engine_prompt("[img-1] then [img-0], [img-1] again.", ["A", "B"], MARK)
    assert prompt == {"prompt_string": f"{MARK} then {MARK}, {MARK} again.",
                      "multimodal_data": ["B", "A", "B"]}


def test_a_tag_without_its_image_stays_text() -> None:
    assert engine_prompt("[img-0] and [img-3].", ["A"], MARK) == {
        "prompt_string": f"{MARK} and [img-3].", "multimodal_data": ["A"]}
    assert engine_prompt("[img-3] only.", ["A"], MARK) == "[img-3] only."


def test_without_a_projector_or_images_the_prompt_is_unchanged() -> None:
    assert engine_prompt("[img-0] hi", ["A"], None) == "[img-0] hi"
    assert engine_prompt("[img-0] hi", [], MARK) == "[img-0] hi"
    assert engine_prompt([1, 2, 3], ["A"], MARK) == [1, 2, 3]


def test_line_breaks_in_base64_are_dropped_as_gos_decoder_skips_them() -> None:
    assert asyncio.run(images.for_engine(["QU\r\nJD\nRA==", "QUJD"])) == ["QUJDRA==", "QUJD"]


def picture(fmt: str, size: tuple[int, int] = (3, 2), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 90, 255)).save(out, format=fmt, **save)
    return out.getvalue()


def test_webp_is_transcoded_to_the_same_pixels_in_png() -> None:
    webp = base64.b64encode(picture("WEBP", lossless=True)).decode()
    png = base64.b64encode(picture("PNG")).decode()
    converted, untouched = asyncio.run(images.for_engine([webp, png]))
    assert untouched == png
    with Image.open(io.BytesIO(base64.b64decode(converted))) as image:
        assert image.format == "PNG" and image.size == (3, 2)
        assert image.convert("RGBA").getpixel((1, 1)) == (200, 30, 90, 255)


def test_a_webp_that_cannot_be_transcoded_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    def transcode(data: bytes) -> list[str]:
        return asyncio.run(images.for_engine([base64.b64encode(data).decode()]))

    with pytest.raises(BadRequestError, match="the WebP image cannot be decoded"):
        transcode(b"RIFF\x10\x00\x00\x00WEBPVP8 broken")
    monkeypatch.setattr(images, "MAX_WEBP_PIXELS", 5_000_000)  # its size is read, not decoded
    with pytest.raises(BadRequestError, match="a 3000×2000 WebP image is over 5 megapixels"):
        transcode(picture("WEBP", (3000, 2000)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses first: still a 400
    with pytest.raises(BadRequestError, match="a WebP image over 5 megapixels"):
        transcode(picture("WEBP", (100, 100)))


def test_an_image_ending_the_prompt_is_refused() -> None:
    with pytest.raises(BadRequestError, match="cannot end the prompt"):
        engine_prompt("look: [img-0]", ["A"], MARK)


def test_a_rendered_prompt_carries_the_images_its_tags_refer_to() -> None:
    template = parse_template("{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}")
    messages = [{"role": "user", "content": "one", "images": ["A"]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "two [img] here", "images": ["B", "C"]}]
    # With the template given and no runner (no truncation), no model is consulted.
    prompt = asyncio.run(chat_prompt(messages, renderer(template, None, None, Think()), None))
    assert prompt.text == "user: [img-0]one\nassistant: ok\nuser: [img-2]two [img-1] here\n"
    assert prompt.images == ["A", "B", "C"]
    engine = engine_prompt(prompt.text, prompt.images, MARK)
    assert isinstance(engine, dict) and engine["multimodal_data"] == ["A", "C", "B"]
