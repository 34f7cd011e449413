"""`/api/show`'s reading of a model, as Ollama's: `model_info` arrays (null unless
`verbose`, then whole), and the capabilities Ollama derives beyond text (`audio` from the
GGUF or its projector, whatever the config lists, such as `image`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from pasture.gguf import read_gguf
from pasture.store import manifests as mf
from pasture.store.model import LocalModel
from pasture.store.names import ModelName
from pasture.store.show import capabilities, show_model
from tests.ggufs import write_tiny_llama


def _model(path: Path, projector: Path | None = None,
           config: mf.ModelConfig | None = None) -> LocalModel:
    layer = mf.Layer(mediaType=mf.MEDIA_TYPE_CONFIG, digest="sha256:" + "0" * 64, size=2)
    return LocalModel(name=ModelName.parse("m"), manifest=mf.Manifest(config=layer, layers=[]),
                      digest="0" * 64, modified_at=datetime.now(UTC),
                      config=config or mf.ModelConfig(), model_path=path,
                      projector_path=projector)


def _clip(path: Path, **metadata: Any) -> Path:
    """A projector GGUF holding only `metadata` (and one tensor): what show reads of it."""
    writer = gguf.GGUFWriter(str(path), "clip")
    for key, value in metadata.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        else:
            writer.add_string(key, value)
    writer.add_tensor("mm.0.weight", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _capabilities(model: LocalModel) -> list[str]:
    return capabilities(model, read_gguf(model.model_path))


def test_a_projector_with_an_audio_encoder_makes_the_model_hear(tmp_path: Path) -> None:
    text = write_tiny_llama(tmp_path / "text.gguf", n_layers=1)
    hearing = _clip(tmp_path / "a.gguf", **{"clip.has_vision_encoder": True,
                                            "clip.has_audio_encoder": True})
    seeing = _clip(tmp_path / "v.gguf", **{"clip.has_vision_encoder": True,
                                           "clip.has_audio_encoder": False})
    gemma3n = _clip(tmp_path / "g.gguf", **{"has_audio_encoder": True,
                                            "vision.projector_type": "gemma3nv"})
    assert _capabilities(_model(text, hearing)) == ["completion", "vision", "audio"]
    assert _capabilities(_model(text, seeing)) == ["completion", "vision"]
    assert _capabilities(_model(text, gemma3n)) == ["completion", "vision"]  # as in Ollama
    assert _capabilities(_model(text)) == ["completion"]


def test_the_configs_capabilities_are_reported(tmp_path: Path) -> None:
    text = write_tiny_llama(tmp_path / "text.gguf", n_layers=1)
    listed = mf.ModelConfig(capabilities=["image", "completion"])
    assert _capabilities(_model(text, config=listed)) == ["completion", "image"]


def test_model_info_arrays_are_null_unless_verbose(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "text.gguf", n_layers=1)
    vocabulary = read_gguf(path, max_inline_array=10**9).metadata["tokenizer.ggml.tokens"]
    plain = show_model(_model(path)).model_info
    verbose = show_model(_model(path), verbose=True).model_info
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        assert plain[key] is None, key
        assert isinstance(verbose[key], list) and len(verbose[key]) == len(vocabulary), key
    assert verbose["tokenizer.ggml.tokens"] == vocabulary
    assert verbose["general.architecture"] == plain["general.architecture"] == "llama"
    assert "tokenizer.chat_template" not in verbose


def test_show_lists_the_tensors(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "text.gguf", n_layers=1, n_embd=16)
    tensors = show_model(_model(path)).tensors
    assert tensors is not None
    embedding = next(t for t in tensors if t.name == "token_embd.weight")
    assert embedding.type == "F32" and embedding.shape[0] == 16
