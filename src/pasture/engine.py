"""Which llama.cpp build is installed, and what devices it can use.

Asked once at server start (it loads the engine's backends, which takes a moment) and
logged, so a user can tell a CPU build from a GPU one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    kind: str  # "cpu", "gpu" or "igpu"
    memory_total: int
    memory_free: int


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


def describe() -> EngineInfo:
    """Ask the installed engine for its version and devices."""
    import xllamacpp

    devices = []
    for info in xllamacpp.get_device_info():
        kind = info["type"].name.rsplit("_", 1)[-1].lower()
        devices.append(Device(info["name"], info.get("description", ""), kind,
                              int(info.get("memory_total", 0)), int(info.get("memory_free", 0))))
    return EngineInfo(metadata.version("xllamacpp"), devices)


def gpu_devices() -> list[Device]:
    """The GPUs with their free memory now (a fresh reading; milliseconds once loaded)."""
    return describe().gpus
