"""Tiny random-weight GGUF models for tests, written with PyPI's `gguf.GGUFWriter`.

`write_tiny_llama` makes a complete llama-architecture model (weights, hyperparameters
and a tokenizer) that llama.cpp loads and runs in milliseconds; its output is noise,
which is all a test of plumbing needs. `write_projector` makes a vision projector (an
mmproj file) for such a model, `write_gguf` any small metadata/tensor mix.

    from tests.ggufs import write_tiny_llama
    path = write_tiny_llama(tmp_path / "tiny.gguf", chat_template="{{ messages }}")
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her "
    "would make like him into time has look two more write go see number no way could people "
    "my than first water been call who oil its now find long down day did get come made may "
    "part hello world sky blue why"
).split()

_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def _spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocab: specials, the 256 byte fallbacks, then word pieces."""
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces += ["\u2581" + w for w in _WORDS]
    tokens += pieces
    types += [_NORMAL] * len(pieces)
    scores = [0.0] * (5 + 256) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _bpe_vocab() -> tuple[list[str], list[int], list[str]]:
    """Byte-level BPE vocab (GPT-2 style) with a few merges and ChatML specials."""
    chars = _byte_to_unicode()
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [_CONTROL] * 3
    tokens += [chars[b] for b in range(256)]
    types += [_NORMAL] * 256
    space = chars[ord(" ")]
    merges = [f"{space} t", "h e", f"{space}t he", "i s", f"{space} a"]
    for merge in merges:
        tokens.append(merge.replace(" ", ""))
        types.append(_NORMAL)
    return tokens, types, merges


def _add_value(writer: gguf.GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value) if value >= 0 else writer.add_int32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        writer.add_array(key, list(value))


def write_tiny_llama(
    path: Path,
    *,
    chat_template: str | None = None,
    n_layers: int = 2,
    n_embd: int = 64,
    n_ff: int = 128,
    n_head: int = 4,
    n_head_kv: int = 2,
    context_length: int = 512,
    tokenizer: str = "llama",
    name: str = "tiny-llama",
    extra_kv: Mapping[str, Any] | None = None,
    seed: int = 0,
    f16: bool = False,
) -> Path:
    """Write a loadable random llama model (F32 weights, or F16 with `f16`: its matrices,
    as llama.cpp's converter writes them) to `path` and return it.

    `tokenizer` is "llama" (SentencePiece with byte fallback) or "gpt2" (byte-level BPE).
    `extra_kv` adds or overrides metadata (ints are written as uint32, floats as float32).
    """
    rng = np.random.default_rng(seed)
    arch = "llama"
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)

    if tokenizer == "llama":
        tokens, scores, types = _spm_vocab()
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
    elif tokenizer == "gpt2":
        tokens, types, merges = _bpe_vocab()
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(0)
        writer.add_eos_token_id(2)
    else:
        raise ValueError(f"unknown tokenizer {tokenizer!r}")
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for key, value in (extra_kv or {}).items():
        _add_value(writer, key, value)

    n_vocab = len(tokens)
    head_dim = n_embd // n_head

    def weight(*shape: int) -> np.ndarray:
        # numpy shapes are reversed relative to ggml's (ne0 is the last numpy axis)
        return (rng.standard_normal(shape) * 0.02).astype(np.float16 if f16 else np.float32)

    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, n_embd))
    for i in range(n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))

    return _finish(writer, path)


def write_gguf(
    path: Path,
    metadata: Mapping[str, Any] | None = None,
    tensors: Sequence[tuple[str, np.ndarray]] = (),
    *,
    arch: str = "llama",
) -> Path:
    """Write an arbitrary small GGUF: the given metadata and tensors, nothing else."""
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in (metadata or {}).items():
        _add_value(writer, key, value)
    for name, array in tensors:
        writer.add_tensor(name, array)
    return _finish(writer, path)


def write_lora(
    path: Path,
    base: Path,
    *,
    rank: int = 8,
    alpha: float = 8.0,
    targets: Sequence[str] = ("attn_q", "attn_v"),
    std: float = 0.1,
    seed: int = 0,
) -> Path:
    """Write a random LoRA adapter for the GGUF model `base` in llama.cpp's format.

    As `convert_lora_to_gguf.py` writes it: `general.type` "adapter", `adapter.type`
    "lora", `adapter.lora.alpha`, and per adapted weight `W` (ggml shape `[n_in, n_out]`)
    an F32 pair `W.lora_a` `[n_in, rank]` and `W.lora_b` `[rank, n_out]`; the engine adds
    `alpha / rank · B·A` to `W`. `targets` name the block weights adapted in every block.
    """
    from pasture.gguf import read_gguf

    info = read_gguf(base)
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), info.architecture or "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for tensor in info.tensors:
        parts = tensor.name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in targets:
            continue
        n_in, n_out = tensor.shape  # numpy shapes are ggml's reversed
        a = rng.standard_normal((rank, n_in)) * std
        b = rng.standard_normal((n_out, rank)) * std
        writer.add_tensor(f"{tensor.name}.lora_a", a.astype(np.float32))
        writer.add_tensor(f"{tensor.name}.lora_b", b.astype(np.float32))
    return _finish(writer, path)


def write_projector(
    path: Path,
    text_embd: int,
    *,
    image_size: int = 32,
    patch_size: int = 8,
    n_embd: int = 32,
    n_ff: int = 48,
    n_head: int = 4,
    hidden: int = 64,
    seed: int = 0,
) -> Path:
    """Write a random LLaVA-style vision projector (llama.cpp's mmproj GGUF, projector type
    `mlp`) for a text model whose embeddings have `text_embd` values.

    A one-block CLIP vision encoder (llava skips its last block, so no block runs) feeds a
    two-layer MLP (`mm.0`, GELU, `mm.2`) that outputs `text_embd` values per patch: an
    image becomes `(image_size // patch_size) ** 2` tokens of the text model (16 here).
    Tensor shapes are as clip.cpp loads them (numpy shapes are ggml's reversed).
    """
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "clip")
    for key, value in {
        "clip.has_vision_encoder": True,
        "clip.projector_type": "mlp",
        "clip.vision.image_size": image_size,
        "clip.vision.patch_size": patch_size,
        "clip.vision.embedding_length": n_embd,
        "clip.vision.feed_forward_length": n_ff,
        "clip.vision.block_count": 1,
        "clip.vision.projection_dim": text_embd,
        "clip.vision.attention.head_count": n_head,
        "clip.vision.attention.layer_norm_epsilon": 1e-5,
        "clip.vision.image_mean": [0.5, 0.5, 0.5],
        "clip.vision.image_std": [0.5, 0.5, 0.5],
    }.items():
        _add_value(writer, key, value)
    writer.add_tensor("v.patch_embd.weight", weight(n_embd, 3, patch_size, patch_size))
    writer.add_tensor("v.position_embd.weight", weight((image_size // patch_size) ** 2, n_embd))
    for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
        writer.add_tensor(f"v.blk.0.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"v.blk.0.{name}.bias", zeros(n_embd))
    for name in ("ln1", "ln2"):
        writer.add_tensor(f"v.blk.0.{name}.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"v.blk.0.{name}.bias", zeros(n_embd))
    writer.add_tensor("v.blk.0.ffn_up.weight", weight(n_ff, n_embd))
    writer.add_tensor("v.blk.0.ffn_up.bias", zeros(n_ff))
    writer.add_tensor("v.blk.0.ffn_down.weight", weight(n_embd, n_ff))
    writer.add_tensor("v.blk.0.ffn_down.bias", zeros(n_embd))
    writer.add_tensor("mm.0.weight", weight(hidden, n_embd))
    writer.add_tensor("mm.0.bias", zeros(hidden))
    writer.add_tensor("mm.2.weight", weight(text_embd, hidden))
    writer.add_tensor("mm.2.bias", zeros(text_embd))
    return _finish(writer, path)


def _finish(writer: gguf.GGUFWriter, path: Path) -> Path:
    """Write out everything added to `writer` (header, metadata, tensors) and close it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_many_tensors(path: Path, count: int) -> Path:
    """A valid GGUF of `count` empty tensors and no metadata: cheap to write, but costly
    to parse (a hostile upload; `pasture.gguf` allows a million)."""
    entries = b"".join(
        struct.pack("<Q", len(name)) + name + struct.pack("<IqIQ", 1, 0, 0, 0)
        for name in (f"t{i}".encode() for i in range(count)))
    header = b"GGUF" + struct.pack("<IQQ", 3, count, 0) + entries
    path.write_bytes(header + bytes(-len(header) % 32))  # the data starts aligned
    return path
