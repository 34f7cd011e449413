"""Which build a runner starts with: the best one for the placement and this machine.

- Layers on a GPU: GPU builds that support one of the GPUs (a CUDA build must carry code
  for the card's compute capability), built-for-this-machine first.
- Every placement then has the CPU builds whose instruction sets this CPU has, the ones
  using more instruction sets first (they are the faster ones: AVX-512 over AVX2), a
  native build before a generic one with the same sets, the default wheel after others
  with the same sets.
- The default wheel is always in the list, whatever its mark (last when it is not a CPU
  build): it is the build Pasture was installed and tested with, and it must never leave
  a model without an engine.
- Between builds alike in all that, one with llguidance comes first. A build compiled
  offline has none, but Pasture writes its `tool_choice` and think-then-`format`
  grammars in GBNF for such a build (`pasture.prompt.gbnf`), so speed decides; only a
  user's own Lark grammar needs llguidance (a 400 says so).
- `PASTURE_ENGINE=name` puts that build first (when this CPU can run it): the user's
  choice, for example the default wheel for its llguidance.

Builds marked bad are left out. The launcher tries the list in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pasture.engine import Device
from pasture.engines.builds import EngineBuild
from pasture.engines.probe import missing_instructions


def candidates(builds: Iterable[EngineBuild], host_flags: set[str], on_gpu: bool,
               gpus: Sequence[Device] = (), preferred: str | None = None) -> list[EngineBuild]:
    """The builds to try, best first, for a runner placed on a GPU (`on_gpu`) or not."""
    builds = list(builds)
    usable = [b for b in builds if b.is_default or (
        b.bad is None and not missing_instructions(list(b.cpu_features), host_flags))]
    chosen: list[EngineBuild] = []
    if on_gpu:
        gpu_builds = [b for b in usable if b.kind != "cpu" and supports_any(b, gpus)]
        chosen += sorted(gpu_builds, key=lambda b: (b.is_default, not b.native,
                                                    not b.llguidance, b.name))
    cpu_builds = [b for b in usable if b.kind == "cpu"]
    chosen += sorted(cpu_builds, key=lambda b: (-len(b.cpu_features), not b.native,
                                                not b.llguidance, b.is_default, b.name))
    chosen += [b for b in builds if b.is_default and b not in chosen]
    first = [b for b in usable if b.name == preferred and b.bad is None]
    return first + [b for b in chosen if b not in first]


def supports_any(build: EngineBuild, gpus: Sequence[Device]) -> bool:
    """Whether the GPU build has code for at least one of `gpus`."""
    return any(supports(build, gpu) for gpu in gpus)


def supports(build: EngineBuild, gpu: Device) -> bool:
    """CUDA code for compute capability X.Y runs on cards X.Z with Z ≥ Y (same major);
    an unknown capability (no NVML) or a non-CUDA backend is given the benefit of the
    doubt, since a failed start falls back to the next build anyway."""
    if build.kind != "cuda" or not build.cuda_archs or not gpu.compute_capability:
        return build.kind != "cpu"
    cc = gpu.compute_capability
    return any(arch // 10 == cc // 10 and arch <= cc for arch in build.cuda_archs)


def choices(builds: Sequence[EngineBuild], host_flags: set[str], gpus: Sequence[Device] = (),
            preferred: str | None = None) -> tuple[EngineBuild, EngineBuild | None]:
    """The build a CPU placement starts with, and a GPU one's (None without GPUs): what
    `pasture engine list` and the serve log report."""
    cpu = candidates(builds, host_flags, False, (), preferred)[0]
    gpu = candidates(builds, host_flags, True, gpus, preferred)[0] if gpus else None
    return cpu, gpu
