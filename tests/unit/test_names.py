"""Model names follow Ollama's grammar, defaults and display rules, and stay inside the store."""

from __future__ import annotations

import os

import pytest

from pasture.errors import InvalidNameError
from pasture.store.names import ModelName


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("smollm2", "registry.ollama.ai/library/smollm2:latest"),
        ("smollm2:135m", "registry.ollama.ai/library/smollm2:135m"),
        ("me/m", "registry.ollama.ai/me/m:latest"),
        ("example.com/me/m:v1", "example.com/me/m:v1"),
        ("example.com:5000/me/m:v1", "example.com:5000/me/m:v1"),
        ("https://example.com/me/m:v1", "example.com/me/m:v1"),
        ("Llama3.2:3B-instruct_q4", "registry.ollama.ai/library/Llama3.2:3B-instruct_q4"),
        ("_x/_y:_z", "registry.ollama.ai/_x/_y:_z"),
    ],
)
def test_parse_fills_ollama_defaults(text: str, full: str) -> None:
    assert ModelName.parse(text).full == full


def test_parse_keeps_http_scheme_for_insecure_registries() -> None:
    name = ModelName.parse("http://localhost:5000/me/m:v1")
    assert name.scheme == "http"
    assert name.base_url == "http://localhost:5000"
    assert ModelName.parse("me/m").base_url == "https://registry.ollama.ai"


def test_parse_ignores_digest_suffix() -> None:
    digest = "sha256:" + "a" * 64
    assert ModelName.parse(f"me/m:v1@{digest}").full == "registry.ollama.ai/me/m:v1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "m:",
        ":tag",
        "/m",
        "ns/",
        "a//m",
        "../m",
        "a/../../b",
        "ns/..",
        "m/..:x",
        "..",
        ".hidden",
        "-m",
        "m:-t",
        "m:.t",
        "name.space/m",  # namespaces take no dots
        "a/b/c/d",
        "m:t:t",
        "m\\x",
        "m\x00",
        "m:t/x",
        "héllo",
        "m:" + "t" * 81,
        "m" * 81,
        "n" * 81 + "/m",
        "h" * 256 + "/n/m",  # longer than a path component: ENAMETOOLONG on write
        "ftp://host/ns/m",
        "https://ns/m",
        "m@",
        "m@../../x",
        "a..b",
    ],
)
def test_parse_rejects_invalid_names(text: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        ModelName.parse(text)
    assert info.value.message == "invalid model name"
    assert info.value.status == 400


def test_part_lengths_match_ollama_limits() -> None:
    assert ModelName.parse("m" * 80 + ":" + "t" * 80).model == "m" * 80
    assert ModelName.parse("h" * 255 + "/n/m").host == "h" * 255


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("smollm2:135m", "smollm2:135m"),
        ("smollm2", "smollm2:latest"),
        ("me/m", "me/m:latest"),
        ("example.com:5000/me/m:v1", "example.com:5000/me/m:v1"),
        ("example.com/library/m", "example.com/library/m:latest"),
        ("REGISTRY.OLLAMA.AI/Library/M", "M:latest"),
    ],
)
def test_display_is_ollamas_shortest_form(text: str, display: str) -> None:
    assert ModelName.parse(text).display == display


def test_key_compares_names_case_insensitively() -> None:
    a, b = ModelName.parse("Me/Model:Tag"), ModelName.parse("me/model:tag")
    assert a != b  # case is preserved
    assert a.key == b.key
    assert a.key != ModelName.parse("me/model:other").key


def test_manifest_parts_round_trip() -> None:
    name = ModelName.parse("example.com:5000/me/m:v1")
    assert name.manifest_parts == ("example.com:5000", "me", "m", "v1")
    assert ModelName.from_manifest_parts(*name.manifest_parts) == name


def test_from_manifest_parts_rejects_non_name_directories() -> None:
    with pytest.raises(InvalidNameError):
        ModelName.from_manifest_parts("registry.ollama.ai", "library", "m", ".tmp-abc")
    with pytest.raises(InvalidNameError):
        ModelName.from_manifest_parts("..", "library", "m", "latest")


@pytest.mark.parametrize(
    "text",
    ["m", "me/m:v1", "a.b:1/ns/m.x:t.y", "h/n/m:t", "x_y-z/m_._-:_"],
)
def test_every_accepted_name_resolves_inside_the_manifest_root(text: str, tmp_path) -> None:
    root = tmp_path / "manifests"
    path = root.joinpath(*ModelName.parse(text).manifest_parts)
    assert os.path.commonpath([root, os.path.normpath(path)]) == str(root)
    assert len(path.relative_to(root).parts) == 4

