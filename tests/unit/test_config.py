"""Settings from the environment, and Ollama's duration syntax."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pasture.config import Settings
from pasture.durations import parse_keep_alive
from pasture.environment import parse_host
from pasture.errors import BadRequestError


@pytest.mark.parametrize(("value", "url"), [
    (None, "http://127.0.0.1:11434"), ("0.0.0.0", "http://0.0.0.0:11434"),
    (":8080", "http://127.0.0.1:8080"), ("example.com:99", "http://example.com:99"),
    ("https://example.com", "https://example.com:443"), ("[::1]:5000", "http://[::1]:5000"),
])
def test_host_values_as_ollama_reads_them(value: str | None, url: str) -> None:
    assert parse_host(value).url == url


def test_pasture_variables_win_over_ollama_ones() -> None:
    settings = Settings.from_env({"OLLAMA_HOST": "1.2.3.4:1", "PASTURE_HOST": "127.0.0.1:2",
                                  "OLLAMA_MODELS": "/srv/models", "OLLAMA_KEEP_ALIVE": "10m"})
    assert settings.host.port == 2
    assert settings.models_dir == Path("/srv/models")
    assert settings.keep_alive == 600


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.host.url == "http://127.0.0.1:11434"
    assert settings.keep_alive == 300 and settings.num_parallel == 0  # chosen per model
    assert settings.max_queue == 512 and settings.context_length == 4096


def test_keep_alive_in_the_environment_accepts_bare_seconds() -> None:
    assert Settings.from_env({"PASTURE_KEEP_ALIVE": "30"}).keep_alive == 30
    assert math.isinf(Settings.from_env({"PASTURE_KEEP_ALIVE": "-1"}).keep_alive)


@pytest.mark.parametrize(("value", "seconds"), [
    (0, 0), (30, 30), (1.5, 1.5), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("0", 0),
])
def test_keep_alive_values(value: object, seconds: float) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", [-1, "-1m", -0.5])
def test_negative_keep_alive_is_forever(value: object) -> None:
    assert math.isinf(parse_keep_alive(value))


@pytest.mark.parametrize("value", ["10", "five minutes", "5x", "", True])
def test_bad_keep_alive_is_a_400(value: object) -> None:
    with pytest.raises(BadRequestError):
        parse_keep_alive(value)


@pytest.mark.parametrize(("value", "chosen"), [
    (None, None), ("", None), ("1", True), ("true", True), ("on", True), ("yes please", True),
    ("0", False), ("false", False), ("F", False), ("FALSE", False),
])
def test_flash_attention_reads_as_ollama_reads_it(value: str | None, chosen: bool | None) -> None:
    """Unset: the engine decides; Go's false spellings: off; anything else: on."""
    environ = {} if value is None else {"OLLAMA_FLASH_ATTENTION": value}
    assert Settings.from_env(environ).flash_attention is chosen


def test_tls_needs_both_files_and_makes_the_url_https() -> None:
    both = Settings.from_env({"PASTURE_TLS_CERT": "~/cert.pem", "PASTURE_TLS_KEY": "key.pem"})
    assert both.tls_cert == Path.home() / "cert.pem" and both.tls_key == Path("key.pem")
    assert both.url == "https://127.0.0.1:11434"
    assert Settings.from_env({}).url == "http://127.0.0.1:11434"
    for one in ({"PASTURE_TLS_CERT": "cert.pem"}, {"PASTURE_TLS_KEY": "key.pem"}):
        with pytest.raises(ValueError, match="both PASTURE_TLS_CERT and PASTURE_TLS_KEY"):
            Settings.from_env(one)
def test_registry_mirrors_move_a_hosts_pulls_and_nothing_else() -> None:
    from pasture.config import parse_mirrors
    from pasture.store.names import ModelName
    from pasture.store.registry.client import TransferOptions, registry_base

    mirrors = parse_mirrors(" HF.co=http://127.0.0.1:8080/ , registry.ollama.ai=https://m.example")
    assert mirrors == (("hf.co", "http://127.0.0.1:8080"),
                       ("registry.ollama.ai", "https://m.example"))
    options = TransferOptions(mirrors=mirrors)
    hf = ModelName.parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
    assert registry_base(hf, False, options.mirror(hf.host)) == "http://127.0.0.1:8080"
    other = ModelName.parse("example.com/me/model")
    assert registry_base(other, False, options.mirror(other.host)) == "https://example.com"
    for bad in ("hf.co", "hf.co=ftp://x", "=https://x", "hf.co/x=https://y", "hf.co=https://"):
        with pytest.raises(ValueError, match="registry mirror"):
            parse_mirrors(bad)
