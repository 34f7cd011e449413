"""Which llama.cpp build is installed, and what devices it can use.

Asked once at server start (it loads the engine's backends, which takes a moment) and
logged, so a user can tell a CPU build from a GPU one. Where NVIDIA's management library
(NVML, PyPI `nvidia-ml-py`) is installed, an NVIDIA GPU's memory readings come from it,
matched to the engine's device by PCI bus id: NVML sees every process's allocations, and
asking it does not create a CUDA context in the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    kind: str  # "cpu", "gpu" or "igpu"
    memory_total: int
    memory_free: int
    bus_id: str = ""  # PCI bus id as the engine reports it, e.g. "0000:00:06.0"
    memory_source: str = "engine"  # "engine" or "nvml": where the memory figures come from
    compute_capability: int = 0  # CUDA major*10+minor (90 for an H100) from NVML; 0 unknown


@dataclass(frozen=True)
class EngineInfo:
    version: str
    devices: list[Device] = field(default_factory=list)

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.kind in ("gpu", "igpu")]

    @property
    def build(self) -> str:
        """`GPU (CUDA0: NVIDIA H100)` or `CPU`, for logs."""
        if not self.gpus:
            return "CPU"
        return "GPU (" + ", ".join(f"{d.name}: {d.description}" for d in self.gpus) + ")"


def describe(devices: list[dict[str, Any]] | None = None, version: str = "") -> EngineInfo:
    """The engine's version and devices: the installed wheel's, asked in-process, or
    those another build reported (`pasture.engines.probe`, same fields)."""
    if devices is None:
        import xllamacpp

        version = xllamacpp.__version__
        devices = [_normalise(info) for info in xllamacpp.get_device_info()]
    return EngineInfo(version, with_nvml([Device(**info) for info in devices]))


def _normalise(info: dict[str, Any]) -> dict[str, Any]:
    """Device fields from one entry of `xllamacpp.get_device_info()`."""
    return {"name": info["name"], "description": info.get("description", ""),
            "kind": info["type"].name.rsplit("_", 1)[-1].lower(),
            "memory_total": int(info.get("memory_total", 0)),
            "memory_free": int(info.get("memory_free", 0)),
            "bus_id": str(info.get("device_id") or "")}


def with_nvml(devices: list[Device]) -> list[Device]:
    """NVIDIA GPUs' memory (and compute capability) as NVML reads it, where it can."""
    nvml = nvml_memory()
    updated = []
    for device in devices:
        reading = nvml.get(_bus_key(device.bus_id)) if device.bus_id and \
            device.kind == "gpu" else None
        if reading is not None:
            device = replace(device, memory_total=reading[0], memory_free=reading[1],
                             memory_source="nvml", compute_capability=reading[2])
        updated.append(device)
    return updated


def nvml_memory() -> dict[str, tuple[int, int, int]]:
    """(total, free bytes, compute capability) per PCI bus id from NVML; empty where NVML
    is unavailable."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        try:
            readings = {}
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                bus_id = pynvml.nvmlDeviceGetPciInfo(handle).busId
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                bus = bus_id.decode() if isinstance(bus_id, bytes) else str(bus_id)
                readings[_bus_key(bus)] = (int(memory.total), int(memory.free),
                                           int(major) * 10 + int(minor))
            return readings
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no device, an old library: fall back to the engine
        return {}


def _bus_key(bus_id: str) -> str:
    """A PCI bus id without its domain's width: NVML writes `00000000:00:06.0`,
    the engine `0000:00:06.0`."""
    domain, _, rest = bus_id.strip().lower().partition(":")
    return f"{int(domain, 16) if domain else 0:x}:{rest}" if rest else bus_id.lower()


def gpu_devices() -> list[Device]:
    """The GPUs with their free memory now (a fresh reading; milliseconds once loaded)."""
    return describe().gpus
