"""Where a model goes: how many layers on which GPU, the rest on the CPU.

llama.cpp's own automatic fit does not work through xllamacpp (it loads every layer
whatever the free memory; see shared/device/README.md), so Pasture chooses
`n_gpu_layers` itself, as Ollama's classic scheduler did:

- `num_gpu: 0`, no GPU device, or a CPU-only build of the engine: everything on the CPU.
- `num_gpu: N` (N > 0): N layers (blocks + output, at most all of them) on the GPU with
  the most free memory; the user's choice is not second-guessed.
- unset (-1): the most layers whose estimated bytes (`MemoryEstimate.gpu_bytes`) plus a
  per-runner GPU runtime allowance fit in the GPU's available memory, all of them when
  they fit; none (CPU, with a log line) when not even one does.

A GPU's available memory is what it had free when the server started (after its own
engine context), less `PASTURE_GPU_OVERHEAD`, less what the models already loaded on it
hold, never more than a fresh reading of its free memory, and never more than
`PASTURE_GPU_MEMORY_LIMIT` (an operator's or a test's cap; it forces partial offload).
System memory is accounted the same way from `/proc/meminfo`'s MemAvailable.
Only one GPU is used per model.

The slots a runner gets (`num_parallel`, each with the whole `num_ctx`) are the user's
when set, else the most of 4, 2 or 1 whose KV cache fits as well as one slot's would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from pasture.engine import Device
from pasture.runner.base import LoadSpec
from pasture.scheduler.memory import MemoryEstimate, estimate_spec

log = logging.getLogger(__name__)

MiB = 1 << 20
# Per-runner GPU memory outside the logged buffers (CUDA context, cuBLAS workspace):
# Ollama's CUDA minimum.
GPU_RUNTIME_BYTES = 457 * MiB
# Slots tried, most first, when PASTURE_NUM_PARALLEL is unset: 4 where memory allows, as
# Ollama once chose. Measured (bench/RESULTS.md): one client decodes as fast with 4 slots
# as with 1, and four clients get 1.3× the tokens on 2 CPU cores, more on a GPU.
AUTO_PARALLEL = (4, 2, 1)


@dataclass(frozen=True)
class Placement:
    """A decision: `gpu_layers` on `device` (None = CPU only) and what that will take."""

    gpu_layers: int
    device: str | None
    size: int  # bytes in all
    size_vram: int  # of which on the GPU
    reason: str = ""
    fits: bool = True  # False when the system-memory part exceeds what is available
    estimate: MemoryEstimate | None = field(default=None, compare=False, repr=False)
    node: str | None = None  # the cluster node (Ray node id); None: this machine
    parallel: int = 1  # slots (requests served at once) the runner is started with
    # Split over cluster nodes: layers on these RPC workers (then kept on `node`), and
    # the bytes each lending node holds for it (node id, bytes), in the same order.
    rpc_servers: tuple[str, ...] = ()
    rpc_layers: tuple[int, ...] = ()
    lent: tuple[tuple[str, int], ...] = ()

    @property
    def size_system(self) -> int:
        return self.size - self.size_vram

    def with_layers(self, gpu_layers: int, reason: str) -> Placement:
        """The same model with fewer layers offloaded (after a failed GPU load)."""
        if self.estimate is None:
            return replace(self, gpu_layers=gpu_layers, reason=reason)
        vram = self.estimate.gpu_bytes(gpu_layers)
        return replace(self, gpu_layers=gpu_layers, device=self.device if gpu_layers else None,
                       size=self.estimate.total_bytes(gpu_layers), size_vram=vram,
                       reason=reason)

    def describe(self) -> str:
        if self.lent:
            return f"split over {len(self.lent) + 1} nodes ({self.reason})"
        if self.device is None or self.gpu_layers == 0:
            return f"CPU ({self.reason})" if self.reason else "CPU"
        total = self.estimate.max_gpu_layers if self.estimate else "?"
        return f"{self.gpu_layers}/{total} layers on {self.device} ({self.reason})"


@dataclass(frozen=True)
class Held:
    """Memory a loaded model holds: on its GPU (if any) and in system memory."""

    device: str | None
    vram: int
    system: int
    node: str | None = None  # the cluster node it is on; None: this machine
    lent: tuple[tuple[str, int], ...] = ()  # bytes other nodes' RPC workers hold for it


def choose(estimate: MemoryEstimate, num_gpu: int, gpu_available: dict[str, int],
           system_available: int) -> Placement:
    """The placement for a model given the memory available for it (pure: unit-tested).

    `gpu_available` maps each GPU to the bytes this model may use there.
    """
    def placed(layers: int, device: str | None, reason: str) -> Placement:
        layers = layers if device else 0
        return Placement(layers, device, estimate.total_bytes(layers), estimate.gpu_bytes(layers),
                         reason, estimate.cpu_bytes(layers) <= system_available, estimate)

    if num_gpu == 0:
        return placed(0, None, "num_gpu is 0")
    if not gpu_available:
        return placed(0, None, "no GPU")
    device, available = max(gpu_available.items(), key=lambda item: item[1])
    top = estimate.max_gpu_layers
    if num_gpu > 0:
        return placed(min(num_gpu, top), device, f"num_gpu {num_gpu}")
    for layers in range(top, 0, -1):
        if estimate.gpu_bytes(layers) + GPU_RUNTIME_BYTES <= available:
            reason = "all layers fit" if layers == top else (
                f"{_mib(available)} MiB available, {_mib(estimate.gpu_bytes(top))} MiB needed "
                "for all layers")
            return placed(layers, device, reason)
    return placed(0, None, f"not enough GPU memory: {_mib(available)} MiB available on "
                           f"{device}, {_mib(estimate.gpu_bytes(1) + GPU_RUNTIME_BYTES)} MiB "
                           "needed for one layer")


def _mib(n: int) -> int:
    return max(0, n) // MiB


def read_available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Planner:
    """Places models on the devices the engine reported, accounting for loaded ones."""

    def __init__(self, devices: Sequence[Device], *, overhead: int = 0,
                 gpu_limit: int | None = None,
                 refresh: Callable[[], Sequence[Device]] | None = None,
                 system_memory: Callable[[], int | None] = read_available_memory,
                 estimator: Callable[[LoadSpec], MemoryEstimate] = estimate_spec) -> None:
        self._gpus = {d.name: d.memory_free for d in devices if d.kind in ("gpu", "igpu")}
        cpu_free = max((d.memory_free for d in devices if d.kind == "cpu"), default=0)
        self._system = system_memory() or cpu_free
        self._system_memory = system_memory
        self._overhead = overhead
        self._limit = gpu_limit
        self._refresh = refresh
        self._estimator = estimator

    def gpu_available(self, held: Iterable[Held]) -> dict[str, int]:
        """Bytes a new model may use on each GPU."""
        held = list(held)
        fresh: dict[str, int] = {}
        if self._refresh is not None:
            try:
                fresh = {d.name: d.memory_free for d in self._refresh()}
            except Exception:  # a failed reading must not stop a load: use the accounting
                log.debug("could not refresh GPU memory", exc_info=True)
        available = {}
        for name, free in self._gpus.items():
            used = sum(h.vram for h in held if h.device == name)
            room = free - used
            if name in fresh:
                room = min(room, fresh[name])
            if self._limit is not None:
                room = min(room, self._limit - used)
            available[name] = room - self._overhead
        return available

    def system_available(self, held: Iterable[Held]) -> int:
        room = self._system - sum(h.system for h in held)
        fresh = self._system_memory()
        return min(room, fresh) if fresh else room

    def place(self, spec: LoadSpec, held: Iterable[Held] = ()) -> Placement:
        """Where `spec` goes with `held` already loaded (blocking: reads the GGUF header).
        With `num_parallel` 0 (automatic), the most slots of `AUTO_PARALLEL` that fit
        in memory without costing a GPU layer."""
        held = list(held)
        gpus, system = self.gpu_available(held), self.system_available(held)

        def placed(parallel: int) -> Placement:
            sized = replace(spec, num_parallel=parallel)
            return replace(choose(self._estimator(sized), spec.num_gpu, gpus, system),
                           parallel=parallel)

        return placed(spec.num_parallel) if spec.num_parallel > 0 else most_slots(placed)


def most_slots(placed: Callable[[int], Placement]) -> Placement:
    """Slots chosen for the machine: `placed(n)` for the most `n` of `AUTO_PARALLEL` that
    fits in memory without costing a GPU layer that one slot would have, else one slot."""
    single = placed(1)
    for parallel in AUTO_PARALLEL:
        placement = placed(parallel) if parallel > 1 else single
        if placement.fits and placement.gpu_layers >= single.gpu_layers:
            return placement
    return single
