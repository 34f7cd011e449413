"""NVML readings matched to the engine's GPUs by PCI bus id.

This machine has no NVIDIA driver, so NVML is stood in for by a module of the same
interface (the one fault that cannot be made real here); the real library was checked
on an H200 with bench/gpu_check.py.
"""

from __future__ import annotations

import sys
import types
from enum import Enum

import pytest

from pasture import engine


class _Type(Enum):
    GGML_BACKEND_DEVICE_TYPE_CPU = 0
    GGML_BACKEND_DEVICE_TYPE_GPU = 1


def fake_nvml(bus_id: bytes, total: int, free: int) -> types.ModuleType:
    module = types.ModuleType("pynvml")
    module.nvmlInit = lambda: None
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetCount = lambda: 1
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetPciInfo = lambda handle: types.SimpleNamespace(busId=bus_id)
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(total=total, free=free)
    module.nvmlDeviceGetCudaComputeCapability = lambda handle: (9, 0)
    return module


def engine_devices() -> list[dict]:
    return [
        {"name": "CPU", "description": "EPYC", "type": _Type.GGML_BACKEND_DEVICE_TYPE_CPU,
         "memory_total": 1, "memory_free": 1, "device_id": ""},
        {"name": "CUDA0", "description": "NVIDIA H200", "memory_total": 100 << 30,
         "memory_free": 90 << 30, "type": _Type.GGML_BACKEND_DEVICE_TYPE_GPU,
         "device_id": "0000:00:06.0"},
    ]


@pytest.fixture
def xllamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    import xllamacpp as real

    monkeypatch.setattr(real, "get_device_info", engine_devices)


def test_nvml_readings_replace_the_engines_for_the_same_bus_id(
        xllamacpp: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(b"00000000:00:06.0", 141 << 30,
                                                         120 << 30))
    (gpu,) = engine.describe().gpus
    assert (gpu.memory_total, gpu.memory_free) == (141 << 30, 120 << 30)
    assert gpu.memory_source == "nvml" and gpu.compute_capability == 90


def test_a_gpu_nvml_does_not_know_keeps_the_engines_readings(
        xllamacpp: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(b"00000000:00:07.0", 1, 1))
    (gpu,) = engine.describe().gpus
    assert (gpu.memory_free, gpu.memory_source) == (90 << 30, "engine")


def test_without_nvml_the_engine_reads_memory(xllamacpp: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    (gpu,) = engine.describe().gpus
    assert gpu.memory_source == "engine" and gpu.bus_id == "0000:00:06.0"
