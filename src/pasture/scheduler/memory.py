"""How much memory a model will take, from its GGUF header alone (nothing is loaded).

The scheduler needs this before it starts a runner: to choose how many layers go to the
GPU, and to decide whether another model must be evicted first. The figures follow what
llama.cpp allocates (measured on the tiny test models and SmolLM2 from the engine's own
`… buffer size = X MiB` log lines; see docs/memory.md):

- **weights**: the tensors' bytes, split into the input part (`token_embd`, always on the
  CPU), one part per block (`blk.N.*`) and the output part (`output.weight`,
  `output_norm.*`; a model with tied embeddings gets a copy of `token_embd` as its output
  when the output layer is offloaded).
- **KV cache**: per layer `(n_head_kv × key_length + n_head_kv × value_length) × n_ctx ×
  n_parallel × bytes per element` — f16 2, q8_0 34/32, q4_0 18/32
  (`PASTURE_KV_CACHE_TYPE`). `key_length`/`value_length` default to `n_embd / n_head`;
  `head_count_kv` may be a per-layer array (GQA varies by layer in some models).
- **compute buffer** (flash attention on, as Pasture runs it, and every token of a micro
  batch an output, as runners that also serve embeddings are):
  `mask + 4 × n_ubatch × max(n_vocab + 5·n_embd, 5·n_ff + n_embd)` with
  `mask = 2 × n_ctx × n_ubatch` (the f16 attention mask for one slot's context) and
  `n_ubatch = min(num_batch, 512)`. When only repeating layers are offloaded the GPU holds
  the layer part `mask + 4 × n_ubatch × (5·n_ff + n_embd)` and the CPU keeps the whole
  buffer (logits are computed there).
- **output buffer**: `4 × (n_vocab + n_embd) × n_parallel` (logits and embeddings of the
  last token of each slot).
- **draft model** (DRAFT, speculative decoding): its own weights, an f16 KV cache of the
  same context and its compute buffer, placed with the same layer count; it outputs one
  token per slot, so its compute buffer is the layer part above.
- **vision projector**: its weights, on the GPU when any layer is (llama.cpp's mtmd
  default), else on the CPU; its image-encoding buffer is not modelled.

Measured against the engine the estimate is within a few percent for SmolLM2 and the tiny
models; it does not model sliding-window caches (Gemma's SWA layers take less than this
says) or recurrent state, so it errs on the large side there.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pasture import gguf
from pasture.runner.base import LoadSpec

MiB = 1 << 20
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
DEFAULT_UBATCH = 512
_BLOCK = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a GGUF header (small: cached per blob)."""

    n_layers: int
    n_embd: int
    n_ff: int
    n_vocab: int
    input_bytes: int  # token embeddings and anything outside blocks/output: stays on the CPU
    layer_bytes: tuple[int, ...]  # weights of each block
    output_bytes: int  # output layer as offloaded (tied embeddings: a copy of token_embd)
    output_on_cpu_bytes: int  # output layer when not offloaded (0 when tied: shared tensor)
    kv_elements: tuple[int, ...]  # K+V elements per token of context, per layer

    @property
    def weight_bytes(self) -> int:
        """Weights when nothing is offloaded (what a CPU load maps)."""
        return self.input_bytes + sum(self.layer_bytes) + self.output_on_cpu_bytes


@dataclass(frozen=True)
class MemoryEstimate:
    """A model's memory for one load configuration, split by where it would live."""

    shape: ModelShape
    kv_layer_bytes: tuple[int, ...]
    compute_bytes: int  # the whole compute buffer (CPU-only or full offload)
    compute_layer_bytes: int  # the GPU part when only repeating layers are offloaded
    output_buffer_bytes: int
    draft: MemoryEstimate | None = None  # the DRAFT model loaded beside this one
    projector_bytes: int = 0  # a vision projector's weights

    @property
    def max_gpu_layers(self) -> int:
        """llama.cpp's count: every block plus the output layer."""
        return self.shape.n_layers + 1

    def gpu_bytes(self, gpu_layers: int) -> int:
        """Bytes on the GPU with `gpu_layers` offloaded (the last blocks go first)."""
        n = self.shape.n_layers
        layers = max(0, min(gpu_layers, n + 1))
        if layers == 0:
            return 0
        blocks = range(n - min(layers, n), n)
        total = sum(self.shape.layer_bytes[i] + self.kv_layer_bytes[i] for i in blocks)
        total += self.draft.gpu_bytes(gpu_layers) if self.draft else 0
        total += self.projector_bytes
        if layers > n:
            return total + self.shape.output_bytes + self.compute_bytes
        return total + self.compute_layer_bytes

    def cpu_bytes(self, gpu_layers: int) -> int:
        """Bytes in system memory with `gpu_layers` offloaded."""
        n = self.shape.n_layers
        layers = max(0, min(gpu_layers, n + 1))
        blocks = range(0, n - min(layers, n))
        total = self.shape.input_bytes + self.output_buffer_bytes
        total += self.draft.cpu_bytes(gpu_layers) if self.draft else 0
        total += self.projector_bytes if layers == 0 else 0
        total += sum(self.shape.layer_bytes[i] + self.kv_layer_bytes[i] for i in blocks)
        if layers > n:  # everything but the input layer is on the GPU
            return total + 4 * DEFAULT_UBATCH * self.shape.n_embd
        return total + self.shape.output_on_cpu_bytes + self.compute_bytes

    def total_bytes(self, gpu_layers: int = 0) -> int:
        return self.cpu_bytes(gpu_layers) + self.gpu_bytes(gpu_layers)

    @property
    def kv_bytes(self) -> int:
        return sum(self.kv_layer_bytes)


def _int_or_list(value: Any, n_layers: int, default: int) -> list[int]:
    if isinstance(value, list) and len(value) == n_layers:
        return [int(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n_layers
    return [default] * n_layers


def model_shape(info: gguf.GGUFInfo) -> ModelShape:
    """The sizes that matter for memory, from a parsed GGUF header."""
    arch = info.architecture or "llama"
    meta = info.metadata

    def arch_value(key: str) -> Any:
        return meta.get(f"{arch}.{key}")

    n_layers = info.block_count or 0
    n_embd = info.embedding_length or 0
    n_ff_value = arch_value("feed_forward_length")
    n_ff = max(n_ff_value) if isinstance(n_ff_value, list) and n_ff_value else n_ff_value
    n_ff = n_ff if isinstance(n_ff, int) else 4 * n_embd
    n_head = _int_or_list(arch_value("attention.head_count"), n_layers, 1)
    n_head_kv = _int_or_list(arch_value("attention.head_count_kv"), n_layers, 0)
    key_length = arch_value("attention.key_length")
    value_length = arch_value("attention.value_length")

    kv_elements = []
    for i in range(n_layers):
        heads_kv = n_head_kv[i] or n_head[i]
        head_dim = n_embd // max(n_head[i], 1)
        k = key_length if isinstance(key_length, int) else head_dim
        v = value_length if isinstance(value_length, int) else head_dim
        kv_elements.append(heads_kv * (k + v))

    layers = [0] * n_layers
    input_bytes = output_bytes = embd_bytes = 0
    has_output = False
    for tensor in info.tensors:
        match = _BLOCK.match(tensor.name)
        if match and int(match[1]) < n_layers:
            layers[int(match[1])] += tensor.n_bytes
        elif tensor.name.startswith("output"):
            output_bytes += tensor.n_bytes
            has_output = has_output or tensor.name == "output.weight"
        else:
            input_bytes += tensor.n_bytes
            if tensor.name == "token_embd.weight":
                embd_bytes = tensor.n_bytes

    vocab = meta.get("tokenizer.ggml.tokens")
    if isinstance(vocab, gguf.ArrayInfo):
        n_vocab = vocab.length
    elif isinstance(vocab, list):
        n_vocab = len(vocab)
    else:
        n_vocab = int(arch_value("vocab_size") or 0)
    return ModelShape(
        n_layers=n_layers,
        n_embd=n_embd,
        n_ff=n_ff,
        n_vocab=n_vocab,
        input_bytes=input_bytes,
        layer_bytes=tuple(layers),
        output_bytes=output_bytes if has_output else output_bytes + embd_bytes,
        output_on_cpu_bytes=output_bytes,
        kv_elements=tuple(kv_elements),
    )


@functools.lru_cache(maxsize=64)
def _cached_shape(path: str, size: int, mtime_ns: int) -> ModelShape:
    return model_shape(gguf.read_gguf(Path(path)))


def read_shape(path: str | Path) -> ModelShape:
    """A model file's shape, read once per blob (blocking: a few ms; call off the loop)."""
    st = os.stat(path)
    return _cached_shape(str(path), st.st_size, st.st_mtime_ns)


def ubatch_size(num_batch: int) -> int:
    """The micro-batch llama.cpp computes at once (Pasture leaves its default of 512)."""
    return max(1, min(num_batch, DEFAULT_UBATCH))


def estimate(shape: ModelShape, *, num_ctx: int, num_parallel: int = 1, num_batch: int = 512,
             kv_cache_type: str = "f16", n_ubatch: int | None = None) -> MemoryEstimate:
    """Memory for `shape` loaded with a context of `num_ctx` tokens in each of
    `num_parallel` slots (the formula is in this module's docstring)."""
    per_element = KV_BYTES_PER_ELEMENT.get(kv_cache_type, 2.0)
    cells = num_ctx * num_parallel
    kv = tuple(int(elements * cells * per_element) for elements in shape.kv_elements)
    ub = n_ubatch or ubatch_size(num_batch)
    mask = 2 * num_ctx * ub
    layer_part = 5 * shape.n_ff + shape.n_embd
    compute = mask + 4 * ub * max(shape.n_vocab + 5 * shape.n_embd, layer_part)
    compute_layer = mask + 4 * ub * layer_part
    output = 4 * (shape.n_vocab + shape.n_embd) * num_parallel
    return MemoryEstimate(shape, kv, compute, compute_layer, output)


def estimate_spec(spec: LoadSpec) -> MemoryEstimate:
    """The estimate for a runner's load spec (reads the model's header; blocking)."""
    shape = read_shape(spec.model_path)
    # A model with its own (possibly non-causal) pooling embeds a whole input per ubatch.
    own_pooling = spec.embedding and spec.pooling is None
    main = estimate(shape, num_ctx=spec.num_ctx, num_parallel=spec.num_parallel,
                    num_batch=spec.num_batch, kv_cache_type=spec.kv_cache_type,
                    n_ubatch=spec.num_batch if own_pooling else None)
    if spec.projector:  # a projector has no text blocks: all its tensors count as input
        main = replace(main, projector_bytes=read_shape(spec.projector).weight_bytes)
    if not spec.draft_model:
        return main
    # llama.cpp gives the draft the main context's size and batch, its default f16 cache
    # and one output per slot (measured on SmolLM2: KV exact, compute +9 %).
    draft = estimate(read_shape(spec.draft_model), num_ctx=spec.num_ctx,
                     num_parallel=spec.num_parallel, num_batch=spec.num_batch)
    return replace(main, draft=replace(draft, compute_bytes=draft.compute_layer_bytes))
