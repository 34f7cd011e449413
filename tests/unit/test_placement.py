"""GPU placement decisions, with simulated device lists (no GPU needed)."""

from __future__ import annotations

from dataclasses import replace

from pasture.engine import Device
from pasture.runner.base import LoadSpec
from pasture.scheduler.memory import MemoryEstimate, ModelShape, estimate
from pasture.scheduler.placement import GPU_RUNTIME_BYTES, Held, Planner, choose

MiB = 1 << 20
GiB = 1 << 30


def model(layers: int = 10, layer_mib: int = 100, vocab: int = 32000) -> MemoryEstimate:
    """A model of `layers` blocks of `layer_mib` MiB each (plus embeddings and output)."""
    shape = ModelShape(n_layers=layers, n_embd=2048, n_ff=5632, n_vocab=vocab,
                       input_bytes=125 * MiB, layer_bytes=(layer_mib * MiB,) * layers,
                       output_bytes=125 * MiB, output_on_cpu_bytes=125 * MiB,
                       kv_elements=(512,) * layers)
    return estimate(shape, num_ctx=4096)


def gpu(name: str = "CUDA0", free: int = 80 * GiB) -> Device:
    return Device(name, "NVIDIA H100", "gpu", 80 * GiB, free)


CPU = Device("CPU", "AMD EPYC", "cpu", 64 * GiB, 64 * GiB)


def planner(*devices: Device, system: int = 64 * GiB, **kwargs: object) -> Planner:
    est = model()
    return Planner(list(devices), system_memory=lambda: system,
                   estimator=lambda spec: est, **kwargs)  # type: ignore[arg-type]


def spec(num_gpu: int = -1) -> LoadSpec:
    return LoadSpec("m.gguf", num_ctx=4096, num_gpu=num_gpu)


def test_all_layers_go_to_a_gpu_with_room() -> None:
    e = model()
    p = choose(e, -1, {"CUDA0": 80 * GiB}, 64 * GiB)
    assert (p.gpu_layers, p.device) == (11, "CUDA0")
    assert p.size_vram == e.gpu_bytes(11) and p.size == e.total_bytes(11)
    assert p.size_vram > 0.9 * p.size


def test_as_many_layers_as_fit_when_not_all_do() -> None:
    e = model()
    room = e.gpu_bytes(5) + GPU_RUNTIME_BYTES
    p = choose(e, -1, {"CUDA0": room + 10 * MiB}, 64 * GiB)
    assert p.gpu_layers == 5
    assert 0 < p.size_vram < p.size
    assert choose(e, -1, {"CUDA0": room - 1}, 64 * GiB).gpu_layers == 4


def test_cpu_when_not_even_one_layer_fits() -> None:
    p = choose(model(), -1, {"CUDA0": 300 * MiB}, 64 * GiB)
    assert (p.gpu_layers, p.device, p.size_vram) == (0, None, 0)
    assert "not enough GPU memory" in p.reason


def test_no_gpu_or_cpu_only_build_places_on_the_cpu() -> None:
    p = planner(CPU).place(spec())
    assert (p.gpu_layers, p.device, p.size_vram) == (0, None, 0)
    assert p.reason == "no GPU"
    assert p.describe() == "CPU (no GPU)"


def test_num_gpu_zero_forces_the_cpu_and_n_forces_n_layers() -> None:
    plan = planner(CPU, gpu())
    assert plan.place(spec(0)).gpu_layers == 0
    assert plan.place(spec(0)).size_vram == 0
    forced = plan.place(spec(3))
    assert (forced.gpu_layers, forced.device) == (3, "CUDA0")
    assert plan.place(spec(999)).gpu_layers == 11  # clamped to blocks + output


def test_the_gpu_with_most_free_memory_is_chosen() -> None:
    p = planner(CPU, gpu("CUDA0", 2 * GiB), gpu("CUDA1", 40 * GiB)).place(spec())
    assert p.device == "CUDA1" and p.gpu_layers == 11


def test_memory_limit_and_overhead_force_partial_offload() -> None:
    e = model()
    limit = e.gpu_bytes(6) + GPU_RUNTIME_BYTES
    assert planner(CPU, gpu(), gpu_limit=limit).place(spec()).gpu_layers == 6
    assert planner(CPU, gpu(), gpu_limit=limit, overhead=50 * MiB).place(spec()).gpu_layers == 5


def test_models_already_loaded_leave_less_room() -> None:
    plan = planner(CPU, gpu(free=2 * GiB))
    alone = plan.place(spec())
    beside = plan.place(spec(), [Held("CUDA0", 1 * GiB, 0)])
    assert beside.gpu_layers < alone.gpu_layers
    assert plan.place(spec(), [Held(None, 0, 0)]).gpu_layers == alone.gpu_layers


def test_a_fresh_reading_of_free_memory_caps_the_accounting() -> None:
    plan = planner(CPU, gpu(free=80 * GiB), refresh=lambda: [gpu(free=900 * MiB)])
    assert plan.place(spec()).gpu_layers == 3  # 900 MiB - 457 runtime: three 100 MiB blocks


def test_system_memory_that_is_too_small_is_flagged_not_refused() -> None:
    p = planner(CPU, system=200 * MiB).place(spec())
    assert p.gpu_layers == 0 and not p.fits
    assert planner(CPU).place(spec()).fits


def test_memory_settings_accept_bytes_and_units() -> None:
    import pytest

    from pasture.config import Settings, parse_bytes

    assert parse_bytes("1200MiB") == 1200 * MiB
    assert parse_bytes("2GB") == 2_000_000_000 and parse_bytes("1073741824") == GiB
    with pytest.raises(ValueError):
        parse_bytes("lots")
    settings = Settings.from_env({"PASTURE_GPU_MEMORY_LIMIT": "1.5GiB",
                                  "OLLAMA_GPU_OVERHEAD": "536870912",
                                  "OLLAMA_KV_CACHE_TYPE": "q8_0"})
    assert settings.gpu_memory_limit == 3 * GiB // 2
    assert settings.gpu_overhead == 512 * MiB and settings.kv_cache_type == "q8_0"
    defaults = Settings.from_env({"PASTURE_KV_CACHE_TYPE": "bogus"})
    assert defaults.kv_cache_type == "f16" and defaults.gpu_memory_limit is None


def sized_estimate(load: LoadSpec) -> MemoryEstimate:
    """An estimate that grows with the slots asked for, as the KV cache does."""
    shape = ModelShape(n_layers=10, n_embd=2048, n_ff=5632, n_vocab=32000,
                       input_bytes=125 * MiB, layer_bytes=(100 * MiB,) * 10,
                       output_bytes=125 * MiB, output_on_cpu_bytes=125 * MiB,
                       kv_elements=(512,) * 10)
    return estimate(shape, num_ctx=load.num_ctx, num_parallel=load.num_parallel)


def _sized_planner(*devices: Device, system: int = 64 * GiB) -> Planner:
    return Planner(list(devices), system_memory=lambda: system, estimator=sized_estimate)


def test_automatic_slots_are_four_where_memory_allows() -> None:
    auto = LoadSpec("m.gguf", num_ctx=4096, num_parallel=0)
    roomy = _sized_planner(CPU).place(auto)
    assert roomy.parallel == 4 and roomy.fits
    one = _sized_planner(CPU).place(replace(auto, num_parallel=1))
    assert roomy.size > one.size  # four contexts' KV cache
    assert _sized_planner(CPU).place(replace(auto, num_parallel=3)).parallel == 3  # the user's


def test_automatic_slots_step_down_rather_than_overflow_or_lose_gpu_layers() -> None:
    auto = LoadSpec("m.gguf", num_ctx=4096, num_parallel=0)
    sizes = {n: _sized_planner(CPU).place(replace(auto, num_parallel=n)).size for n in (1, 2, 4)}
    two_fit = _sized_planner(CPU, system=(sizes[2] + sizes[4]) // 2).place(auto)
    assert two_fit.parallel == 2 and two_fit.fits
    none_fit = _sized_planner(CPU, system=sizes[1] // 2).place(auto)
    assert none_fit.parallel == 1 and not none_fit.fits  # flagged, loaded anyway
    auto = replace(auto, num_gpu=-1)
    on_gpu = _sized_planner(gpu(), CPU).place(replace(auto, num_parallel=1))
    assert on_gpu.gpu_layers == 11
    tight = _sized_planner(gpu(free=on_gpu.size_vram + GPU_RUNTIME_BYTES + 10 * MiB),
                           CPU).place(auto)
    assert tight.parallel == 1 and tight.gpu_layers == 11  # not 4 slots and fewer layers
