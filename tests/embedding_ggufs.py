"""A tiny random-weight BERT embedding model for tests, written with `gguf.GGUFWriter`.

llama.cpp loads it as an embedding model (the GGUF declares mean pooling and
non-causal attention; it cannot generate), which is what Ollama calls the
`embedding` capability. Its vectors are noise, which is all a test of plumbing needs.

    from tests.embedding_ggufs import write_tiny_bert
    path = write_tiny_bert(tmp_path / "bert.gguf")
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from tests.ggufs import _WORDS

_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3


def _wordpiece_vocab() -> tuple[list[str], list[int]]:
    """BERT specials, then word-start pieces (`▁word`, as llama.cpp's WPM wants them) and
    single letters as continuation pieces."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    types = [_CONTROL, _UNKNOWN, _CONTROL, _CONTROL, _CONTROL]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = letters + ["\u2581" + c for c in letters]
    pieces += ["\u2581" + w for w in _WORDS if len(w) > 1]
    pieces += ["\u2581" + p for p in ".,!?"]
    return tokens + pieces, types + [_NORMAL] * len(pieces)


def write_tiny_bert(path: Path, *, n_layers: int = 2, n_embd: int = 64, n_ff: int = 128,
                    n_head: int = 4, context_length: int = 512, seed: int = 0,
                    reranker: bool = False) -> Path:
    """Write a loadable random BERT embedding model (F32, mean pooling) to `path`; with
    `reranker`, a cross-encoder instead: rank pooling and the classifier head llama.cpp
    applies to the [CLS] state (`cls` dense + tanh, then `cls.output` to one score), as
    its converter writes bge-reranker and ms-marco MiniLM models."""
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_name("tiny-bert")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_layer_norm_eps(1e-12)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.RANK if reranker else gguf.PoolingType.MEAN)

    tokens, types = _wordpiece_vocab()
    writer.add_tokenizer_model("bert")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_type_count(2)
    writer.add_pad_token_id(0)
    writer.add_unk_token_id(1)
    writer.add_bos_token_id(2)  # [CLS]
    writer.add_eos_token_id(3)
    writer.add_uint32("tokenizer.ggml.seperator_token_id", 3)  # llama.cpp's spelling
    writer.add_mask_token_id(4)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    writer.add_tensor("token_embd.weight", weight(len(tokens), n_embd))
    writer.add_tensor("token_types.weight", weight(2, n_embd))
    writer.add_tensor("position_embd.weight", weight(context_length, n_embd))
    writer.add_tensor("token_embd_norm.weight", ones(n_embd))
    writer.add_tensor("token_embd_norm.bias", zeros(n_embd))
    for i in range(n_layers):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(n_embd, n_embd))
            writer.add_tensor(f"blk.{i}.{name}.bias", zeros(n_embd))
        writer.add_tensor(f"blk.{i}.attn_output_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.attn_output_norm.bias", zeros(n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.bias", zeros(n_ff))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
        writer.add_tensor(f"blk.{i}.ffn_down.bias", zeros(n_embd))
        writer.add_tensor(f"blk.{i}.layer_output_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.layer_output_norm.bias", zeros(n_embd))
    if reranker:  # larger weights than the body's, so scores differ visibly
        writer.add_tensor("cls.weight", weight(n_embd, n_embd) * 50)
        writer.add_tensor("cls.bias", zeros(n_embd))
        writer.add_tensor("cls.output.weight", weight(1, n_embd) * 50)
        writer.add_tensor("cls.output.bias", zeros(1))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
