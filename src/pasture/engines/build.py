"""Build the pinned xllamacpp release from its PyPI source for this machine.

The PyPI wheel is built for any x86-64 CPU with AVX2 (xllamacpp's release mode turns
`GGML_NATIVE` off); built here with `GGML_NATIVE=ON`, llama.cpp's kernels are compiled for
exactly this CPU. Options that would download during the build are off (llguidance needs
Rust crates, BoringSSL a git clone), and AMX stays off even where the CPU has it: its
code path crashed on a CPU that advertised it. A CUDA build follows
`shared/device/README.md` (`XLLAMACPP_BUILD_CUDA=1`, `CUDA_ARCHITECTURES`).

The wheel is built with `pip wheel` (xllamacpp's own build scripts run CMake), then
installed as a build of its own by `EngineBuilds.install`; the default wheel is never
touched.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pasture.errors import BadRequestError

OFFLINE_FLAGS = ("-DLLAMA_LLGUIDANCE=OFF", "-DLLAMA_BUILD_BORINGSSL=OFF", "-DLLAMA_OPENSSL=OFF")
NO_AMX = ("-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF")
# -march=native would switch AMX on by itself on a CPU that has it; explicit -mno- flags
# win over it in GCC and Clang whatever their order on the command line.
NO_AMX_COMPILER_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
# CMake's percentages restart with every target, so progress counts compiled files.
_COMPILING = re.compile(r"Building (C|CXX|CUDA) object")

Progress = Callable[[str, int | None], None]  # (status line, files compiled so far or None)


class ToolchainError(BadRequestError):
    """A compiler or build tool the build needs is not installed."""


@dataclass(frozen=True)
class BuildPlan:
    """How to build: the build's name, CMake arguments and environment."""

    name: str
    cuda: bool = False
    cuda_arch: str | None = None
    cmake_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    rpc: bool = False

    @property
    def origin(self) -> str:
        what = f"CUDA (compute {self.cuda_arch or 'native'})" if self.cuda else "this CPU"
        return f"built here for {what}{' with RPC' if self.rpc else ''} with `pasture engine build`"


def plan_build(cuda: bool = False, cuda_arch: str | None = None,
               name: str | None = None, x86: bool | None = None,
               rpc: bool = False) -> BuildPlan:
    """The CMake arguments and environment of a native CPU build, or a CUDA one; `rpc`
    compiles ggml's RPC backend into it (llama.cpp's `GGML_RPC`), so that its runners
    attach `pasture worker`s without the separate library of `pasture.rpc.library`."""
    if x86 is None:
        import platform

        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686")
    args = [*OFFLINE_FLAGS, "-DGGML_NATIVE=ON", *NO_AMX]
    if rpc:  # RDMA off: it would link libibverbs wherever that is installed
        args += ["-DGGML_RPC=ON", "-DGGML_RPC_RDMA=OFF"]
    env: dict[str, str] = {}
    if x86:
        args += [f"-DCMAKE_C_FLAGS={NO_AMX_COMPILER_FLAGS}",
                 f"-DCMAKE_CXX_FLAGS={NO_AMX_COMPILER_FLAGS}"]
    if cuda:
        env["XLLAMACPP_BUILD_CUDA"] = "1"
        if cuda_arch:
            if not re.fullmatch(r"\d{2,3}[af]?", cuda_arch):
                raise BadRequestError(f"invalid CUDA architecture '{cuda_arch}' (e.g. 90)")
            env["CUDA_ARCHITECTURES"] = cuda_arch
    default_name = ("cuda" + (f"-sm{cuda_arch}" if cuda_arch else "")) if cuda else "native"
    default_name += "-rpc" if rpc else ""
    return BuildPlan(name or default_name, cuda, cuda_arch, tuple(args), env, rpc)


def missing_tools(plan: BuildPlan, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The build tools that are not on PATH, with what provides them."""
    missing = []
    if not which("cmake"):
        missing.append("cmake (apt install cmake, or pip install cmake)")
    if not (which(os.environ.get("CXX", "c++")) or which("g++") or which("clang++")):
        missing.append("a C++ compiler (apt install g++)")
    if not (which("make") or which("ninja")):
        missing.append("make or ninja (apt install make)")
    if plan.cuda and not (which("nvcc") or os.environ.get("CUDACXX")):
        missing.append("nvcc, the CUDA compiler (the CUDA toolkit)")
    return missing


def fetch_source(version: str, cache: Path, progress: Progress) -> Path:
    """xllamacpp's source archive for `version`, downloaded from PyPI once."""
    cache.mkdir(parents=True, exist_ok=True)
    name = f"xllamacpp-{version}.tar.gz"
    if not (cache / name).is_file():
        progress(f"downloading xllamacpp {version} source from PyPI", None)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--dest", str(cache), f"xllamacpp=={version}"],
            capture_output=True, text=True)
        if result.returncode != 0 or not (cache / name).is_file():
            last = (result.stderr.strip().splitlines() or ["no archive"])[-1]
            raise BadRequestError(f"cannot download the xllamacpp {version} source: {last} "
                                  "(give a downloaded archive with --source)")
    return cache / name


def build_wheel(plan: BuildPlan, source: Path, out: Path, progress: Progress,
                jobs: int | None = None) -> Path:
    """Compile `source` (an sdist or a source tree) into a wheel under `out`."""
    if missing := missing_tools(plan):
        raise ToolchainError("cannot build the engine, missing: " + "; ".join(missing))
    out.mkdir(parents=True, exist_ok=True)
    # xllamacpp splits CMAKE_ARGS like a shell line (shlex), so quote it the same way.
    env = {**os.environ, **plan.env, "CMAKE_ARGS": shlex.join(plan.cmake_args),
           "NPROC": str(jobs or os.cpu_count() or 2)}
    env.pop("XLLAMACPP_RELEASE", None)  # release mode would turn GGML_NATIVE off
    progress("compiling llama.cpp (this takes a while)", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--wheel-dir",
         str(out), str(source)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    compiled = 0
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        tail = [*tail[-19:], line]
        if _COMPILING.search(line):
            compiled += 1
            progress("compiling llama.cpp", compiled)
    if process.wait() != 0:
        errors = [t for t in tail if "error" in t.lower()] or tail[-3:]
        raise BadRequestError("the engine build failed: " + " | ".join(errors[-3:])[:600])
    wheels = sorted(out.glob("xllamacpp-*.whl"))
    if not wheels:
        raise BadRequestError("the engine build produced no wheel")
    return wheels[-1]

