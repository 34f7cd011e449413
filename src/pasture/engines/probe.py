"""Ask an engine build what it is: version, compiled-in features and the devices it sees.

A build is imported in a child Python process with its directory first on `sys.path`, so
a build that crashes on import (an instruction this CPU lacks, a missing CUDA driver)
takes down only the probe. llama.cpp describes itself in `llama_print_system_info`:

    CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 |
    CUDA : ARCHS = 900 | USE_GRAPHS = 1 | ...

The CPU section lists the instruction sets the build was compiled to use (so the CPU
must have them all); a CUDA section means a GPU build, ARCHS its compute capabilities.
Whether llama.cpp was built with llguidance (which Pasture's tool-choice and
thinking-then-format grammars need) is not in that text: a build without it carries the
message it answers such a grammar with, which is looked for in its library instead.
"""

from __future__ import annotations

import json
import mmap
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pasture.errors import PastureError

# ggml's feature names → the flag Linux prints in /proc/cpuinfo for the same instructions.
CPU_FLAGS = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "AVX_VNNI": "avx_vnni",
    "F16C": "f16c", "FMA": "fma", "BMI2": "bmi2", "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8", "AMX_TILE": "amx_tile", "AMX_BF16": "amx_bf16",
    "NEON": "asimd", "ARM_FMA": "asimd", "FP16_VA": "asimdhp", "DOTPROD": "asimddp",
    "SVE": "sve", "MATMUL_INT8": "i8mm", "SME": "sme",
}
# Features that are ways of computing, not instructions the CPU must have.
NOT_INSTRUCTIONS = {"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE", "BLAS",
                    "SVE_CNT", "RISCV_V", "VXE", "WASM_SIMD", "VSX", "NNPA"}

# Run in the child: `pasture.engine.describe` reads the devices of whichever xllamacpp is
# first on the path, which there is the build's.
_PROBE = """
import dataclasses, json, xllamacpp
from pasture import engine
devices = [dataclasses.asdict(device) for device in engine.describe().devices]
print(json.dumps({"version": xllamacpp.__version__, "path": xllamacpp.__file__,
                  "system_info": xllamacpp.get_system_info(), "devices": devices}))
"""


class ProbeError(PastureError):
    """The build did not import or did not describe itself."""


@dataclass(frozen=True)
class Probe:
    """What one import of a build reported."""

    version: str
    features: dict[str, dict[str, str]]  # section ("CPU", "CUDA") → key → value
    devices: list[dict[str, object]] = field(default_factory=list)
    llguidance: bool = True  # can run `%llguidance` grammars (see `has_llguidance`)

    @property
    def cpu_features(self) -> list[str]:
        """Instruction sets the build uses (ggml's names), in the order it lists them."""
        cpu = self.features.get("CPU", {})
        return [k for k, v in cpu.items() if v == "1" and k not in NOT_INSTRUCTIONS]

    @property
    def cuda_archs(self) -> list[int]:
        """Compute capabilities compiled in, e.g. [90] for sm_90 (empty: not a CUDA build)."""
        section = self.features.get("CUDA")
        if section is None:
            return []
        archs = []
        for part in section.get("ARCHS", "").replace(";", ",").split(","):
            digits = "".join(c for c in part if c.isdigit())
            if digits:  # __CUDA_ARCH_LIST__ style: 900 is sm_90, 1200 is sm_120
                archs.append(int(digits) // 10)
        return archs

    @property
    def kind(self) -> str:
        """`cuda` for a CUDA build, other GPU backends by their section name, else `cpu`."""
        for section in self.features:
            if section in ("CUDA", "ROCm", "HIP", "Vulkan", "Metal", "SYCL"):
                return section.lower()
        return "cpu"


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """`CPU : AVX = 1 | AVX2 = 1 | CUDA : ARCHS = 900 |` → {"CPU": {...}, "CUDA": {...}}.

    Sections start with `NAME : `; within one, `KEY = VALUE` pairs are split by `|`.
    """
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        head, colon, rest = part.partition(" : ")
        if colon:  # a new section begins inside this part
            current = sections.setdefault(head.strip(), {})
            part = rest.strip()
        if current is None or "=" not in part:
            continue
        key, _, value = part.partition("=")
        current[key.strip()] = value.strip()
    return sections


def missing_instructions(features: list[str], host_flags: set[str]) -> list[str]:
    """The build's instruction sets this CPU lacks (unknown names count as missing:
    better to skip a build than to run one that dies with an illegal instruction)."""
    return [f for f in features if CPU_FLAGS.get(f) not in host_flags]


def has_llguidance(package: Path) -> bool:
    """Whether the engine library in `package` (xllamacpp's directory) was built with
    llguidance: one built without it holds the error it answers such grammars with."""
    for library in package.glob("*.so"):
        with open(library, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(b"llguidance is not enabled") >= 0:
                return False
    return True


def host_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """This CPU's feature flags as Linux lists them (`flags` on x86, `Features` on ARM)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def probe(site: Path | None, timeout: float = 120) -> Probe:
    """Import the build in `site` (None: the engine installed with Pasture) in a child."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProbeError("the engine build did not answer within "
                         f"{timeout:.0f} s when imported") from None
    if result.returncode != 0:
        raise ProbeError("the engine build failed to import: " + _reason(result))
    try:
        reply = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ProbeError("the engine build did not describe itself") from None
    if site is not None and not str(reply.get("path", "")).startswith(str(site)):
        raise ProbeError("the directory holds no xllamacpp package of its own")
    return Probe(str(reply["version"]), parse_system_info(reply["system_info"]),
                 list(reply["devices"]), has_llguidance(Path(reply["path"]).parent))


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode < 0:
        return f"killed by signal {-result.returncode}"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {result.returncode}"
