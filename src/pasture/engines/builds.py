"""The installed engine builds: the xllamacpp wheel Pasture depends on, plus any others.

Each extra build lives in its own directory under the engines home
(`PASTURE_ENGINES`, default `~/.pasture/engines`):

    engines/<name>/site/xllamacpp/...   the package, installed with `pip --target`
    engines/<name>/build.json           what its probe said, where it came from, and
                                        why it was marked bad, if it was

A runner uses a build by putting its `site` first on the child's `PYTHONPATH`; the
default wheel in Pasture's own environment is never replaced, so there is always one
build to fall back on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pasture.engines.probe import Probe, ProbeError, has_llguidance, parse_system_info, probe
from pasture.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

DEFAULT = "default"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


@dataclass(frozen=True)
class EngineBuild:
    """One build of the engine and what it can do."""

    name: str
    version: str
    kind: str  # "cpu", "cuda", ...
    cpu_features: tuple[str, ...]  # instruction sets it was compiled to use (ggml's names)
    cuda_archs: tuple[int, ...] = ()  # compute capabilities, e.g. (90,)
    origin: str = ""  # how it got here, for `pasture engine list`
    native: bool = False  # compiled for this machine's CPU (`pasture engine build --native`)
    bad: str | None = None  # why it was set aside after failing to start a model
    site: Path | None = None  # directory to put first on sys.path; None: the default wheel
    llguidance: bool = True  # runs Pasture's tool-choice and thinking grammars

    @property
    def is_default(self) -> bool:
        return self.site is None

    @classmethod
    def from_probe(cls, name: str, result: Probe, site: Path | None, origin: str,
                   native: bool = False) -> EngineBuild:
        return cls(name, result.version, result.kind, tuple(result.cpu_features),
                   tuple(result.cuda_archs), origin, native, None, site, result.llguidance)


class EngineBuilds:
    """The builds under one engines home, plus the default wheel."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._default: EngineBuild | None = None

    def default(self) -> EngineBuild:
        """The wheel installed with Pasture, described in-process (it is already imported
        by the server, and importing it here cannot crash on this CPU: it is generic)."""
        if self._default is None:
            import xllamacpp

            result = Probe(xllamacpp.__version__,
                           parse_system_info(xllamacpp.get_system_info()),
                           llguidance=has_llguidance(Path(xllamacpp.__file__).parent))
            self._default = EngineBuild.from_probe(DEFAULT, result, None,
                                                   "the xllamacpp wheel installed with Pasture")
        return self._default

    def all(self) -> list[EngineBuild]:
        """The default first, then the others by name; unreadable entries are skipped."""
        builds = [self.default()]
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                build = self._read(entry)
                if build is not None:
                    builds.append(build)
        return builds

    def get(self, name: str) -> EngineBuild:
        for build in self.all():
            if build.name == name:
                return build
        raise NotFoundError(f"engine build '{name}' not found")

    def install(self, wheel: Path, name: str | None, origin: str, native: bool = False,
                replace_existing: bool = False) -> EngineBuild:
        """Install `wheel` as build `name` (default: named for what it is, e.g.
        `cuda-sm90`), after checking that it imports and describes itself; the directory
        appears (atomically) only once that worked."""
        if name is not None:
            check_name(name)
        if not wheel.is_file() or not wheel.name.endswith(".whl"):
            raise BadRequestError(f"not a wheel file: {wheel.name}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".install-", dir=self.root))
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                 "--no-compile", "--target", str(staging / "site"), str(wheel)],
                capture_output=True, text=True)
            if result.returncode != 0:
                lines = result.stderr.strip().splitlines() or ["pip failed"]
                raise BadRequestError(f"cannot install {wheel.name}: {lines[-1][:300]}")
            try:
                described = probe(staging / "site")
            except ProbeError as exc:
                raise BadRequestError(f"{wheel.name} is not a usable engine: {exc}") from None
            name = name or default_name(described)
            target = self.root / name
            if target.exists() and not replace_existing:
                raise BadRequestError(f"engine build '{name}' already exists (remove it "
                                      "first, or replace it with --force)")
            # Recorded with its final path: the site moves with the directory.
            build = EngineBuild.from_probe(name, described, target / "site", origin, native)
            _write_json(staging / "build.json", _to_json(build))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("installed engine build %s (%s, %s)", name, build.kind, build.version)
        return build

    def remove(self, name: str) -> None:
        if name == DEFAULT:
            raise BadRequestError("the default engine build cannot be removed")
        check_name(name)
        target = self.root / name
        if not (target / "build.json").is_file():
            raise NotFoundError(f"engine build '{name}' not found")
        shutil.rmtree(target)

    def mark_bad(self, build: EngineBuild, reason: str) -> None:
        """Set a build aside (it failed where another build worked); reinstalling or
        rebuilding it clears the mark."""
        if build.is_default:
            return
        path = self.root / build.name / "build.json"
        try:
            _write_json(path, _to_json(replace(build, bad=reason)))
        except OSError as exc:
            log.warning("could not record that engine build %s is bad: %s", build.name, exc)

    def _read(self, directory: Path) -> EngineBuild | None:
        if directory.name.startswith(".") or not _NAME.fullmatch(directory.name):
            return None
        try:
            data = json.loads((directory / "build.json").read_text())
            if "llguidance" not in data:  # recorded before the check existed: record it now
                data["llguidance"] = has_llguidance(directory / "site" / "xllamacpp")
                with contextlib.suppress(OSError):  # a read-only home: check again next time
                    _write_json(directory / "build.json", data)
            return EngineBuild(
                name=directory.name, version=str(data["version"]), kind=str(data["kind"]),
                cpu_features=tuple(map(str, data["cpu_features"])),
                cuda_archs=tuple(int(a) for a in data.get("cuda_archs", ())),
                origin=str(data.get("origin", "")), native=bool(data.get("native")),
                bad=data.get("bad"), site=directory / "site",
                llguidance=bool(data["llguidance"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def check_name(name: str) -> None:
    if name == DEFAULT or not _NAME.fullmatch(name):
        raise BadRequestError(
            f"invalid engine build name '{name}': use lowercase letters, digits, '.', '_' "
            "and '-' (not 'default')")


def default_name(described: Probe) -> str:
    """`cuda-sm90` for a CUDA build for compute 9.0, else the kind and the version."""
    if described.kind == "cuda" and described.cuda_archs:
        return "cuda-" + "-".join(f"sm{arch}" for arch in described.cuda_archs)
    return f"{described.kind}-{described.version}"


def _to_json(build: EngineBuild) -> dict[str, Any]:
    data = asdict(build)
    data.pop("site")
    data.pop("name")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
