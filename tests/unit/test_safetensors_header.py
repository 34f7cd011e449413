"""The Safetensors header check (`store.safetensors`): what the `safetensors` library
writes passes with its tensor count; any other bytes give a 400, never another error."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from pasture.errors import BadRequestError
from pasture.store.safetensors import check_header, check_index, check_names, is_hf_directory
from tests.hf_models import write_safetensors, write_tiny_hf_llama


def test_a_file_the_library_writes_passes(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"a": np.zeros((3, 4), np.float16), "b": np.ones(5, np.int64),
               "empty": np.zeros((0, 2), np.float32)}, str(path), metadata={"format": "pt"})
    assert check_header(path, "model.safetensors") == 3


def test_save_pretrained_shards_and_their_index_pass(tmp_path: Path) -> None:
    folder = write_tiny_hf_llama(tmp_path / "model", dtype="F16", shards=2)
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert sum(check_header(folder / name, name) for name in shards) == 21
    check_index(folder / "model.safetensors.index.json", "index", shards)
    with pytest.raises(BadRequestError, match="weight_map names 'model-00002-of-00002"):
        check_index(folder / "model.safetensors.index.json", "index", shards[:1])


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"weight_map": {"a": "x.safetensors"}, "weight_map": {"a": "/etc/passwd"}}',
     "duplicate key"),  # the converter would read the last one
    (b'{"weight_map": ["x.safetensors"]}', "needs a weight_map object"),
    (b'{"weight_map": {"a": 1}}', "weight_map names 1"),
    (b'{"weight_map": {"a": ["x.safetensors"]}}', "weight_map names \\['x"),
    (b"[1]", "needs a weight_map object"),
    (b"\xff", "not valid JSON"),
])
def test_a_bad_shard_index_is_refused(tmp_path: Path, raw: bytes, message: str) -> None:
    (tmp_path / "index.json").write_bytes(raw)
    with pytest.raises(BadRequestError, match=message):
        check_index(tmp_path / "index.json", "index.json", ["x.safetensors"])


def test_a_gap_between_tensors_is_refused(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "x.safetensors", {
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, bytes(12))
    with pytest.raises(BadRequestError, match="starts at 8, expected 4"):
        check_header(path, "x.safetensors")


def test_duplicate_tensor_names_are_refused(tmp_path: Path) -> None:
    raw = b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},' \
          b' "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0")
    with pytest.raises(BadRequestError, match="duplicate key"):
        check_header(path, "x.safetensors")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, (1 << 64) - 1))
def test_any_bytes_give_a_count_or_a_400(data: bytes, length: int) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
        f.write(struct.pack("<Q", length % 256 if length % 2 else length) + data)
        f.flush()
        try:
            assert check_header(Path(f.name), "m.safetensors") >= 0
        except BadRequestError as exc:
            assert exc.message.startswith("m.safetensors: invalid Safetensors file")


_ENTRY = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "U8", "I64", "X9"]),
    "shape": st.lists(st.integers(-1, 6), max_size=3),
    "data_offsets": st.lists(st.integers(-1, 64), min_size=1, max_size=3),
})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=3), _ENTRY, max_size=4), st.integers(0, 80))
def test_any_tensor_table_gives_its_count_or_a_400(header: dict[str, object], size: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = write_safetensors(Path(folder) / "m.safetensors", header, bytes(size))
        try:
            assert check_header(path, "m.safetensors") == len(header)
        except BadRequestError as exc:
            assert exc.message.startswith("m.safetensors: invalid Safetensors file")


def test_directory_kinds_and_refused_names() -> None:
    assert is_hf_directory({"model.safetensors": "d", "config.json": "d"})
    assert is_hf_directory({"config.json": "d", "pytorch_model.bin": "d"})
    assert not is_hf_directory({"model.gguf": "d", "config.json": "d"})
    assert not is_hf_directory({"weights.bin": "d"})  # a GGUF named .bin, as Ollama takes
    assert check_names({"model-00001-of-00002.safetensors": "d", "config.json": "d",
                        "tokenizer.model": "d", "chat_template.jinja": "d"}) == [
        "model-00001-of-00002.safetensors"]
    for name in ("pytorch_model.bin", "model.pt", "evil.py", "README.md"):
        with pytest.raises(BadRequestError, match=name):
            check_names({"model.safetensors": "d", name: "d"})
