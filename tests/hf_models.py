"""Tiny Hugging Face style models for tests: llama and Qwen2 directories, a PEFT LoRA.

`write_tiny_hf_llama` writes what a fine-tune leaves behind (`config.json`,
`model.safetensors` with random weights, `tokenizer.json` built with the `tokenizers`
package, `tokenizer_config.json` with a chat template), small enough for llama.cpp's
converter to take a second; in F32, F16 or BF16, in one file or sharded as
`save_pretrained` shards (`model-00001-of-00002.safetensors`, ... and
`model.safetensors.index.json`). `write_tiny_hf_qwen2` writes a Qwen2 with a
SentencePiece `tokenizer.model`. `write_tiny_lora` writes a PEFT adapter directory
(`adapter_config.json`, `adapter_model.safetensors`) for it, strong enough to change
what the model says. `write_safetensors` writes any header, hostile ones included.

    from tests.hf_models import write_tiny_hf_llama
    model_dir = write_tiny_hf_llama(tmp_path / "tiny")
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, normalizers

from tests.ggufs import CHATML_TEMPLATE

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 64, 2, 4, 2, 128
_SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
_WORDS = ("the of and to in is you that it was for on are as with they at be this have "
          "hello world sky blue why").split()


def _tokenizer() -> Tokenizer:
    """A Llama-2 style BPE (byte fallback, "▁" for spaces): specials, the 256 byte
    pieces, letters and a few whole words with the merges that build them."""
    vocab: dict[str, int] = {}
    for piece in [*_SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), "\u2581",
                  *(chr(c) for c in range(ord("a"), ord("z") + 1))]:
        vocab[piece] = len(vocab)
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        text = "\u2581" + word
        for end in range(2, len(text) + 1):
            left, right = text[:end - 1], text[end - 1]
            if text[:end] not in vocab:
                merges.append((left, right))
                vocab[text[:end]] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                                     byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                                 normalizers.Replace(" ", "\u2581")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "),
                                           decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(" ", 1, 0)])
    tokenizer.add_special_tokens(_SPECIALS)
    return tokenizer


def write_tiny_hf_llama(folder: Path, seed: int = 0, dtype: str = "F32",
                        shards: int = 1) -> Path:
    """A random-weight LlamaForCausalLM directory under `folder`, its weights in `dtype`
    ("F32", "F16" or "BF16") split into `shards` files."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>",
        "add_bos_token": False, "chat_template": CHATML_TEMPLATE,
        "tokenizer_class": "LlamaTokenizerFast"}))
    _write_model(folder, "LlamaForCausalLM", "llama", tokenizer.get_vocab_size(), seed,
                 dtype, shards,
                 {"bos_token_id": 1, "eos_token_id": 4, "tie_word_embeddings": False})
    return folder


def write_tiny_hf_qwen2(folder: Path, seed: int = 0, dtype: str = "F32") -> Path:
    """A random-weight Qwen2ForCausalLM directory under `folder` (attention biases, tied
    embeddings) with a SentencePiece `tokenizer.model`: llama.cpp's converter takes a Qwen2
    `tokenizer.json` only with Qwen's own vocabulary (it recognises the pre-tokenizer by
    the hash of a test text's tokens), but any SentencePiece model."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _train_sentencepiece(folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>",
        "add_bos_token": False, "chat_template": CHATML_TEMPLATE}))
    _write_model(folder, "Qwen2ForCausalLM", "qwen2", vocab, seed, dtype, 1,
                 {"bos_token_id": 1, "eos_token_id": 4, "tie_word_embeddings": True,
                  "use_sliding_window": False})
    return folder


def _train_sentencepiece(path: Path) -> int:
    """A small BPE SentencePiece model (byte fallback, ChatML's markers) trained on
    `_WORDS`, written to `path`; its vocabulary size."""
    import sentencepiece  # the converter's own dependency (pasture[convert])

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([" ".join(_WORDS[n:] + _WORDS[:n]) for n in range(len(_WORDS))]),
        model_writer=model, model_type="bpe", vocab_size=320, byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"], minloglevel=2, num_threads=1)
    path.write_bytes(model.getvalue())
    return sentencepiece.SentencePieceProcessor(model_file=str(path)).vocab_size()


def _write_model(folder: Path, architecture: str, model_type: str, vocab: int, seed: int,
                 dtype: str, shards: int, config: dict[str, Any]) -> None:
    """config.json and random weights in `folder`: a llama-shaped decoder, with q/k/v
    biases and no lm_head for Qwen2."""
    qwen2 = model_type == "qwen2"
    head_dim = HIDDEN // HEADS
    (folder / "config.json").write_text(json.dumps({
        "architectures": [architecture], "model_type": model_type,
        "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "vocab_size": vocab, "torch_dtype": _TORCH_DTYPES[dtype], **config}))
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    tensors = {"model.embed_tokens.weight": weight(vocab, HIDDEN),
               "model.norm.weight": np.ones(HIDDEN, np.float32)}
    if not qwen2:
        tensors["lm_head.weight"] = weight(vocab, HIDDEN)
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}."
        tensors |= {
            prefix + "input_layernorm.weight": np.ones(HIDDEN, np.float32),
            prefix + "post_attention_layernorm.weight": np.ones(HIDDEN, np.float32),
            prefix + "self_attn.q_proj.weight": weight(HEADS * head_dim, HIDDEN),
            prefix + "self_attn.k_proj.weight": weight(KV_HEADS * head_dim, HIDDEN),
            prefix + "self_attn.v_proj.weight": weight(KV_HEADS * head_dim, HIDDEN),
            prefix + "self_attn.o_proj.weight": weight(HIDDEN, HEADS * head_dim),
            prefix + "mlp.gate_proj.weight": weight(FFN, HIDDEN),
            prefix + "mlp.up_proj.weight": weight(FFN, HIDDEN),
            prefix + "mlp.down_proj.weight": weight(HIDDEN, FFN),
        }
        if qwen2:
            tensors |= {prefix + "self_attn.q_proj.bias": weight(HEADS * head_dim),
                        prefix + "self_attn.k_proj.bias": weight(KV_HEADS * head_dim),
                        prefix + "self_attn.v_proj.bias": weight(KV_HEADS * head_dim)}
    _save_pretrained(tensors, folder, dtype, shards)


_TORCH_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def _save_pretrained(tensors: dict[str, np.ndarray], folder: Path, dtype: str,
                     shards: int) -> None:
    """`tensors` saved in `dtype` as transformers' `save_pretrained` lays them out: one
    `model.safetensors`, or `shards` files and the index that maps each tensor to one."""
    if shards == 1:
        _save(tensors, folder / "model.safetensors", dtype)
        return
    names = list(tensors)
    weight_map = {}
    for shard in range(shards):
        part = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        chunk = names[shard::shards]
        _save({name: tensors[name] for name in chunk}, folder / part, dtype)
        weight_map |= dict.fromkeys(chunk, part)
    total = sum(array.size for array in tensors.values()) * (4 if dtype == "F32" else 2)
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}))


def _save(tensors: dict[str, np.ndarray], path: Path, dtype: str) -> None:
    if dtype == "BF16":  # numpy has no bfloat16: torch's writer, as a trainer's
        import torch
        from safetensors.torch import save_file as save_torch

        save_torch({name: torch.from_numpy(array).to(torch.bfloat16)
                    for name, array in tensors.items()}, str(path))
    else:
        save_file({name: array.astype(np.float16 if dtype == "F16" else np.float32)
                   for name, array in tensors.items()}, str(path))


def write_tiny_lora(folder: Path, rank: int = 4, seed: int = 1) -> Path:
    """A PEFT LoRA adapter for `write_tiny_hf_llama`'s model on every projection of the
    attention and the MLP, with weights large enough to change the output."""
    folder.mkdir(parents=True, exist_ok=True)
    head_dim = HIDDEN // HEADS
    shapes = {"self_attn.q_proj": (HEADS * head_dim, HIDDEN),
              "self_attn.v_proj": (KV_HEADS * head_dim, HIDDEN),
              "mlp.down_proj": (HIDDEN, FFN)}
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(LAYERS):
        for module, (out_dim, in_dim) in shapes.items():
            prefix = f"base_model.model.model.layers.{layer}.{module}."
            tensors[prefix + "lora_A.weight"] = rng.standard_normal(
                (rank, in_dim)).astype(np.float32)
            tensors[prefix + "lora_B.weight"] = rng.standard_normal(
                (out_dim, rank)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank,
        "target_modules": ["q_proj", "v_proj", "down_proj"],
        "base_model_name_or_path": "tiny-llama", "task_type": "CAUSAL_LM"}))
    return folder


def write_safetensors(path: Path, header: dict[str, Any], data: bytes = b"") -> Path:
    """A Safetensors file with `header` as given (hostile ones too) and `data` after it."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path
