"""The memory estimate from GGUF headers, and the parser of the engine's buffer log lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pasture.gguf import read_gguf
from pasture.runner.base import LoadSpec
from pasture.runner.buffers import BufferSizes
from pasture.scheduler.memory import estimate, estimate_spec, model_shape, read_shape
from tests.ggufs import write_gguf, write_tiny_llama

MiB = 1 << 20


def test_shape_splits_weights_into_input_blocks_and_output(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "m.gguf", n_layers=3, n_embd=64, n_ff=128)
    info = read_gguf(path)
    shape = model_shape(info)
    assert shape.n_layers == 3 and shape.n_embd == 64 and shape.n_ff == 128
    by_name = {t.name: t.n_bytes for t in info.tensors}
    assert shape.input_bytes == by_name["token_embd.weight"]
    assert shape.output_bytes == by_name["output.weight"] + by_name["output_norm.weight"]
    assert shape.layer_bytes[0] == sum(b for n, b in by_name.items() if n.startswith("blk.0."))
    assert shape.weight_bytes == sum(by_name.values())
    assert shape.n_vocab == info.tensors[0].shape[1]


def test_kv_cache_follows_gqa_context_slots_and_cache_type(tmp_path: Path) -> None:
    # 4 heads of 16 dims, 2 KV heads: 2 × 16 for K and as much for V, per layer and token.
    path = write_tiny_llama(tmp_path / "m.gguf", n_layers=2, n_embd=64, n_head=4, n_head_kv=2)
    shape = read_shape(path)
    assert shape.kv_elements == (64, 64)
    f16 = estimate(shape, num_ctx=1024, num_parallel=3)
    assert f16.kv_bytes == 2 * 64 * 1024 * 3 * 2
    q8 = estimate(shape, num_ctx=1024, num_parallel=3, kv_cache_type="q8_0")
    q4 = estimate(shape, num_ctx=1024, num_parallel=3, kv_cache_type="q4_0")
    assert q8.kv_bytes == f16.kv_bytes * 34 // 64
    assert q4.kv_bytes == f16.kv_bytes * 18 // 64


def test_explicit_key_and_value_lengths_override_the_head_dimension(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "m.gguf", n_layers=2, n_embd=64, n_head=4, n_head_kv=2,
                            extra_kv={"llama.attention.key_length": 32,
                                      "llama.attention.value_length": 8})
    assert read_shape(path).kv_elements == (2 * (32 + 8),) * 2


def test_tied_embeddings_count_a_copy_only_when_the_output_is_offloaded(tmp_path: Path) -> None:
    embd = np.zeros((300, 64), dtype=np.float32)
    block = np.zeros((64, 64), dtype=np.float32)
    path = write_gguf(tmp_path / "tied.gguf", {
        "llama.block_count": 1, "llama.embedding_length": 64, "llama.feed_forward_length": 128,
        "llama.attention.head_count": 4, "llama.attention.head_count_kv": 4,
    }, [("token_embd.weight", embd), ("output_norm.weight", np.ones(64, np.float32)),
        ("blk.0.attn_q.weight", block)])
    shape = read_shape(path)
    assert shape.output_on_cpu_bytes == 64 * 4  # just the norm: the matrix is shared
    assert shape.output_bytes == 64 * 4 + embd.nbytes  # llama.cpp duplicates it on the GPU
    e = estimate(shape, num_ctx=256)
    assert e.gpu_bytes(2) - e.gpu_bytes(1) >= embd.nbytes


def test_offloading_moves_bytes_from_cpu_to_gpu_last_blocks_first(tmp_path: Path) -> None:
    shape = read_shape(write_tiny_llama(tmp_path / "m.gguf", n_layers=4))
    e = estimate(shape, num_ctx=2048)
    assert e.gpu_bytes(0) == 0 and e.cpu_bytes(0) == e.total_bytes(0)
    assert [e.gpu_bytes(n) < e.gpu_bytes(n + 1) for n in range(5)] == [True] * 5
    assert e.gpu_bytes(99) == e.gpu_bytes(5)  # clamped to blocks + output
    # A full offload leaves only the input layer, the output buffer and a host buffer.
    assert e.cpu_bytes(5) < shape.input_bytes + e.output_buffer_bytes + 4 * 512 * 64 + 1
    assert e.max_gpu_layers == 5


def test_compute_buffer_grows_with_context_and_micro_batch(tmp_path: Path) -> None:
    shape = read_shape(write_tiny_llama(tmp_path / "m.gguf"))
    small = estimate(shape, num_ctx=2048, num_batch=128)
    assert estimate(shape, num_ctx=8192).compute_bytes > estimate(shape, num_ctx=2048).compute_bytes
    assert small.compute_bytes < estimate(shape, num_ctx=2048).compute_bytes
    # num_batch above the engine's 512-token micro batch does not grow it
    assert estimate(shape, num_ctx=2048, num_batch=2048).compute_bytes == \
        estimate(shape, num_ctx=2048, num_batch=512).compute_bytes


def test_embedding_models_compute_a_whole_batch_at_once(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "m.gguf")
    causal = estimate_spec(LoadSpec(str(path), num_ctx=2048, num_batch=2048, pooling="last"))
    pooled = estimate_spec(LoadSpec(str(path), num_ctx=2048, num_batch=2048, pooling=None))
    assert pooled.compute_bytes > causal.compute_bytes


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    from pasture.errors import GGUFError

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(GGUFError):
        estimate_spec(LoadSpec(str(bad), num_ctx=512))


LOG = """\
0.00.227.437 I load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
0.00.227.500 I load_tensors:        CUDA0 model buffer size =  1024.00 MiB
0.00.227.501 I load_tensors: offloaded 11/23 layers to GPU
0.00.231.009 I llama_context:        CPU  output buffer size =     0.38 MiB
0.00.231.154 I llama_kv_cache:      CUDA0 KV buffer size =   180.00 MiB
0.00.609.954 I llama_kv_cache: size =  180.00 MiB (  4096 cells,  30 layers,  2/2 seqs)
0.00.618.167 I sched_reserve:      CUDA0 compute buffer size =   105.64 MiB
0.00.618.168 I sched_reserve:  CUDA_Host compute buffer size =    10.00 MiB
"""


def test_buffer_log_lines_give_size_and_size_vram() -> None:
    buffers = BufferSizes()
    assert not buffers.known
    for line in LOG.splitlines():
        buffers.feed(line)
    mib = lambda x: int(x * MiB)  # noqa: E731
    assert buffers.on_gpu == mib(1024.00) + mib(180.00) + mib(105.64)
    assert buffers.total == buffers.on_gpu + mib(92.10) + mib(0.38) + mib(10.00)
    assert (buffers.gpu_layers, buffers.total_layers) == (11, 23)


def test_repeated_reservations_replace_and_weights_add_up() -> None:
    buffers = BufferSizes()
    buffers.feed("sched_reserve:        CPU compute buffer size =   100.00 MiB")
    buffers.feed("sched_reserve:        CPU compute buffer size =    50.00 MiB")
    buffers.feed("load_tensors:   CPU_Mapped model buffer size =    10.00 MiB")
    buffers.feed("load_tensors:   CPU_Mapped model buffer size =    10.00 MiB")
    assert buffers.total == 70 * MiB


def test_a_draft_models_buffers_add_to_the_main_ones() -> None:
    """With a DRAFT, llama.cpp loads the main model and its context, then the draft's:
    the draft's KV and compute lines are more memory, not re-reservations."""
    buffers = BufferSizes()
    for line in ("load_tensors:   CPU_Mapped model buffer size =    90.00 MiB",
                 "llama_kv_cache:        CPU KV buffer size =    80.00 MiB",
                 "sched_reserve:        CPU compute buffer size =    40.00 MiB",
                 "sched_reserve:        CPU compute buffer size =    30.00 MiB",
                 "load_tensors:   CPU_Mapped model buffer size =     9.00 MiB",
                 "llama_kv_cache:        CPU KV buffer size =     8.00 MiB",
                 "sched_reserve:        CPU compute buffer size =     4.00 MiB"):
        buffers.feed(line)
    assert buffers.total == (90 + 80 + 30 + 9 + 8 + 4) * MiB


def test_cpu_extra_buffer_types_are_system_memory() -> None:
    """Seen on an H200 host with num_gpu 0: weights repacked into an AMX buffer."""
    buffers = BufferSizes()
    for line in ("load_tensors:          AMX model buffer size =  1973.00 MiB",
                 "load_tensors:   CPU_Mapped model buffer size =  2032.35 MiB",
                 "llama_kv_cache:        CPU KV buffer size =    88.00 MiB"):
        buffers.feed(line)
    assert buffers.on_gpu == 0 and buffers.total > 4000 * MiB


def test_every_layer_offloaded_reads_as_all_on_the_gpu() -> None:
    """As measured on an H200: embeddings stay in CPU_Mapped, pinned buffers in CUDA_Host."""
    buffers = BufferSizes()
    for line in ("load_tensors: offloaded 23/23 layers to GPU",
                 "load_tensors:   CPU_Mapped model buffer size =   125.00 MiB",
                 "load_tensors:        CUDA0 model buffer size =  1973.35 MiB",
                 "sched_reserve:  CUDA_Host compute buffer size =    20.02 MiB"):
        buffers.feed(line)
    assert buffers.on_gpu == buffers.total


def test_a_vision_projector_adds_its_weights_where_the_layers_go(tmp_path: Path) -> None:
    from pasture.runner.base import LoadSpec
    from tests.ggufs import write_projector

    model = write_tiny_llama(tmp_path / "m.gguf", n_layers=2, n_embd=64, n_ff=128)
    projector = write_projector(tmp_path / "mmproj.gguf", text_embd=64)
    weights = sum(t.n_bytes for t in read_gguf(projector).tensors)
    plain = estimate_spec(LoadSpec(str(model), num_ctx=512))
    vision = estimate_spec(LoadSpec(str(model), num_ctx=512, projector=str(projector)))
    assert weights > 0 and vision.projector_bytes == weights
    assert vision.cpu_bytes(0) == plain.cpu_bytes(0) + weights  # CPU only: in system memory
    assert vision.gpu_bytes(1) == plain.gpu_bytes(1) + weights  # offloading: on the GPU
    assert vision.cpu_bytes(1) == plain.cpu_bytes(1)
