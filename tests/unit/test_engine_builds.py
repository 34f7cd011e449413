"""Engine builds: how they describe themselves, which one a runner gets, and fallback.

Builds here are fake directories and simulated CPU flags and devices; the real default
wheel installed as a second build, and a build that crashes, are in
tests/integration/test_engine_builds.py.
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from pasture.engine import Device
from pasture.engines.build import NO_AMX, OFFLINE_FLAGS, missing_tools, plan_build
from pasture.engines.builds import DEFAULT, EngineBuild, EngineBuilds
from pasture.engines.choose import candidates
from pasture.engines.launch import EngineLauncher
from pasture.engines.probe import (
    Probe,
    host_cpu_flags,
    missing_instructions,
    parse_system_info,
)
from pasture.errors import BadRequestError, NotFoundError, RunnerError
from pasture.runner.base import LoadSpec, RunnerOutOfMemory

AVX2 = ("SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2")
AVX512 = (*AVX2, "AVX512", "AVX512_VNNI")
ZEN3 = {"pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"}
SAPPHIRE = ZEN3 | {"avx512f", "avx512_vnni", "amx_int8"}
H100 = Device("CUDA0", "NVIDIA H100", "gpu", 80 << 30, 79 << 30, "0000:00:06.0",
              compute_capability=90)


def build(name: str, features: tuple[str, ...] = AVX2, kind: str = "cpu",
          archs: tuple[int, ...] = (), native: bool = False, bad: str | None = None,
          ) -> EngineBuild:
    site = None if name == DEFAULT else Path("/engines") / name / "site"
    return EngineBuild(name, "1", kind, features, archs, "", native, bad, site)


# ----- what a build says about itself -----------------------------------------------------


def test_system_info_sections_and_features() -> None:
    text = ("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | LLAMAFILE = 1 | OPENMP = 1 | "
            "CUDA : ARCHS = 860,900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | ")
    sections = parse_system_info(text)
    assert sections["CPU"]["AVX512"] == "0" and sections["CUDA"]["USE_GRAPHS"] == "1"
    probe = Probe("1", sections)
    assert probe.cpu_features == ["SSE3", "AVX", "AVX2"]  # not off, not OPENMP/LLAMAFILE
    assert probe.cuda_archs == [86, 90] and probe.kind == "cuda"
    assert Probe("1", parse_system_info("CPU : AVX2 = 1 |")).kind == "cpu"
    assert Probe("1", parse_system_info("CUDA : ARCHS = 1200 |")).cuda_archs == [120]


def test_instructions_missing_from_this_cpu(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu pni ssse3 avx "
                       "avx2 f16c fma bmi2\n")
    flags = host_cpu_flags(cpuinfo)
    assert flags == ZEN3 | {"fpu"}
    assert missing_instructions(list(AVX2), flags) == []
    assert missing_instructions(list(AVX512), flags) == ["AVX512", "AVX512_VNNI"]
    # A feature Pasture does not know is treated as missing, not as present.
    assert missing_instructions(["NEW_ISA"], flags) == ["NEW_ISA"]
    assert host_cpu_flags(tmp_path / "absent") == set()


# ----- which build a runner starts with ---------------------------------------------------


def test_cpu_placement_prefers_the_most_instruction_sets_the_cpu_has() -> None:
    builds = [build(DEFAULT), build("avx512", AVX512), build("native", AVX2, native=True),
              build("cuda", AVX2, "cuda", (90,))]
    assert [b.name for b in candidates(builds, SAPPHIRE, on_gpu=False)] == \
        ["avx512", "native", DEFAULT]
    # On a CPU without AVX-512 that build is left out; the native one beats the wheel.
    assert [b.name for b in candidates(builds, ZEN3, on_gpu=False)] == ["native", DEFAULT]


def test_gpu_placement_prefers_a_gpu_build_that_has_code_for_the_card() -> None:
    builds = [build(DEFAULT), build("native", AVX2, native=True),
              build("cuda-sm80", AVX2, "cuda", (80,)), build("cuda-sm90", AVX2, "cuda", (90,))]
    assert [b.name for b in candidates(builds, ZEN3, on_gpu=True, gpus=[H100])] == \
        ["cuda-sm90", "native", DEFAULT]
    # sm_80 code does not run on a compute 9.0 card, and CPU placements skip GPU builds.
    assert "cuda-sm80" not in [b.name for b in candidates(builds, ZEN3, True, [H100])]
    assert [b.name for b in candidates(builds, ZEN3, on_gpu=False)] == ["native", DEFAULT]


def test_unknown_compute_capability_gets_the_benefit_of_the_doubt() -> None:
    card = Device("CUDA0", "GPU", "gpu", 1, 1, "0000:00:06.0")  # no NVML: capability 0
    builds = [build(DEFAULT), build("cuda", AVX2, "cuda", (90,))]
    assert candidates(builds, ZEN3, True, [card])[0].name == "cuda"


def test_bad_builds_are_skipped_but_the_default_never_is() -> None:
    builds = [build(DEFAULT, bad="ignored"), build("native", AVX2, native=True, bad="SIGILL")]
    assert [b.name for b in candidates(builds, ZEN3, on_gpu=False)] == [DEFAULT]
    # A default wheel that needs instructions this CPU lacks is still the last resort.
    assert [b.name for b in candidates([build(DEFAULT, AVX512)], ZEN3, False)] == [DEFAULT]


# ----- the builds on disk -----------------------------------------------------------------


def write_build(root: Path, name: str, **fields: object) -> None:
    data = {"version": "1", "kind": "cpu", "cpu_features": list(AVX2), **fields}
    (root / name / "site").mkdir(parents=True)
    (root / name / "build.json").write_text(json.dumps(data))


def test_builds_are_read_from_their_directories(tmp_path: Path) -> None:
    write_build(tmp_path, "native", native=True)
    write_build(tmp_path, "cuda-sm90", kind="cuda", cuda_archs=[90])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "build.json").write_text("{not json")
    (tmp_path / ".install-x").mkdir()  # an install in progress
    store = EngineBuilds(tmp_path)
    names = [b.name for b in store.all()]
    assert names == [DEFAULT, "cuda-sm90", "native"]
    native = store.get("native")
    assert native.native and native.site == tmp_path / "native" / "site"
    assert store.get("cuda-sm90").cuda_archs == (90,)
    assert store.default().is_default and store.default().cpu_features  # the real wheel


def test_marking_bad_is_remembered_and_remove_checks_names(tmp_path: Path) -> None:
    write_build(tmp_path, "native")
    store = EngineBuilds(tmp_path)
    store.mark_bad(store.get("native"), "killed by SIGILL")
    assert EngineBuilds(tmp_path).get("native").bad == "killed by SIGILL"
    with pytest.raises(BadRequestError):
        store.remove(DEFAULT)
    with pytest.raises(BadRequestError):
        store.remove("../native")
    with pytest.raises(NotFoundError):
        store.remove("absent")
    store.remove("native")
    assert not (tmp_path / "native").exists()


def minimal_wheel(path: Path, init: str) -> Path:
    """A wheel holding an `xllamacpp` package with the given `__init__.py`."""
    wheel = path / "xllamacpp-1.0-py3-none-any.whl"
    info = "xllamacpp-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("xllamacpp/__init__.py", init)
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: xllamacpp\n"
                                             "Version: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                                          "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def test_install_refuses_a_wheel_that_does_not_work(tmp_path: Path) -> None:
    """The check before a build is added: it must import and describe itself."""
    store = EngineBuilds(tmp_path / "engines")
    crashing = minimal_wheel(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    with pytest.raises(BadRequestError, match="killed by signal 4"):
        store.install(crashing, "bad", "test")
    assert [b.name for b in store.all()] == [DEFAULT]
    assert not [p for p in (tmp_path / "engines").iterdir()]  # no staging left behind
    with pytest.raises(BadRequestError, match="not a wheel"):
        store.install(tmp_path / "absent.whl", "x", "test")
    with pytest.raises(BadRequestError, match="invalid engine build name"):
        store.install(crashing, "Bad Name", "test")


# ----- falling back when a build fails ----------------------------------------------------


class Started:
    def __init__(self, spec: LoadSpec, engine: str) -> None:
        self.spec, self.engine = spec, engine


def launcher(tmp_path: Path, failing: dict[str, Exception]) -> tuple[EngineLauncher, list[str]]:
    write_build(tmp_path, "native", native=True)
    write_build(tmp_path, "wide", cpu_features=[*AVX2, "AVX_VNNI"])
    tried: list[str] = []

    async def start_build(spec: LoadSpec, chosen: EngineBuild) -> Started:
        tried.append(chosen.name)
        if chosen.name in failing:
            raise failing[chosen.name]
        return Started(spec, chosen.name)

    return EngineLauncher(EngineBuilds(tmp_path), start_build,
                          host_flags=ZEN3 | {"avx_vnni"}), tried


def test_a_build_that_fails_where_the_next_works_is_set_aside(tmp_path: Path) -> None:
    chooser, tried = launcher(tmp_path, {"wide": RunnerError("killed by SIGILL")})
    runner = asyncio.run(chooser.start(LoadSpec("m.gguf", 2048)))
    assert runner.engine == "native" and tried == ["wide", "native"]
    assert chooser.builds.get("wide").bad == "killed by SIGILL"
    tried.clear()
    asyncio.run(chooser.start(LoadSpec("m.gguf", 2048)))
    assert tried == ["native"]  # the bad one is not tried again


def test_when_every_build_fails_the_model_is_at_fault(tmp_path: Path) -> None:
    error = RunnerError("the engine could not load this model: bad tensor")
    chooser, tried = launcher(tmp_path, {n: error for n in ("wide", "native", DEFAULT)})
    with pytest.raises(RunnerError, match="bad tensor"):
        asyncio.run(chooser.start(LoadSpec("m.gguf", 2048)))
    assert tried == ["wide", "native", DEFAULT]
    assert all(b.bad is None for b in chooser.builds.all())


def test_out_of_memory_goes_back_to_the_scheduler_at_once(tmp_path: Path) -> None:
    chooser, tried = launcher(tmp_path, {"wide": RunnerOutOfMemory("no memory")})
    with pytest.raises(RunnerOutOfMemory):
        asyncio.run(chooser.start(LoadSpec("m.gguf", 2048)))
    assert tried == ["wide"] and chooser.builds.get("wide").bad is None


# ----- how a build is compiled ------------------------------------------------------------


def test_native_build_flags_stay_offline_and_leave_amx_off() -> None:
    plan = plan_build(x86=True)
    assert plan.name == "native" and not plan.env
    assert set(OFFLINE_FLAGS) | set(NO_AMX) | {"-DGGML_NATIVE=ON"} <= set(plan.cmake_args)
    assert any(a.startswith("-DCMAKE_CXX_FLAGS=") and "-mno-amx-int8" in a
               for a in plan.cmake_args)
    assert not any("amx" in a for a in plan_build(x86=False).cmake_args if "FLAGS=" in a)


def test_cuda_build_plan_and_its_checks() -> None:
    plan = plan_build(cuda=True, cuda_arch="90", x86=True)
    assert plan.name == "cuda-sm90"
    assert plan.env == {"XLLAMACPP_BUILD_CUDA": "1", "CUDA_ARCHITECTURES": "90"}
    with pytest.raises(BadRequestError, match="CUDA architecture"):
        plan_build(cuda=True, cuda_arch="90;rm -rf")
    nothing = missing_tools(plan, which=lambda tool: None)
    assert any("cmake" in m for m in nothing) and any("nvcc" in m for m in nothing)
    assert missing_tools(plan_build(x86=True), which=lambda tool: "/usr/bin/" + tool) == []


def test_a_gpu_placement_falling_back_to_a_cpu_build_offloads_nothing(tmp_path: Path) -> None:
    write_build(tmp_path, "cuda-sm90", kind="cuda", cuda_archs=[90])
    started: list[tuple[str, int]] = []

    async def start_build(spec: LoadSpec, chosen: EngineBuild) -> Started:
        started.append((chosen.name, spec.num_gpu))
        if chosen.kind == "cuda":
            raise RunnerError("the engine could not load this model: CUDA error")
        return Started(spec, chosen.name)

    chooser = EngineLauncher(EngineBuilds(tmp_path), start_build, host_flags=ZEN3)
    chooser.gpus = [H100]
    runner = asyncio.run(chooser.start(LoadSpec("m.gguf", 2048, num_gpu=23)))
    assert started == [("cuda-sm90", 23), (DEFAULT, 0)] and runner.spec.num_gpu == 0
    assert chooser.builds.get("cuda-sm90").bad == "the engine could not load this model: CUDA error"


def test_llguidance_only_breaks_ties_between_equally_fast_builds() -> None:
    """An offline build has no llguidance; Pasture writes its grammars in GBNF for it, so
    speed decides, and llguidance only between builds alike in everything else."""
    offline = replace(build("native", AVX512, native=True), llguidance=False)
    builds = [build(DEFAULT), offline]
    assert [b.name for b in candidates(builds, SAPPHIRE, False)] == ["native", DEFAULT]
    plain = replace(build("plain", AVX512), llguidance=False)
    guided = build("guided", AVX512)
    assert [b.name for b in candidates([plain, guided, build(DEFAULT)], SAPPHIRE, False)] \
        == ["guided", "plain", DEFAULT]
    assert [b.name for b in candidates(builds, SAPPHIRE, False, (), DEFAULT)] == \
        [DEFAULT, "native"]
    # Asking for a build this CPU cannot run, or an unknown one, changes nothing.
    assert candidates(builds, ZEN3, False, (), "native")[0].name == DEFAULT
    assert candidates(builds, SAPPHIRE, False, (), "absent")[0].name == "native"


def test_llguidance_is_read_from_the_engine_library(tmp_path: Path) -> None:
    from pasture.engines.probe import has_llguidance

    (tmp_path / "with").mkdir()
    (tmp_path / "with" / "x.abi3.so").write_bytes(b"\0llg_new_matcher\0")
    (tmp_path / "without").mkdir()
    (tmp_path / "without" / "x.abi3.so").write_bytes(b"\0llguidance is not enabled\0")
    assert has_llguidance(tmp_path / "with") and not has_llguidance(tmp_path / "without")
    assert EngineBuilds(tmp_path).default().llguidance  # the PyPI wheel has it
