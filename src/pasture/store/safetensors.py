"""What an uploaded Hugging Face directory may hold, and a strict Safetensors header check.

A model directory sent for conversion is untrusted: its files are checked here before
llama.cpp's converter reads a byte of them. Only Safetensors weights and the small text
files around them are taken; pickles (`.bin`, `.pt`, `.pth`, ...) are refused, since
loading one can run code, and so is Python source (`trust_remote_code`). A Safetensors
header is an 8-byte length and a JSON table of tensors: every entry's dtype, shape and
byte span is checked against the others and against the file's size, the way the
`safetensors` library validates before it maps a file, so the converter never reads past
the data or trusts a shape its bytes do not hold. A sharded model's index
(`model.safetensors.index.json`) tells the converter which files to open: each it names
must be one of the uploaded, checked weights files.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import Any

from pasture.errors import BadRequestError

MAX_HEADER = 100_000_000  # the safetensors library's own cap
MAX_FILES = 512  # a 400B model is ~200 shards plus its config and tokenizer files
MAX_SIDE_FILE = 64 << 20  # config, tokenizer, template: tokenizer.json is ~10-20 MB
MAX_DIMS = 8
MAX_NAME = 1024
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8,
               "F64": 8}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz", ".joblib")
SIDE_SUFFIXES = (".json", ".jinja", ".txt")
SIDE_NAMES = ("tokenizer.model",)  # SentencePiece's model (a protobuf, not a pickle)
INDEX_NAME = "model.safetensors.index.json"  # where the converter looks for a shard map


def is_hf_directory(files: dict[str, str]) -> bool:
    """Whether uploaded `files` are a Hugging Face style directory (weights to convert)
    rather than GGUF files: Safetensors weights, or a config without GGUF files (whose
    weights are then pickles, refused by `check_names`)."""
    names = {PurePosixPath(name.replace("\\", "/")).name.lower() for name in files}
    if any(name.endswith(".gguf") for name in names):
        return False
    return any(name.endswith(".safetensors") for name in names) or bool(
        names & {"config.json", "adapter_config.json"})


def check_names(files: dict[str, str]) -> list[str]:
    """The Safetensors files among `files`, once every name is known to be one that a
    conversion takes (400 otherwise, naming the file)."""
    if len(files) > MAX_FILES:
        raise BadRequestError(f"too many files for one model: {len(files)} (at most {MAX_FILES})")
    weights = []
    for name in files:
        lower = PurePosixPath(name.replace("\\", "/")).name.lower()
        if lower.endswith(".safetensors"):
            weights.append(name)
        elif lower.endswith(PICKLE_SUFFIXES):
            raise BadRequestError(
                f"{name}: PyTorch pickle files are not accepted (loading one can run code); "
                "save the model as Safetensors (save_pretrained(safe_serialization=True))")
        elif lower.endswith(".py"):
            raise BadRequestError(f"{name}: Python files are not accepted (a model that "
                                  "needs its own code, trust_remote_code, cannot be imported)")
        elif not (lower.endswith(SIDE_SUFFIXES) or lower in SIDE_NAMES):
            raise BadRequestError(
                f"{name}: not a file of a Safetensors model directory (expected *.safetensors, "
                "*.json, *.jinja, *.txt or tokenizer.model)")
    return weights


def check_header(path: Path, name: str) -> int:
    """The number of tensors in the Safetensors file at `path` (uploaded as `name`), or
    a 400 saying what is wrong with its header. Reads the header only (run it `isolated`:
    a header may be 100 MB of JSON)."""
    size = os.stat(path).st_size

    def bad(why: str) -> BadRequestError:
        return BadRequestError(f"{name}: invalid Safetensors file: {why}")

    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise bad("shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER:
            raise bad(f"header of {length} bytes (at most {MAX_HEADER})")
        if 8 + length > size:
            raise bad(f"header of {length} bytes in a file of {size}")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys,
                            parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"header is not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(v, str) for v in metadata.values())):
        raise bad("__metadata__ must map names to strings")
    data_size = size - 8 - length
    spans = sorted(_span(tensor, entry, bad, data_size) for tensor, entry in header.items())
    position = 0
    for begin, end, tensor in spans:
        if begin != position:
            raise bad(f"tensor {tensor!r} starts at {begin}, expected {position} "
                      "(tensors must fill the data without gaps or overlaps)")
        position = end
    if position != data_size:
        raise bad(f"tensors take {position} bytes, the data holds {data_size}")
    return len(spans)


def check_index(path: Path, name: str, weights: Collection[str]) -> None:
    """A 400 unless the shard index at `path` (uploaded as `name`) maps tensor names to
    files among `weights`: the converter opens each file it names, relative to the model's
    folder, so a name of its own (`../x`, an absolute path, `config.json`) would have it
    read a file no header check has seen. Parses up to 64 MiB of JSON (run it `isolated`)."""

    def bad(why: str) -> BadRequestError:
        return BadRequestError(f"{name}: invalid Safetensors index: {why}")

    try:
        index = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_unique_keys,
                           parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"not valid JSON ({str(exc)[:100]})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise bad("it needs a weight_map object (tensor name: file name)")
    for part in weight_map.values():
        if not isinstance(part, str) or part not in weights:
            raise bad(f"weight_map names {part!r:.200}, which is not one of the "
                      "uploaded Safetensors files")


def _span(tensor: str, entry: Any, bad: Any, data_size: int) -> tuple[int, int, str]:
    """(begin, end, name) of one header entry, once its dtype, shape and span agree."""
    if len(tensor) > MAX_NAME:
        raise bad(f"tensor name of {len(tensor)} characters")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"tensor {tensor!r} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_SIZES:
        raise bad(f"tensor {tensor!r} has unknown dtype {str(dtype)[:20]!r}")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(
            _is_int(d) and d >= 0 for d in shape)):
        raise bad(f"tensor {tensor!r} has an invalid shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
        raise bad(f"tensor {tensor!r} has invalid data_offsets")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise bad(f"tensor {tensor!r} spans bytes {begin}-{end} of {data_size}")
    if math.prod(shape) * DTYPE_SIZES[dtype] != end - begin:
        raise bad(f"tensor {tensor!r} of shape {shape} ({dtype}) does not fill its "
                  f"{end - begin} bytes")
    return begin, end, tensor


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a name given twice is refused (which one would a reader take?)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:100]!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
