"""How a prompt's `[img-N]` tags become llama-server's multimodal prompt: the engine's
media marker where each tag was, and the images in the order their tags appear."""

from __future__ import annotations

import asyncio

import pytest

from pasture.errors import BadRequestError
from pasture.prompt.render import Think, parse_template
from pasture.server.completion import engine_prompt
from pasture.server.rendering import build_chat_prompt

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
    prompt = engine_prompt("[img-0] hi", ["QU\r\nJD\nRA=="], MARK)
    assert isinstance(prompt, dict) and prompt["multimodal_data"] == ["QUJDRA=="]


def test_an_image_ending_the_prompt_is_refused() -> None:
    with pytest.raises(BadRequestError, match="cannot end the prompt"):
        engine_prompt("look: [img-0]", ["A"], MARK)


def test_a_rendered_prompt_carries_the_images_its_tags_refer_to() -> None:
    template = parse_template("{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}")
    messages = [{"role": "user", "content": "one", "images": ["A"]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "two [img] here", "images": ["B", "C"]}]
    # With the template given and no runner (no truncation), no model is consulted.
    prompt = asyncio.run(build_chat_prompt(None, messages, None, Think(),  # type: ignore[arg-type]
                                           None, template=template))
    assert prompt.text == "user: [img-0]one\nassistant: ok\nuser: [img-2]two [img-1] here\n"
    assert prompt.images == ["A", "B", "C"]
    engine = engine_prompt(prompt.text, prompt.images, MARK)
    assert isinstance(engine, dict) and engine["multimodal_data"] == ["A", "C", "B"]
