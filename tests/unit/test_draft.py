"""DRAFT models: the `draft_num_predict` option, the load spec it gives, and the memory a
draft model adds to the scheduler's estimate."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pasture import options as opts
from pasture.client.modelfile import plan_create
from pasture.config import Settings
from pasture.errors import BadRequestError, ModelfileError
from pasture.gguf import read_gguf
from pasture.runner.base import LoadSpec
from pasture.scheduler.memory import estimate, estimate_spec, read_shape
from pasture.server.pipeline.model import ResolvedModel
from pasture.store import manifests as mf
from pasture.store.model import LocalModel
from pasture.store.names import ModelName
from pasture.store.show import capabilities
from tests.ggufs import write_tiny_llama


@pytest.mark.parametrize("value", [-1, 257, "4", 2.5e9])
def test_draft_num_predict_is_a_bounded_integer(value: object) -> None:
    with pytest.raises(BadRequestError, match="draft_num_predict"):
        opts.validate({"draft_num_predict": value})


def test_draft_num_predict_is_a_modelfile_parameter() -> None:
    assert opts.validate({"draft_num_predict": 0}) == {"draft_num_predict": 0}
    assert opts.parse_parameter("draft_num_predict", "8") == 8
    with pytest.raises(BadRequestError, match="must be of type integer"):
        opts.parse_parameter("draft_num_predict", "many")


def _model(path: Path, draft: Path | None) -> LocalModel:
    config = mf.Layer(mediaType=mf.MEDIA_TYPE_CONFIG, digest="sha256:" + "0" * 64, size=2)
    return LocalModel(name=ModelName.parse("m"), manifest=mf.Manifest(config=config, layers=[]),
                      digest="0" * 64, modified_at=datetime.now(UTC), config=mf.ModelConfig(),
                      model_path=path, draft_path=draft)


def test_the_load_spec_carries_draft_num_predict_and_zero_turns_the_draft_off(
        tmp_path: Path) -> None:
    main = write_tiny_llama(tmp_path / "main.gguf")
    draft = write_tiny_llama(tmp_path / "draft.gguf", n_layers=1)
    settings = Settings.from_env({})
    drafted, alone = _resolved(_model(main, draft)), _resolved(_model(main, None))

    default = drafted.load_spec({}, settings)
    assert (default.draft_model, default.draft_num_predict) == (str(draft), 4)
    assert drafted.load_spec({"draft_num_predict": 8}, settings).draft_num_predict == 8
    # 0 loads no draft at all, and a model without one ignores the option: the same runner.
    assert drafted.load_spec({"draft_num_predict": 0}, settings) == alone.load_spec({}, settings)
    assert alone.load_spec({"draft_num_predict": 8}, settings) == alone.load_spec({}, settings)


def _resolved(model: LocalModel) -> ResolvedModel:
    info = read_gguf(model.model_path)
    return ResolvedModel("m", model.name, model, info, tuple(capabilities(model, info)))


def test_a_draft_model_adds_its_weights_cache_and_layer_compute_to_the_estimate(
        tmp_path: Path) -> None:
    main = write_tiny_llama(tmp_path / "main.gguf", n_layers=4)
    draft_path = write_tiny_llama(tmp_path / "draft.gguf", n_layers=2, n_embd=32, n_head=2,
                                  n_head_kv=1, n_ff=64)
    spec = LoadSpec(str(main), num_ctx=2048, num_parallel=2, pooling="last",
                    kv_cache_type="q8_0")
    alone = estimate_spec(spec)
    both = estimate_spec(replace(spec, draft_model=str(draft_path)))
    # The draft: the same context and slots, llama.cpp's default f16 cache, and one output
    # per slot, so only the layer part of a compute buffer.
    draft = estimate(read_shape(draft_path), num_ctx=2048, num_parallel=2)
    assert both.draft is not None and both.draft.kv_bytes == draft.kv_bytes
    assert both.draft.compute_bytes == draft.compute_layer_bytes < draft.compute_bytes
    extra_on_cpu = (draft.shape.weight_bytes + draft.kv_bytes + draft.compute_layer_bytes
                    + draft.output_buffer_bytes)
    assert both.total_bytes(0) == alone.total_bytes(0) + extra_on_cpu
    # Offloaded, the draft's last blocks go with the main model's (same layer count).
    for layers in (1, 3, 5):
        assert both.gpu_bytes(layers) == alone.gpu_bytes(layers) + both.draft.gpu_bytes(layers)
        assert both.gpu_bytes(layers) > alone.gpu_bytes(layers)


def test_a_draft_naming_a_model_is_refused_with_a_hint(tmp_path: Path) -> None:
    # The server takes a draft as uploaded files (`draft_files`), as Ollama's does.
    with pytest.raises(ModelfileError, match=r"line 2\): .*not a model name"):
        plan_create("FROM m\nDRAFT smollm2:135m\n", tmp_path)
    with pytest.raises(ModelfileError, match=r"no such draft model file: \S+none.gguf$"):
        plan_create("FROM m\nDRAFT ./none.gguf\n", tmp_path)
    write_tiny_llama(tmp_path / "d.gguf")
    assert [name for name, _ in plan_create("FROM m\nDRAFT d.gguf\n", tmp_path).draft_files] \
        == ["d.gguf"]
