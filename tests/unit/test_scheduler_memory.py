"""The scheduler's memory rules: placement at load, eviction by memory, OOM step-down.

Runners are the in-memory ones of test_scheduler; devices and model sizes are simulated.
"""

from __future__ import annotations

import asyncio

import pytest

from pasture.engine import Device
from pasture.runner.base import LoadSpec, MemoryUse, RunnerOutOfMemory
from pasture.runner.buffers import BufferSizes
from pasture.scheduler import Scheduler
from pasture.scheduler.memory import MemoryEstimate, ModelShape, estimate
from pasture.scheduler.placement import GPU_RUNTIME_BYTES, Planner
from tests.fake_runner import FakeEngine, FakeRunner

MiB = 1 << 20
GiB = 1 << 30


def model(layers: int, layer_mib: int) -> MemoryEstimate:
    shape = ModelShape(n_layers=layers, n_embd=1024, n_ff=2048, n_vocab=1000,
                       input_bytes=10 * MiB, layer_bytes=(layer_mib * MiB,) * layers,
                       output_bytes=10 * MiB, output_on_cpu_bytes=10 * MiB,
                       kv_elements=(128,) * layers)
    return estimate(shape, num_ctx=1024)


# "big" needs about 2.2 GiB on a GPU, "small" about 0.6 GiB; each is 4 blocks + output.
MODELS = {"big.gguf": model(4, 500), "small.gguf": model(4, 100), "tiny.gguf": model(4, 10)}


def make(gpu_free: int | None, system: int = 64 * GiB, factory: FakeEngine | None = None,
         max_loaded: int = 3) -> tuple[Scheduler, FakeEngine]:
    devices = [Device("CPU", "cpu", "cpu", system, system)]
    if gpu_free is not None:
        devices.append(Device("CUDA0", "GPU", "gpu", 80 * GiB, gpu_free))
    planner = Planner(devices, system_memory=lambda: system,
                      estimator=lambda spec: MODELS[spec.model_path])
    factory = factory or FakeEngine()
    return Scheduler(factory, max_loaded=max_loaded, max_queue=16, planner=planner), factory


def spec(path: str, num_gpu: int = -1) -> LoadSpec:
    return LoadSpec(path, num_ctx=1024, num_gpu=num_gpu)


async def use(scheduler: Scheduler, key: str, keep_alive: float, num_gpu: int = -1) -> None:
    async with scheduler.lease(key, "d", spec(key, num_gpu), keep_alive, 1):
        pass


def room_for(*paths: str) -> int:
    return sum(MODELS[p].gpu_bytes(5) + GPU_RUNTIME_BYTES for p in paths) + MiB


def test_runner_starts_with_the_chosen_layers_and_keeps_the_requested_spec() -> None:
    async def scenario() -> None:
        scheduler, factory = make(gpu_free=room_for("big.gguf"))
        await use(scheduler, "big.gguf", 60)
        await use(scheduler, "big.gguf", 60)  # -1 again: same spec, same runner
        assert len(factory.started) == 1
        assert factory.started[0].spec.num_gpu == 5
        (loaded,) = scheduler.loaded()
        assert loaded.spec.num_gpu == -1
        assert loaded.size_vram == MODELS["big.gguf"].gpu_bytes(5)
        assert loaded.size == MODELS["big.gguf"].total_bytes(5)

    asyncio.run(scenario())


def test_models_that_fit_together_stay_loaded_together() -> None:
    async def scenario() -> None:
        scheduler, factory = make(gpu_free=room_for("big.gguf", "small.gguf"))
        await use(scheduler, "big.gguf", 60)
        await use(scheduler, "small.gguf", 60)
        assert sorted(m.key for m in scheduler.loaded()) == ["big.gguf", "small.gguf"]
        assert [r.spec.num_gpu for r in factory.started] == [5, 5]

    asyncio.run(scenario())


def test_a_model_that_does_not_fit_evicts_the_idle_one_with_shortest_keep_alive() -> None:
    async def scenario() -> None:
        scheduler, factory = make(gpu_free=room_for("small.gguf", "tiny.gguf", "big.gguf")
                                  - 200 * MiB)
        await use(scheduler, "small.gguf", 600)
        await use(scheduler, "tiny.gguf", 60)
        await use(scheduler, "big.gguf", 300)  # fits beside one of them, not both
        assert sorted(m.key for m in scheduler.loaded()) == ["big.gguf", "small.gguf"]
        assert factory.started[1].closed and not factory.started[0].closed
        assert factory.started[2].spec.num_gpu == 5  # fully offloaded after the eviction

    asyncio.run(scenario())


def test_cpu_models_are_evicted_when_system_memory_runs_out() -> None:
    async def scenario() -> None:
        small, big = MODELS["small.gguf"].total_bytes(0), MODELS["big.gguf"].total_bytes(0)
        scheduler, factory = make(gpu_free=None, system=small + big - MiB)
        await use(scheduler, "small.gguf", 60)
        await use(scheduler, "big.gguf", 60)
        assert [m.key for m in scheduler.loaded()] == ["big.gguf"]
        assert factory.started[0].closed
        assert all(r.spec.num_gpu == 0 for r in factory.started)

    asyncio.run(scenario())


def test_a_model_too_big_for_the_gpu_is_split_and_takes_the_room_of_idle_ones() -> None:
    async def scenario() -> None:
        free = room_for("tiny.gguf") + MODELS["big.gguf"].gpu_bytes(2) + GPU_RUNTIME_BYTES
        scheduler, factory = make(gpu_free=free)
        await use(scheduler, "tiny.gguf", 60)
        await use(scheduler, "big.gguf", 60)  # beside tiny: 2 layers; alone: 3
        assert [m.key for m in scheduler.loaded()] == ["big.gguf"]
        assert factory.started[0].closed
        assert factory.started[1].spec.num_gpu == 3
        (big,) = scheduler.loaded()
        assert 0 < big.size_vram < big.size

    asyncio.run(scenario())


def test_a_busy_model_is_never_evicted_under_a_request() -> None:
    async def scenario() -> None:
        scheduler, factory = make(gpu_free=room_for("big.gguf"))
        order: list[str] = []

        async def busy() -> None:
            async with scheduler.lease("big.gguf", "d", spec("big.gguf"), 60, 1):
                await asyncio.sleep(0.1)
                assert not factory.started[0].closed
                order.append("big done")

        async def waiting() -> None:
            await asyncio.sleep(0.01)
            await use(scheduler, "small.gguf", 60)
            order.append("small loaded")

        await asyncio.gather(busy(), waiting())
        assert order == ["big done", "small loaded"]
        assert [m.key for m in scheduler.loaded()] == ["small.gguf"]

    asyncio.run(scenario())


class OOMFactory(FakeEngine):
    """Fails every load with more than `max_layers` GPU layers, as a full GPU would."""

    def __init__(self, max_layers: int) -> None:
        super().__init__()
        self.max_layers = max_layers
        self.tried: list[int] = []

    async def __call__(self, spec: LoadSpec) -> FakeRunner:
        self.tried.append(spec.num_gpu)
        if spec.num_gpu > self.max_layers:
            raise RunnerOutOfMemory("not enough memory to load this model")
        return await super().__call__(spec)


def test_running_out_of_gpu_memory_retries_with_half_the_layers_then_cpu() -> None:
    async def scenario() -> None:
        factory = OOMFactory(max_layers=2)
        scheduler, _ = make(gpu_free=80 * GiB, factory=factory)
        await use(scheduler, "big.gguf", 60)
        assert factory.tried == [5, 2]
        (loaded,) = scheduler.loaded()
        assert loaded.placement.gpu_layers == 2
        assert loaded.size_vram == MODELS["big.gguf"].gpu_bytes(2)

        factory = OOMFactory(max_layers=0)
        scheduler, _ = make(gpu_free=80 * GiB, factory=factory)
        await use(scheduler, "big.gguf", 60)
        assert factory.tried == [5, 2, 1, 0]
        assert scheduler.loaded()[0].size_vram == 0

    asyncio.run(scenario())


def test_out_of_memory_on_the_cpu_is_reported() -> None:
    async def scenario() -> None:
        scheduler, _ = make(gpu_free=None, factory=OOMFactory(max_layers=-1))
        with pytest.raises(RunnerOutOfMemory):
            await use(scheduler, "big.gguf", 60)
        assert scheduler.loaded() == []

    asyncio.run(scenario())


class LoggedRunner(FakeRunner):
    """Reports memory as a real runner does: from the engine's log, once it has logged."""

    def __init__(self, spec: LoadSpec) -> None:
        super().__init__(spec)
        self.buffers = BufferSizes()

    @property
    def memory(self) -> MemoryUse | None:
        return MemoryUse(self.buffers.total, self.buffers.on_gpu) if self.buffers.known \
            else None


def test_sizes_come_from_the_engine_log_once_it_has_loaded() -> None:
    async def scenario() -> None:
        class LoggedFactory(FakeEngine):
            async def __call__(self, spec: LoadSpec) -> FakeRunner:
                runner = LoggedRunner(spec)
                self.started.append(runner)
                return runner

        scheduler, factory = make(gpu_free=80 * GiB, factory=LoggedFactory())
        await use(scheduler, "small.gguf", 60)
        (loaded,) = scheduler.loaded()
        assert loaded.size == MODELS["small.gguf"].total_bytes(5)  # estimate until logged
        buffers = factory.started[0].buffers  # type: ignore[attr-defined]
        buffers.feed("load_tensors:        CUDA0 model buffer size =   400.00 MiB")
        buffers.feed("load_tensors:   CPU_Mapped model buffer size =    10.00 MiB")
        assert (loaded.size, loaded.size_vram) == (410 * MiB, 400 * MiB)

    asyncio.run(scenario())
