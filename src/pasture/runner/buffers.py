"""What the engine really allocated, read from its load log.

llama.cpp logs one line per buffer as it loads a model (at log level 4, which the runner
child sets), for example::

    load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
    llama_kv_cache:      CUDA0 KV buffer size =   180.00 MiB
    sched_reserve:       CUDA0 compute buffer size =   105.64 MiB
    load_tensors: offloaded 11/23 layers to GPU

Ollama reports `size` and `size_vram` in /api/ps from the same lines; so does Pasture,
once the runner has loaded (the scheduler's estimate stands in until then). Only buffers
on a GPU device (`CUDA0`, `Vulkan0`, …) count as GPU memory: CPU extra buffer types such as
`AMX` or `CPU_REPACK` (seen on an H200 host) and pinned `CUDA_Host` buffers are system memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MIB = 1 << 20
# RPC devices are named for their server: `RPC0[10.0.0.2:50052]`.
_BUFFER = re.compile(r"\b([A-Za-z]\w*(?:\[[\w.:-]+\])?) +(model|KV|RS|compute|output) "
                     r"buffer size = +([\d.]+) MiB")
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")


@dataclass
class BufferSizes:
    """Buffer sizes parsed from a runner's log, fed line by line."""

    # (model, device, kind) → bytes; model 0 is the main one, 1 a DRAFT loaded after it.
    buffers: dict[tuple[int, str, str], int] = field(default_factory=dict)
    gpu_layers: int | None = None  # layers llama.cpp says it offloaded
    total_layers: int | None = None
    _model: int = 0

    def feed(self, line: str) -> None:
        match = _BUFFER.search(line)
        if match:
            device, kind, mib = match[1], match[2], float(match[3])
            if kind == "model" and any(m == self._model and k != "model"
                                       for m, _, k in self.buffers):
                self._model += 1  # weights after a context: the next model (a draft)
            key = (self._model, device, kind)
            size = int(mib * _MIB)
            # Weights may come in several buffers on one device; the others are re-reserved.
            self.buffers[key] = self.buffers.get(key, 0) + size if kind == "model" else size
            return
        match = _OFFLOADED.search(line)
        if match:
            self.gpu_layers, self.total_layers = int(match[1]), int(match[2])

    @property
    def known(self) -> bool:
        return bool(self.buffers)

    @property
    def total(self) -> int:
        return sum(self.buffers.values())

    @property
    def on_gpu(self) -> int:
        """Bytes on a GPU. With every layer offloaded this is the whole size: llama.cpp
        keeps the token-embedding table and small pinned staging buffers in system memory
        by design, and users (like Ollama's `ps`) read that placement as 100% GPU."""
        if self.gpu_layers and self.gpu_layers == self.total_layers and not self.remote:
            return self.total
        return sum(size for (_, device, _), size in self.buffers.items() if is_gpu(device))

    @property
    def remote(self) -> int:
        """Bytes on RPC workers (llama.cpp counts their layers as offloaded "to GPU")."""
        return sum(size for (_, device, _), size in self.buffers.items()
                   if _RPC_DEVICE.fullmatch(device))


_RPC_DEVICE = re.compile(r"RPC\d+\[.+\]")
_GPU_DEVICE = re.compile(r"(CUDA|ROCm|HIP|Vulkan|SYCL|MUSA|CANN|OpenCL)\d+|Metal|MTL\d+")


def is_gpu(device: str) -> bool:
    """True for buffers in a GPU's memory (`CUDA0`, `Vulkan1`, …). Everything else is
    system memory: `CPU`, `CPU_Mapped`, `CPU_REPACK`, `AMX`, `CUDA_Host` (pinned), …"""
    return bool(_GPU_DEVICE.fullmatch(device))
