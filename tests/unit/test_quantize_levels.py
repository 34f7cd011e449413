"""`create --quantize` levels: Ollama's names, its aliases and its refusal, word for word
(`fs/ggml.ParseFileType`)."""

from __future__ import annotations

import pytest

from pasture.engines import quantizer
from pasture.errors import BadRequestError
from pasture.store.quantize import parse_level


@pytest.mark.parametrize(("asked", "level"), [
    ("q4_K_M", "Q4_K_M"), ("q4_k", "Q4_K_M"), ("Q4_K_S", "Q4_K_S"), ("q8_0", "Q8_0"),
    ("f16", "F16"), ("F32", "F32"), ("bf16", "BF16"),
])
def test_levels_ollama_accepts(asked: str, level: str) -> None:
    assert parse_level(asked) == level


def test_other_levels_get_ollamas_refusal() -> None:
    with pytest.raises(BadRequestError) as refused:
        parse_level("q2_K")
    assert refused.value.message == ("unsupported quantization type Q2_K - supported types "
                                     "are F32, F16, Q4_K_S, Q4_K_M, Q8_0")


def test_the_vendored_quantizer_source_is_for_the_installed_engine() -> None:
    """The vendored headers describe the loader of exactly one xllamacpp release: an engine
    upgrade must come with a refreshed `engines/llama_quant/vendor`."""
    import importlib.metadata

    assert quantizer.vendored_version() == importlib.metadata.version("xllamacpp")
