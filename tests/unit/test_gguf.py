"""The GGUF reader reads real and generated models, and rejects every malformed file with
GGUFError quickly and in bounded memory (the cases of llama.cpp's test-gguf.cpp)."""

from __future__ import annotations

import os
import random
import struct
import time
import tracemalloc
from pathlib import Path

import gguf as gguf_writer_pkg
import numpy as np
import pytest

from pasture.errors import GGUFError
from pasture.gguf import (
    FILE_TYPES,
    GGML_TYPES,
    ArrayInfo,
    ValueType,
    human_number,
    parse_gguf,
    read_gguf,
)
from tests.ggufs import CHATML_TEMPLATE, write_gguf, write_tiny_llama

SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


# --- hand-built files --------------------------------------------------------------------


def u32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def gstr(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return u64(len(raw)) + raw


def header(n_tensors: int = 0, n_kv: int = 0, version: int = 3, magic: bytes = b"GGUF") -> bytes:
    return magic + u32(version) + u64(n_tensors) + u64(n_kv)


def kv_u32(key: str, value: int) -> bytes:
    return gstr(key) + u32(ValueType.UINT32) + u32(value)


def kv_str(key: str, value: str | bytes) -> bytes:
    return gstr(key) + u32(ValueType.STRING) + gstr(value)


def tensor_info(name: str, shape: tuple[int, ...], gtype: int = 0, offset: int = 0) -> bytes:
    dims = b"".join(u64(d) for d in shape)
    return gstr(name) + u32(len(shape)) + dims + u32(gtype) + u64(offset)


def f32_file(*tensors: tuple[str, int], extra_kv: bytes = b"", n_kv: int = 0) -> bytes:
    """A file with 1-D F32 tensors of the given lengths, laid out as llama.cpp expects."""
    infos, offset = b"", 0
    for name, length in tensors:
        infos += tensor_info(name, (length,), 0, offset)
        offset += length * 4 + (-(length * 4) % 32)
    head = header(len(tensors), n_kv) + extra_kv + infos
    head += b"\0" * (-len(head) % 32)
    data = b"".join(b"\1" * (length * 4) + b"\0" * (-(length * 4) % 32) for _, length in tensors)
    return head + data


def rejects(data: bytes, match: str | None = None) -> GGUFError:
    with pytest.raises(GGUFError) as info:
        parse_gguf(data)
    if match is not None:
        assert match in info.value.message, info.value.message
    assert info.value.status == 400
    return info.value


# --- valid files -------------------------------------------------------------------------


def test_reads_a_generated_llama(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "tiny.gguf", chat_template=CHATML_TEMPLATE, n_layers=3)
    info = read_gguf(path)
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.name == "tiny-llama"
    assert info.file_type == "F32"
    assert info.context_length == 512
    assert info.embedding_length == 64
    assert info.block_count == 3
    assert info.pooling_type is None
    assert info.chat_template == CHATML_TEMPLATE
    assert info.file_size == path.stat().st_size
    assert info.data_offset % 32 == 0
    assert info.metadata["tokenizer.ggml.model"] == "llama"
    tokens = info.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArrayInfo) and tokens.type == ValueType.STRING
    assert {t.name for t in info.tensors} >= {"token_embd.weight", "blk.2.ffn_down.weight"}
    assert info.parameter_count == sum(int(np.prod(t.shape)) for t in info.tensors)


def test_agrees_with_pypi_reader_on_our_own_files(tmp_path: Path) -> None:
    """The trusted-input reader from PyPI as an oracle, on files we wrote ourselves."""
    path = write_tiny_llama(tmp_path / "t.gguf", tokenizer="gpt2", chat_template="x")
    ours = read_gguf(path, max_inline_array=1 << 20)
    theirs = gguf_writer_pkg.GGUFReader(path)
    assert ours.data_offset == theirs.data_offset
    for field in theirs.fields.values():
        if field.name.startswith("GGUF."):
            continue
        expected = field.contents()
        got = ours.metadata[field.name]
        if isinstance(expected, float) or (isinstance(expected, list) and expected
                                           and isinstance(expected[0], float)):
            assert np.allclose(got, expected)
        else:
            assert got == expected, field.name
    for mine, tensor in zip(ours.tensors, theirs.tensors, strict=True):
        assert mine.name == tensor.name
        assert mine.shape == tuple(int(d) for d in tensor.shape)
        assert mine.n_bytes == int(tensor.n_bytes)
        assert ours.data_offset + mine.offset == tensor.data_offset


def test_every_value_type_and_nested_arrays(tmp_path: Path) -> None:
    writer = gguf_writer_pkg.GGUFWriter(str(tmp_path / "v.gguf"), "test")
    writer.add_uint8("u8", 255)
    writer.add_int8("i8", -128)
    writer.add_uint16("u16", 65535)
    writer.add_int16("i16", -32768)
    writer.add_uint32("u32", 2**32 - 1)
    writer.add_int32("i32", -(2**31))
    writer.add_float32("f32", 1.5)
    writer.add_bool("yes", True)
    writer.add_bool("no", False)
    writer.add_uint64("u64", 2**64 - 1)
    writer.add_int64("i64", -(2**63))
    writer.add_float64("f64", -0.25)
    writer.add_string("s", "héllo")
    writer.add_array("small", [1, 2, 3])
    writer.add_array("nested", [[1, 2], [3]])
    writer.add_array("big_nested", [[i] for i in range(100)])
    writer.add_array("words", ["a", "b"])
    writer.add_array("many_words", [f"w{i}" for i in range(65)])
    writer.add_array("many_floats", [0.5] * 1000)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    meta = read_gguf(tmp_path / "v.gguf").metadata
    assert (meta["u8"], meta["i8"], meta["u16"], meta["i16"]) == (255, -128, 65535, -32768)
    assert (meta["u32"], meta["i32"]) == (2**32 - 1, -(2**31))
    assert (meta["u64"], meta["i64"]) == (2**64 - 1, -(2**63))
    assert (meta["f32"], meta["f64"]) == (1.5, -0.25)
    assert meta["yes"] is True and meta["no"] is False
    assert meta["s"] == "héllo"
    assert meta["small"] == [1, 2, 3]
    assert meta["nested"] == [[1, 2], [3]]
    assert meta["big_nested"] == ArrayInfo(ValueType.ARRAY, 100)
    assert meta["words"] == ["a", "b"]
    assert meta["many_words"] == ArrayInfo(ValueType.STRING, 65)
    assert meta["many_floats"] == ArrayInfo(ValueType.FLOAT32, 1000)
    assert meta["general.architecture"] == "test"


def test_long_arrays_are_kept_when_asked(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "a.gguf", {"xs": list(range(100))})
    assert read_gguf(path).metadata["xs"] == ArrayInfo(ValueType.INT32, 100)
    assert read_gguf(path, max_inline_array=100).metadata["xs"] == list(range(100))


def test_tensor_sizes_follow_ggml_block_sizes(tmp_path: Path) -> None:
    q = np.zeros((4, 18 * 2), dtype=np.uint8)  # 4 rows of 64 Q4_0 values = 2 blocks each
    writer = gguf_writer_pkg.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    writer.add_tensor("q", q, raw_dtype=gguf_writer_pkg.GGMLQuantizationType.Q4_0)
    writer.add_tensor("h", np.zeros((3, 5), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    q_info, h_info = read_gguf(tmp_path / "q.gguf").tensors
    assert (q_info.shape, q_info.type_name, q_info.n_elements, q_info.n_bytes) == (
        (64, 4), "Q4_0", 256, 4 * 2 * 18)
    assert (h_info.shape, h_info.type_name, h_info.n_bytes) == ((5, 3), "F16", 30)
    assert h_info.offset == 160  # Q4_0 data padded to the 32-byte alignment


def test_ggml_type_table_matches_the_gguf_package() -> None:
    for gtype, (name, block, size) in GGML_TYPES.items():
        member = gguf_writer_pkg.GGMLQuantizationType(gtype)
        assert member.name == name
        assert gguf_writer_pkg.GGML_QUANT_SIZES[member] == (block, size)


@pytest.mark.parametrize(
    ("file_type", "label"),
    [(0, "F32"), (1, "F16"), (2, "Q4_0"), (3, "Q4_1"), (7, "Q8_0"), (15, "Q4_K_M"),
     (14, "Q4_K_S"), (18, "Q6_K"), (32, "BF16"), (30, "IQ4_XS"), (999, "unknown")],
)
def test_file_type_labels(file_type: int, label: str, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "f.gguf", {"general.file_type": file_type})
    assert read_gguf(path).file_type == label


def test_file_type_names_match_llama_cpp() -> None:
    for value, label in FILE_TYPES.items():
        if value in (4, 38):  # Ollama's MXFP4 and llama.cpp's MXFP4_MOE
            continue
        assert gguf_writer_pkg.LlamaFileType(value).name.removeprefix("MOSTLY_") == label or (
            value == 0 and label == "F32")


def test_missing_file_type_is_none(tmp_path: Path) -> None:
    assert read_gguf(write_gguf(tmp_path / "n.gguf", {})).file_type is None


def test_embedding_models_expose_pooling_type(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "e.gguf", extra_kv={"llama.pooling_type": 1})
    assert read_gguf(path).pooling_type == 1


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (999, "999"), (1000, "1K"), (1001, "1K"), (1_000_000, "1M"),
     (125_000_000, "125M"), (500_500_000, "500.50M"), (500_550_000, "500.55M"),
     (1_000_000_000, "1B"), (2_800_000_000, "2.8B"), (2_850_000_000, "2.9B"),
     (1_000_000_000_000, "1000B"), (134_515_008, "134.52M")],
)
def test_human_number_matches_ollama(n: int, text: str) -> None:
    assert human_number(n) == text


def test_reads_smollm2_quickly(smollm2_gguf: Path) -> None:
    path = smollm2_gguf
    read_gguf(path)  # warm the page cache
    start = time.perf_counter()
    info = read_gguf(path)
    elapsed = time.perf_counter() - start
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.embedding_length == 576
    assert info.block_count == 30
    assert info.file_type == "Q4_1"
    assert info.parameter_count == 134_515_008
    assert info.parameter_size == "134.52M"
    assert info.metadata["tokenizer.ggml.tokens"] == ArrayInfo(ValueType.STRING, 49152)
    assert "<|im_start|>" in info.chat_template
    assert len(info.tensors) == 272
    assert elapsed < 0.5  # about 40 ms here; generous for slow CI machines


# --- malformed files ---------------------------------------------------------------------


def test_rejects_bad_magic() -> None:
    rejects(header(magic=b"GGML"), "not a GGUF file (bad magic)")
    rejects(b"", "bad magic")
    rejects(b"GGU", "bad magic")


def test_rejects_version_1_and_unknown_versions() -> None:
    rejects(header(version=1), "version 1 is not supported")
    rejects(header(version=0), "unsupported GGUF version 0")
    rejects(header(version=4), "unsupported GGUF version 4")
    rejects(b"GGUF" + struct.pack(">I", 3) + u64(0) + u64(0), "big-endian")


@pytest.mark.parametrize("count", [2**64 - 1, 2**63, 2**32, 10**6])
def test_rejects_impossible_counts(count: int) -> None:
    rejects(header(n_tensors=count), "tensor count")
    rejects(header(n_kv=count), "metadata count")


def test_rejects_huge_or_truncated_key_length() -> None:
    rejects(header(n_kv=1) + u64(2**64 - 1) + b"\0" * 16, "too long")
    rejects(header(n_kv=1) + u64(1000) + b"abc" + b"\0" * 16, "runs past end of file")


def test_rejects_empty_and_duplicate_keys() -> None:
    rejects(header(n_kv=1) + gstr("") + u32(ValueType.UINT8) + b"\0" * 8, "empty")
    rejects(header(n_kv=2) + kv_u32("a.b", 1) + kv_u32("a.b", 2), "duplicate key 'a.b'")


@pytest.mark.parametrize("vtype", [13, 255, 2**31, 2**32 - 1])
def test_rejects_unknown_value_types(vtype: int) -> None:
    rejects(header(n_kv=1) + gstr("k") + u32(vtype) + b"\0" * 16, "invalid value type")


def test_rejects_huge_string_value() -> None:
    rejects(header(n_kv=1) + gstr("k") + u32(ValueType.STRING) + u64(2**63) + b"\0" * 8)
    rejects(header(n_kv=1) + gstr("k") + u32(ValueType.STRING) + u64(50) + b"x" * 10,
            "runs past end of file")


@pytest.mark.parametrize(
    "etype", [ValueType.UINT8, ValueType.STRING, ValueType.FLOAT64, ValueType.ARRAY])
@pytest.mark.parametrize("length", [2**63, 2**64 - 1, 1000])
def test_rejects_huge_array_length(etype: int, length: int) -> None:
    body = gstr("k") + u32(ValueType.ARRAY) + u32(etype) + u64(length) + b"\0" * 20
    rejects(header(n_kv=1) + body, "runs past end of file")


def test_rejects_bad_array_element_type() -> None:
    rejects(header(n_kv=1) + gstr("k") + u32(ValueType.ARRAY) + u32(99) + u64(1) + b"\0" * 8,
            "invalid array element type")


@pytest.mark.parametrize("bad_length", [10**6, 2**63, 2**64 - 1])
def test_rejects_strings_in_a_big_array_that_run_past_the_end(bad_length: int) -> None:
    strings = b"".join(gstr(f"t{i}") for i in range(50)) + u64(bad_length) + b"x" * 8
    strings += b"".join(gstr(f"t{i}") for i in range(49))
    body = gstr("tokens") + u32(ValueType.ARRAY) + u32(ValueType.STRING) + u64(100) + strings
    rejects(header(n_kv=1) + body, "array of strings at offset")


def test_rejects_arrays_nested_too_deeply() -> None:
    value = u32(ValueType.UINT8) + u64(0)
    for _ in range(6):
        value = u32(ValueType.ARRAY) + u64(1) + value
    rejects(header(n_kv=1) + gstr("k") + u32(ValueType.ARRAY) + value, "too deeply")


@pytest.mark.parametrize("alignment", [0, 3, 48, 2**21])
def test_rejects_bad_alignment(alignment: int) -> None:
    rejects(f32_file(("t", 8), extra_kv=kv_u32("general.alignment", alignment), n_kv=1),
            "alignment")


def test_rejects_alignment_of_the_wrong_type() -> None:
    kv = gstr("general.alignment") + u32(ValueType.UINT8) + b"\x20"
    rejects(f32_file(("t", 8), extra_kv=kv, n_kv=1), "must be a uint32")


def test_custom_alignment_moves_the_data_section() -> None:
    head = header(1, 1) + kv_u32("general.alignment", 64) + tensor_info("t", (4,))
    head += b"\0" * (-len(head) % 64)
    info = parse_gguf(head + b"\1" * 16)
    assert info.alignment == 64 and info.data_offset == len(head)


def test_rejects_long_tensor_name() -> None:
    rejects(header(1) + tensor_info("x" * 64, (4,)) + b"\0" * 64, "name is too long")


def test_rejects_duplicate_tensor_names() -> None:
    rejects(f32_file(("t", 8), ("t", 8)), "duplicate tensor name 't'")


def test_rejects_too_many_dimensions() -> None:
    rejects(header(1) + tensor_info("t", (1, 1, 1, 1, 1)) + b"\0" * 64, "5 dimensions")


def test_rejects_negative_dimension() -> None:
    rejects(header(1) + tensor_info("t", (4, 2**64 - 1)) + b"\0" * 64, "negative")


def test_rejects_element_count_overflow() -> None:
    rejects(header(1) + tensor_info("t", (2**62, 2**62)) + b"\0" * 64, "too many elements")


@pytest.mark.parametrize("gtype", [4, 5, 31, 36, 42, 2**31, 2**32 - 1])
def test_rejects_unknown_tensor_types(gtype: int) -> None:
    rejects(header(1) + tensor_info("t", (32,), gtype) + b"\0" * 64, "unsupported ggml type")


def test_rejects_row_not_a_multiple_of_the_block_size() -> None:
    rejects(header(1) + tensor_info("t", (33,), 2) + b"\0" * 64, "not a multiple")


@pytest.mark.parametrize("offset", [2**64 - 1, 32, 4])
def test_rejects_unexpected_tensor_offset(offset: int) -> None:
    head = header(1) + tensor_info("t", (8,), 0, offset)
    head += b"\0" * (-len(head) % 32)
    rejects(head + b"\0" * 64, "has offset")


def test_rejects_tensor_data_past_end_of_file() -> None:
    valid = f32_file(("a", 8), ("b", 8))
    parse_gguf(valid)
    rejects(valid[:-1], "past the end of the file")
    rejects(f32_file(("big", 1_000_000))[:4096], "past the end of the file")


def test_rejects_invalid_utf8_key() -> None:
    rejects(header(n_kv=1) + gstr(b"\xff\xfe") + u32(ValueType.UINT8) + b"\0", "malformed")


def test_every_truncation_of_a_valid_file_is_rejected(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "small.gguf",
        {"general.name": "small", "a.list": [1, 2, 3], "a.words": [f"w{i}" for i in range(70)],
         "a.nested": [[1.5], [2.5, 3.5]], "a.flag": True},
        [("x", np.ones((2, 8), dtype=np.float32)), ("y", np.ones(3, dtype=np.float16))],
    )
    data = path.read_bytes()
    info = parse_gguf(data)
    last = info.tensors[-1]
    end = info.data_offset + last.offset + last.n_bytes
    for cut in range(len(data)):
        if cut < end:
            with pytest.raises(GGUFError):
                parse_gguf(data[:cut])
        else:
            parse_gguf(data[:cut])  # only trailing padding is missing


def test_random_mutations_raise_only_gguf_error(tmp_path: Path) -> None:
    data = write_gguf(
        tmp_path / "seed.gguf",
        {"general.name": "m", "xs": list(range(80)), "s": ["a", "b"]},
        [("w", np.ones((4, 4), dtype=np.float32))],
    ).read_bytes()
    rng = random.Random(1234)
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(mutated))
            mutated[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        start = time.perf_counter()
        try:
            parse_gguf(bytes(mutated))
        except GGUFError:
            pass
        assert time.perf_counter() - start < 0.5


def test_hostile_headers_are_rejected_fast_in_bounded_memory(tmp_path: Path) -> None:
    """A 43-byte file claiming an array of 2**63 elements hangs PyPI's reader; not ours."""
    hostile = [
        header(n_kv=1) + gstr("k") + u32(ValueType.ARRAY) + u32(ValueType.UINT8) + u64(2**63),
        header(n_kv=1) + gstr("k") + u32(ValueType.STRING) + u64(2**62),
        header(n_tensors=2**40, n_kv=2**40),
        header(1) + tensor_info("t", (2**31, 2**31)) + b"\0" * 32,
    ]
    tracemalloc.start()
    try:
        for i, data in enumerate(hostile):
            path = tmp_path / f"h{i}.gguf"
            path.write_bytes(data)
            start = time.perf_counter()
            with pytest.raises(GGUFError):
                read_gguf(path)
            assert time.perf_counter() - start < 0.5
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_non_files_are_rejected_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(GGUFError, match="not a regular file|cannot read"):
            read_gguf(path)
    with pytest.raises(GGUFError, match="cannot read GGUF file"):
        read_gguf(tmp_path / "missing.gguf")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(GGUFError, match="bad magic"):
        read_gguf(tmp_path / "empty")


def test_error_messages_do_not_leak_paths(tmp_path: Path) -> None:
    with pytest.raises(GGUFError) as info:
        read_gguf(tmp_path / "secret-dir" / "missing.gguf")
    assert str(tmp_path) not in info.value.message
