"""`pasture engine`: list, build, install and remove engine builds.

These work on the local engines directory (`PASTURE_ENGINES`), not through the server:
building needs this machine's compilers, and a running server picks up a new build at
its next model load.

Their arguments are declared with the other commands' (`pasture.cli.main`). The
`pasture.engines` modules (GPU and CPU probing, the runner, the builder) and rich are
imported inside the commands, as are the settings, so that `pasture engine --help` and
every other `pasture` command pay nothing for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pasture.cli.render import table

if TYPE_CHECKING:
    from pasture.engines.builds import EngineBuild, EngineBuilds


def builds() -> EngineBuilds:
    from pasture.config import engines_dir
    from pasture.engines.builds import EngineBuilds

    return EngineBuilds(engines_dir())


def list_builds() -> None:
    """Show the installed builds, what each supports, and which this machine would use."""
    from pasture.engines.choose import choices
    from pasture.engines.launch import discover
    from pasture.engines.probe import host_cpu_flags
    from pasture.environment import pasture_only

    store = builds()
    flags = host_cpu_flags()
    info, _ = discover(store, flags)
    installed = store.all()
    rows = [[b.name, b.kind, b.version, " ".join(b.cpu_features) or "-",
             " ".join(f"sm{a}" for a in b.cuda_archs) or "-", status(b, flags)]
            for b in installed]
    print(table(["NAME", "KIND", "VERSION", "CPU INSTRUCTIONS", "CUDA", "STATUS"], rows), end="")
    cpu_choice, gpu_choice = choices(installed, flags, info.gpus, pasture_only("ENGINE"))
    print(f"\nCPU placements use: {cpu_choice.name}")
    if gpu_choice is not None:
        names = ", ".join(f"{g.name} ({g.description})" for g in info.gpus)
        print(f"GPU placements use: {gpu_choice.name} (GPUs: {names})")
    else:
        print("GPU placements: no GPU found by any installed build")


def status(build: EngineBuild, flags: set[str]) -> str:
    from pasture.engines.probe import missing_instructions

    if build.bad and not build.is_default:
        return f"set aside: {build.bad}"
    if lacking := missing_instructions(list(build.cpu_features), flags):
        return "this CPU lacks " + " ".join(lacking)
    notes = [note for note, shown in (("built for this CPU", build.native),
                                      ("no llguidance", not build.llguidance),
                                      ("rpc", has_rpc(build))) if shown]
    return "ok" + (f" ({', '.join(notes)})" if notes else "")


def has_rpc(build: EngineBuild) -> bool:
    """Whether runners on `build` can attach RPC workers (`pasture engine build --rpc`)."""
    from pasture.rpc import library

    return library.available(builds().root, build.version, build.site)


def build(native: bool, cuda: bool, cuda_arch: str | None, name: str | None,
          source: Path | None, jobs: int | None, force: bool, rpc: bool) -> None:
    """Compile the engine for this machine (takes a while) and install it as a build."""
    import tempfile

    from pasture.engines.build import build_wheel, fetch_source, plan_build

    del native  # every build targets this CPU; the flag only says so explicitly
    store = builds()
    if rpc and not cuda:
        from pasture.rpc import library

        built = library.build(_ensure(store.root))
        print(f"built ggml's RPC backend for engine {store.default().version}: every "
              f"build of that version can now attach RPC workers ({built.parent})")
        return
    plan = plan_build(cuda=cuda, cuda_arch=cuda_arch, name=name, rpc=rpc)
    if (store.root / plan.name / "build.json").is_file() and not force:
        print(f"engine build '{plan.name}' is already installed (--force rebuilds it)")
        return
    version = store.default().version
    with BuildProgress() as progress:
        archive = source or fetch_source(version, store.root / ".cache", progress.update)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=_ensure(store.root)) as work:
            wheel = build_wheel(plan, archive, Path(work), progress.update, jobs)
            progress.update("installing and checking the new build", None)
            installed = store.install(wheel, plan.name, plan.origin, native=True,
                                      replace_existing=True)
    print(f"installed engine build '{installed.name}': {installed.kind}, "
          f"{' '.join(installed.cpu_features)}")


def install(wheel: Path, name: str | None, force: bool) -> None:
    """Add a prebuilt engine, such as a CUDA wheel, after checking that it imports."""
    installed = builds().install(wheel, name, f"installed from {wheel.name}",
                                 replace_existing=force)
    devices = f", CUDA compute {' '.join(map(str, installed.cuda_archs))}" \
        if installed.cuda_archs else ""
    print(f"installed engine build '{installed.name}': {installed.kind}{devices}")


def remove(name: str) -> None:
    """Delete an engine build (the default one cannot be removed)."""
    builds().remove(name)
    print(f"deleted engine build '{name}'")


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class BuildProgress:
    """A live line on a terminal; elsewhere a line per step and per 25 files compiled."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True, highlight=False)
        self.live = Progress(TextColumn("{task.description}"), TextColumn("{task.fields[files]}"),
                             TimeElapsedColumn(), console=self.console) \
            if self.console.is_terminal else None
        self.task: Any = None  # rich's TaskID once the live line is drawn
        self.last = ("", 0)

    def __enter__(self) -> BuildProgress:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.live:
            self.live.stop()

    def update(self, status: str, files: int | None) -> None:
        count = f"{files} files" if files else ""
        if self.live is not None:
            if self.task is None:
                self.task = self.live.add_task(status, total=None, files=count)
            self.live.update(self.task, description=status, files=count)
        elif status != self.last[0] or (files or 0) >= self.last[1] + 25:
            self.console.print(f"{status} {count}".rstrip())
            self.last = (status, files or 0)
