"""Start each runner with the best engine build, falling back when a build fails.

The scheduler asks for a runner for a load spec; `num_gpu > 0` means it placed layers on
a GPU. The launcher tries the candidates (`pasture.engines.choose`) in order. A build
that fails to start the model while a later build succeeds is marked bad with the
reason, so the next load skips it; when every build fails, the model is at fault and no
build is marked. Running out of memory is never the build's fault: that error goes back
to the scheduler at once, which retries with fewer GPU layers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from pasture import engine
from pasture.config import Settings
from pasture.engine import Device, EngineInfo
from pasture.engines.builds import EngineBuild, EngineBuilds
from pasture.engines.choose import candidates, choices
from pasture.engines.probe import ProbeError, host_cpu_flags, missing_instructions, probe
from pasture.errors import RunnerError
from pasture.rpc.workers import RpcWorkers
from pasture.runner.base import LoadSpec, Runner, RunnerOutOfMemory
from pasture.runner.process import ProcessRunner
from pasture.runner.prompt_cache import PromptCache

log = logging.getLogger(__name__)

StartBuild = Callable[[LoadSpec, EngineBuild], Awaitable[Runner]]


class EngineLauncher:
    """Chooses a build per runner; `start` has the scheduler's `start_runner` shape."""

    def __init__(self, builds: EngineBuilds, start_build: StartBuild,
                 host_flags: set[str] | None = None, preferred: str | None = None,
                 workers: RpcWorkers | None = None) -> None:
        self.builds = builds
        self.workers = workers  # RPC workers that take a share of each model's layers
        self.preferred = preferred  # PASTURE_ENGINE: the build the user asked for
        self._start_build = start_build
        self.host_flags = host_flags if host_flags is not None else host_cpu_flags()
        self.gpus: Sequence[Device] = ()
        self.gpu_build: EngineBuild | None = None  # the build whose GPUs the server plans on

    def machine(self) -> EngineInfo:
        """The devices the server plans with (see `discover`)."""
        info, self.gpu_build = discover(self.builds, self.host_flags)
        self.gpus = info.gpus
        return info

    def refresh_gpus(self) -> list[Device]:
        """Fresh GPU readings: NVML where it knows every GPU, else the engine that sees
        them (in a child when that is another build)."""
        if self.gpu_build is None:
            return engine.gpu_devices()
        fresh = engine.with_nvml(list(self.gpus))
        if all(gpu.memory_source == "nvml" for gpu in fresh):
            return fresh
        assert self.gpu_build.site is not None
        probed = probe(self.gpu_build.site)
        return engine.describe(probed.devices, probed.version).gpus

    def summary(self) -> str:
        """One log line: the builds there are and which each kind of placement gets."""
        builds = self.builds.all()
        names = ", ".join(b.name + (" (set aside)" if b.bad and not b.is_default else "")
                          for b in builds)
        cpu, gpu = choices(builds, self.host_flags, self.gpus, self.preferred)
        line = f"engine builds: {names}; CPU placements use {cpu.name}"
        return line + (f", GPU placements use {gpu.name}" if gpu else "")

    async def start(self, spec: LoadSpec) -> Runner:
        """A runner for `spec` on the best build that can start it."""
        if self.workers is not None:
            spec = await self.workers.attach(spec)
        # Read afresh: a build installed or removed while serving counts from the next load.
        order = candidates(self.builds.all(), self.host_flags, spec.num_gpu > 0, self.gpus,
                           self.preferred)
        failures: list[tuple[EngineBuild, RunnerError]] = []
        for build in order:
            if spec.num_gpu > 0 and build.kind == "cpu":
                if failures:
                    log.warning("no GPU build could start %s: loading it on the CPU",
                                spec.model_path)
                spec = replace(spec, num_gpu=0)  # a CPU build offloads nothing
            try:
                runner = await self._start_build(spec, build)
            except RunnerOutOfMemory:
                raise
            except RunnerError as exc:
                log.warning("engine build %s could not start the model: %s", build.name,
                            exc.message)
                failures.append((build, exc))
                continue
            for failed, exc in failures:
                log.warning("engine build %s marked bad (%s works)", failed.name, build.name)
                self.builds.mark_bad(failed, exc.message)
            log.info("runner for %s uses engine build %s", spec.model_path, build.name)
            if self.workers is not None:
                self.workers.started(runner)
            return runner
        raise failures[0][1]


def discover(builds: EngineBuilds, host_flags: set[str]) -> tuple[EngineInfo, EngineBuild | None]:
    """The machine's devices: the default wheel's, or, when it sees no GPU, those of the
    first installed GPU build that imports and sees one (PyPI's wheels are CPU-only; CUDA
    builds are installed beside them). Returns the build that showed the GPUs, if any."""
    info = engine.describe()
    if info.gpus:
        return info, None
    for build in builds.all():
        if build.is_default or build.kind == "cpu" or build.bad or \
                missing_instructions(list(build.cpu_features), host_flags):
            continue
        try:
            probed = probe(build.site)
        except ProbeError as exc:  # not marked bad: the driver may be back next time
            log.warning("engine build %s does not start here: %s", build.name, exc)
            continue
        gpus = engine.describe(probed.devices, probed.version).gpus
        if gpus:
            return EngineInfo(info.version, [*info.devices, *gpus]), build
    return info, None


def process_launcher(settings: Settings, *, host: str = "127.0.0.1",
                     prompt_cache: PromptCache | None = None) -> EngineLauncher:
    """Runner processes on this machine's engine builds, as `settings` say (load timeout,
    memory cap, preferred build), the engine listening on `host` (a cluster node's own
    address, so the front end can reach it) and keeping its slots in `prompt_cache`."""
    async def start(spec: LoadSpec, build: EngineBuild) -> Runner:
        return await ProcessRunner.start(
            spec, settings.load_timeout or None, engine=build.name, site=build.site,
            llguidance=build.llguidance, memory_limit=settings.runner_memory_limit,
            host=host, prompt_cache=prompt_cache)

    workers = RpcWorkers(settings.rpc_servers, settings.rpc_split, settings.engines_dir) \
        if settings.rpc_servers else None
    return EngineLauncher(EngineBuilds(settings.engines_dir), start,
                          preferred=settings.engine, workers=workers)
