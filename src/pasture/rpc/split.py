"""How many of a model's layers go to each RPC worker, and what each share takes.

llama.cpp offloads the last `n_gpu_layers` layers (blocks, then the output layer) and
deals them out to its devices in order, RPC devices first, in proportion to
`tensor_split` (`llama-model.cpp`, `load_tensors`); the first layers and the token
embeddings stay on this machine. Pasture decides whole layer counts itself, so the split
is exactly the one planned, and what `/api/ps` shows is what llama.cpp did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pasture.runner.base import LoadSpec
from pasture.scheduler.memory import MemoryEstimate


def plan_layers(total: int, weights: Sequence[float]) -> tuple[int, ...]:
    """`total` layers dealt in proportion to `weights` (largest remainders first), the
    last entry this machine's."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    layers = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - layers[i], reverse=True)
    for i in by_remainder[:total - sum(layers)]:
        layers[i] += 1
    return tuple(layers)


def attach(spec: LoadSpec, endpoints: Sequence[str], weights: Sequence[float],
           estimate: MemoryEstimate) -> LoadSpec:
    """`spec` with its layers split between `endpoints` and this machine; a local GPU
    keeps at most the layers left here. A worker whose share rounds to no layer is left
    out (it would be held for nothing)."""
    layers = plan_layers(estimate.max_gpu_layers, weights)
    kept = [i for i, count in enumerate(layers[:-1]) if count]
    if not kept:
        return spec
    return replace(spec, rpc_servers=tuple(endpoints[i] for i in kept),
                   rpc_layers=(*(layers[i] for i in kept), layers[-1]),
                   num_gpu=min(spec.num_gpu, layers[-1]))


def device_bytes(spec: LoadSpec, estimate: MemoryEstimate) -> tuple[int, ...]:
    """Estimated bytes on each worker, then on this machine: each worker's blocks with
    their KV cache and a compute buffer, the output layer on the last device to get
    layers; this machine keeps the rest (`MemoryEstimate.cpu_bytes`, plus a local GPU's
    share)."""
    shape = estimate.shape
    remote = spec.rpc_layers[:-1]
    offloaded = sum(remote) + spec.num_gpu
    first = shape.n_layers + 1 - offloaded  # index of the first offloaded layer
    shares, start = [], first
    for count in remote:
        blocks = range(max(start, 0), min(start + count, shape.n_layers))
        size = sum(shape.layer_bytes[i] + estimate.kv_layer_bytes[i] for i in blocks)
        if count and start + count > shape.n_layers:
            size += shape.output_bytes
        shares.append(size + (estimate.compute_layer_bytes if count else 0))
        start += count
    local = estimate.cpu_bytes(offloaded) + (estimate.gpu_bytes(spec.num_gpu)
                                             if spec.num_gpu else 0)
    return (*shares, local)


def fit(spec: LoadSpec, estimate: MemoryEstimate, endpoints: Sequence[str],
        available: Sequence[int]) -> LoadSpec | None:
    """`spec` on the CPU with the fewest layers sent to `endpoints` that make every share
    fit in `available` (one per endpoint, then this machine's), layers dealt in
    proportion to the workers' room; None when no split fits."""
    top = estimate.max_gpu_layers
    rooms = [max(0, free) for free in available[:-1]]  # a full node takes no layer
    if not any(rooms):
        return None
    for sent in range(1, top + 1):
        counts = plan_layers(sent, rooms)
        kept = [i for i, count in enumerate(counts) if count]
        placed = replace(spec, num_gpu=0, rpc_servers=tuple(endpoints[i] for i in kept),
                         rpc_layers=(*(counts[i] for i in kept), top - sent))
        room = [available[i] for i in kept] + [available[-1]]
        if all(need <= free for need, free in
               zip(device_bytes(placed, estimate), room, strict=True)):
            return placed
    return None


def describe(spec: LoadSpec, names: Sequence[str] | None = None) -> str | None:
    """`127.0.0.1:50052 33% / 127.0.0.1:50053 33% / local 34%`, by layers (`names`: one
    per worker, then this machine's, in place of the addresses); None when the model is
    not split."""
    if not spec.rpc_servers:
        return None
    total = sum(spec.rpc_layers) or 1
    names = names or [*spec.rpc_servers, "local"]
    return " / ".join(f"{name} {round(100 * count / total)}%"
                      for name, count in zip(names, spec.rpc_layers, strict=True))
