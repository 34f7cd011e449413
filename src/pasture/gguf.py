"""A bounded, stdlib-only reader for GGUF metadata and tensor infos.

Model files come from users and registries, so every count and length read from the file
is checked against the bytes that remain before anything is read or allocated, following
llama.cpp's `gguf.cpp` and the cases in its `test-gguf.cpp`. Large arrays (the tokenizer's
tokens, merges and scores) are walked but not materialised, so a real model's header is
read in milliseconds and a hostile one cannot make us allocate more than the file holds.
PyPI's `gguf.GGUFReader` trusts lengths and can hang on a crafted file: do not use it here.

Every problem is reported as GGUFError with a precise message, never another exception.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from pasture.errors import GGUFError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 20
MAX_STRING = 16 << 20  # Ollama's cap on a single string
MAX_KV = 1 << 16
MAX_TENSORS = 1 << 20
MAX_DIMS = 4
MAX_NAME = 64  # llama.cpp's GGML_MAX_NAME: tensor names must be shorter
MAX_ARRAY_DEPTH = 4
MAX_METADATA_BYTES = 64 << 20  # strings kept in memory, all together
MAX_INLINE_ARRAY = 64  # longer arrays are summarised as ArrayInfo
_INT64_MAX = (1 << 63) - 1


class ValueType(IntEnum):
    """GGUF metadata value types."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALARS: dict[int, struct.Struct] = {
    ValueType.UINT8: struct.Struct("<B"),
    ValueType.INT8: struct.Struct("<b"),
    ValueType.UINT16: struct.Struct("<H"),
    ValueType.INT16: struct.Struct("<h"),
    ValueType.UINT32: struct.Struct("<I"),
    ValueType.INT32: struct.Struct("<i"),
    ValueType.FLOAT32: struct.Struct("<f"),
    ValueType.BOOL: struct.Struct("<b"),
    ValueType.UINT64: struct.Struct("<Q"),
    ValueType.INT64: struct.Struct("<q"),
    ValueType.FLOAT64: struct.Struct("<d"),
}
# The least bytes one element of each type can take: bounds array lengths up front.
_MIN_SIZE = {**{t: s.size for t, s in _SCALARS.items()}, ValueType.STRING: 8, ValueType.ARRAY: 12}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")

# ggml type id -> (name, elements per block, bytes per block), as ggml.c's type_traits.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

# `general.file_type` -> the quantization label Ollama shows (llama.cpp's names beyond it).
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "MXFP4",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4",
    39: "NVFP4",
    40: "Q1_0",
}


@dataclass(frozen=True)
class ArrayInfo:
    """A metadata array too long to keep: its element type and length only."""

    type: ValueType
    length: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's header entry; `offset` is relative to the data section."""

    name: str
    shape: tuple[int, ...]
    type: int
    offset: int
    n_elements: int
    n_bytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type][0]


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says; the tensor data is not read."""

    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    file_size: int
    alignment: int = DEFAULT_ALIGNMENT

    def _str(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    def _int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _arch_int(self, suffix: str) -> int | None:
        arch = self.architecture
        return self._int(f"{arch}.{suffix}") if arch else None

    @property
    def architecture(self) -> str | None:
        return self._str("general.architecture")

    @property
    def name(self) -> str | None:
        return self._str("general.name")

    @property
    def file_type(self) -> str | None:
        """Quantization label such as `Q4_K_M`; None when the file does not say."""
        value = self._int("general.file_type")
        if value is None:
            return None
        return FILE_TYPES.get(value, "unknown")

    @property
    def parameter_count(self) -> int:
        """Sum of the tensors' element counts (what Ollama reports, not the KV)."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def parameter_size(self) -> str:
        return human_number(self.parameter_count)

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def pooling_type(self) -> int | None:
        """Set on embedding models; its presence is Ollama's `embedding` capability."""
        return self._arch_int("pooling_type")

    @property
    def reranker(self) -> bool:
        """A cross-encoder (llama.cpp's rank pooling): it scores query–document pairs
        through its classifier head instead of producing vectors."""
        return self.pooling_type == POOLING_RANK

    @property
    def chat_template(self) -> str | None:
        return self._str("tokenizer.chat_template")

    @property
    def vocab_size(self) -> int | None:
        """How many tokens the vocabulary holds (the length of `tokenizer.ggml.tokens`)."""
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArrayInfo):
            return tokens.length
        return len(tokens) if isinstance(tokens, list) else None


POOLING_RANK = 4  # llama.cpp's LLAMA_POOLING_TYPE_RANK, as its converter writes rerankers


def human_number(n: int) -> str:
    """Ollama's `format.HumanNumber`: 134515008 -> "134.52M", 1.2e9 -> "1.2B"."""
    if n >= 1_000_000_000:
        value = n / 1_000_000_000
        return f"{value:.0f}B" if value.is_integer() else f"{value:.1f}B"
    if n >= 1_000_000:
        value = n / 1_000_000
        return f"{value:.0f}M" if value.is_integer() else f"{value:.2f}M"
    if n >= 1_000:
        return f"{n / 1_000:.0f}K"
    return str(n)


class _Reader:
    """Cursor over the mapped file that refuses to read past its end."""

    def __init__(self, buf: mmap.mmap | bytes, size: int, max_inline: int) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0
        self.max_inline = max_inline
        self.kept = 0  # bytes of strings kept so far

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise GGUFError(f"GGUF truncated: {what} at offset {self.pos} runs past end of file")

    def scalar(self, st: struct.Struct, what: str) -> Any:
        self.need(st.size, what)
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def u32(self, what: str) -> int:
        return self.scalar(_U32, what)

    def u64(self, what: str) -> int:
        return self.scalar(_U64, what)

    def string_length(self, what: str) -> int:
        start = self.pos
        length = self.u64(f"{what} length")
        if length > MAX_STRING:
            raise GGUFError(f"GGUF {what} at offset {start} is too long ({length} bytes)")
        if length > self.remaining():
            raise GGUFError(
                f"GGUF truncated: {what} at offset {start} runs past end of file"
            )
        return length

    def raw_string(self, what: str) -> bytes:
        length = self.string_length(what)
        self.kept += length
        if self.kept > MAX_METADATA_BYTES:
            raise GGUFError("GGUF metadata is too large")
        data = self.buf[self.pos : self.pos + length]
        self.pos += length
        return bytes(data)

    def text(self, what: str) -> str:
        """A string kept as metadata; invalid UTF-8 is replaced, as a label is still useful."""
        return self.raw_string(what).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Walk `count` strings without keeping them (tokens, merges).

        The hot loop of reading a model: a length past the end makes the next unpack fail
        or leaves the cursor beyond the file, both caught, so no check runs per string.
        """
        start, unpack, buf = self.pos, _U64.unpack_from, self.buf
        pos = start
        try:
            for _ in range(count):
                pos += 8 + unpack(buf, pos)[0]
        except (struct.error, OverflowError):
            pos = self.size + 1
        if pos > self.size:
            raise GGUFError(
                f"GGUF truncated: array of strings at offset {start} runs past end of file"
            )
        self.pos = pos

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype == ValueType.STRING:
            return self.text(what)
        if vtype == ValueType.ARRAY:
            return self.array(what, depth + 1)
        st = _SCALARS.get(vtype)
        if st is None:
            raise GGUFError(f"GGUF {what} has invalid value type {vtype}")
        value = self.scalar(st, what)
        return bool(value) if vtype == ValueType.BOOL else value

    def array(self, what: str, depth: int) -> Any:
        if depth > MAX_ARRAY_DEPTH:
            raise GGUFError(f"GGUF {what} nests arrays too deeply")
        start = self.pos
        etype = self.u32(f"{what} element type")
        if etype not in _MIN_SIZE:
            raise GGUFError(f"GGUF {what} has invalid array element type {etype}")
        count = self.u64(f"{what} length")
        if count * _MIN_SIZE[etype] > self.remaining():
            raise GGUFError(
                f"GGUF truncated: array {what} at offset {start} ({count} elements) "
                "runs past end of file"
            )
        if count <= self.max_inline:
            st = _SCALARS.get(etype)
            if st is not None and etype != ValueType.BOOL:  # numbers in one call (vocab types)
                values = list(struct.unpack_from(f"<{count}{st.format[-1]}", self.buf, self.pos))
                self.pos += count * st.size
                return values
            return [self.value(etype, what, depth) for _ in range(count)]
        if etype == ValueType.STRING:
            self.skip_strings(count)
        elif etype == ValueType.ARRAY:
            for _ in range(count):
                self.array(what, depth + 1)
        else:
            self.pos += count * _MIN_SIZE[etype]
        return ArrayInfo(ValueType(etype), count)


def _nbytes(name: str, shape: tuple[int, ...], gtype: int) -> tuple[int, int]:
    """(elements, bytes) of a tensor, checked like llama.cpp's gguf_init."""
    traits = GGML_TYPES.get(gtype)
    if traits is None:
        raise GGUFError(f"GGUF tensor {name!r} has unsupported ggml type {gtype}")
    type_name, block, type_size = traits
    elements = 1
    for dim in shape:
        elements *= dim
    if elements > _INT64_MAX:
        raise GGUFError(f"GGUF tensor {name!r} has too many elements")
    row = shape[0] if shape else 1
    if row % block:
        raise GGUFError(
            f"GGUF tensor {name!r} of type {type_name} has {row} elements per row, "
            f"not a multiple of its block size {block}"
        )
    return elements, elements // block * type_size


def _parse(buf: mmap.mmap | bytes, size: int, max_inline: int) -> GGUFInfo:
    r = _Reader(buf, size, max_inline)
    if size < 4 or bytes(buf[:4]) != MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    r.pos = 4
    version = r.u32("version")
    if version == 1:
        raise GGUFError("GGUF version 1 is not supported (only versions 2 and 3)")
    if version not in (2, 3):
        if version & 0xFFFF == 0 and (version >> 24) in (2, 3):
            raise GGUFError("big-endian GGUF files are not supported")
        raise GGUFError(f"unsupported GGUF version {version} (only versions 2 and 3)")
    n_tensors = r.u64("tensor count")
    n_kv = r.u64("metadata count")
    # Smallest KV: key length + 1-byte key + type + 1-byte value (14 bytes); smallest
    # tensor info: name length + n_dims + type + offset (24 bytes).
    if n_kv > MAX_KV or n_kv * 14 > r.remaining():
        raise GGUFError(f"GGUF metadata count {n_kv} is impossible for a file of {size} bytes")
    if n_tensors > MAX_TENSORS or n_kv * 14 + n_tensors * 24 > r.remaining():
        raise GGUFError(
            f"GGUF tensor count {n_tensors} is impossible for a file of {size} bytes"
        )

    metadata: dict[str, Any] = {}
    value_types: dict[str, int] = {}
    for index in range(n_kv):
        raw_key = r.raw_string(f"key {index}")
        if not raw_key:
            raise GGUFError(f"GGUF key {index} is empty")
        key = raw_key.decode("utf-8")
        if key in metadata:
            raise GGUFError(f"GGUF duplicate key {key!r}")
        vtype = r.u32(f"type of {key!r}")
        metadata[key] = r.value(vtype, repr(key))
        value_types[key] = vtype

    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in metadata:
        alignment = metadata["general.alignment"]
        if value_types["general.alignment"] != ValueType.UINT32:
            raise GGUFError("GGUF general.alignment must be a uint32")
        if alignment == 0 or alignment & (alignment - 1) or alignment > MAX_ALIGNMENT:
            raise GGUFError(f"GGUF alignment {alignment} is not a power of two up to 1 MiB")

    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    for index in range(n_tensors):
        raw_name = r.raw_string(f"tensor {index} name")
        if len(raw_name) >= MAX_NAME:
            raise GGUFError(f"GGUF tensor {index} name is too long ({len(raw_name)} bytes)")
        name = raw_name.decode("utf-8")
        if name in seen:
            raise GGUFError(f"GGUF duplicate tensor name {name!r}")
        seen.add(name)
        n_dims = r.u32(f"tensor {name!r} dimension count")
        if n_dims > MAX_DIMS:
            raise GGUFError(f"GGUF tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
        shape = tuple(r.scalar(_I64, f"tensor {name!r} shape") for _ in range(n_dims))
        if any(dim < 0 for dim in shape):
            raise GGUFError(f"GGUF tensor {name!r} has a negative dimension")
        gtype = r.u32(f"tensor {name!r} type")
        offset = r.u64(f"tensor {name!r} offset")
        elements, nbytes = _nbytes(name, shape, gtype)
        tensors.append(TensorInfo(name, shape, gtype, offset, elements, nbytes))

    data_offset = r.pos + (-r.pos % alignment) if tensors else r.pos
    expected = 0
    for tensor in tensors:
        if tensor.offset != expected:
            raise GGUFError(
                f"GGUF tensor {tensor.name!r} has offset {tensor.offset}, expected {expected}"
            )
        end = data_offset + tensor.offset + tensor.n_bytes
        if end > size:
            raise GGUFError(
                f"GGUF tensor {tensor.name!r} data ends at {end}, past the end of the file "
                f"({size} bytes)"
            )
        expected += tensor.n_bytes + (-tensor.n_bytes % alignment)
    return GGUFInfo(version, metadata, tensors, data_offset, size, alignment)


def parse_gguf(data: bytes, *, max_inline_array: int = MAX_INLINE_ARRAY) -> GGUFInfo:
    """Parse GGUF bytes already in memory (tests, small uploads)."""
    try:
        return _parse(data, len(data), max_inline_array)
    except GGUFError:
        raise
    except (struct.error, OverflowError, UnicodeDecodeError, MemoryError, ValueError) as exc:
        raise GGUFError(f"malformed GGUF file: {exc}") from None


def read_gguf(path: Path, *, max_inline_array: int = MAX_INLINE_ARRAY) -> GGUFInfo:
    """Read a GGUF file's header; GGUFError (and nothing else) when it is not valid.

    Blocking: call it from a worker thread in async code. Arrays longer than
    `max_inline_array` come back as ArrayInfo (pass a larger value for `show --verbose`).
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            raise GGUFError("not a GGUF file (not a regular file)")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 4:
                raise GGUFError("not a GGUF file (bad magic)")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return _parse(mm, size, max_inline_array)
    except GGUFError:
        raise
    except (struct.error, OverflowError, UnicodeDecodeError, MemoryError, ValueError) as exc:
        raise GGUFError(f"malformed GGUF file: {exc}") from None
    except OSError as exc:
        raise GGUFError(f"cannot read GGUF file: {exc.strerror or 'I/O error'}") from None
