"""How a load spec becomes llama.cpp's parameters in the runner child."""

from __future__ import annotations

import pytest
import xllamacpp

from pasture.runner.base import LoadSpec
from pasture.runner.main import engine_params

KINDS = xllamacpp.llama_flash_attn_type


@pytest.mark.parametrize(("chosen", "kind"), [
    (None, KINDS.LLAMA_FLASH_ATTN_TYPE_AUTO), (True, KINDS.LLAMA_FLASH_ATTN_TYPE_ENABLED),
    (False, KINDS.LLAMA_FLASH_ATTN_TYPE_DISABLED),
])
def test_flash_attention_is_auto_unless_the_settings_say(chosen: bool | None,
                                                         kind: object) -> None:
    spec = LoadSpec("model.gguf", 2048, flash_attention=chosen).to_json()
    assert engine_params(spec).flash_attn_type == kind
