"""One real Pasture server for the integration tests, with the real engine and SmolLM2.

The server runs as a subprocess (`python -m pasture serve`) on a free port with its own
temporary models directory, exactly as a user would run it; the model is imported the
way `pasture create` does it (blob upload, then create). Tests that need a server of
their own (other settings, or faults) start one with `start_server`.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pasture.runner.base import CompletionRequest, EngineDone, LoadSpec
from pasture.runner.process import ProcessRunner

REPO = Path(__file__).resolve().parents[2]
MODEL = "smollm2:135m"
GEMMA3 = "gemma3:270m"
VISION = "smollm2-vision"
RERANKER = "reranker"
VISION_IMAGE_TOKENS = 16  # write_projector's default: a 32-pixel image in 8-pixel patches


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    models_dir: Path
    log_path: Path

    def children(self, module: bytes = b"pasture.runner.main") -> list[int]:
        """PIDs of the runner processes (or those running `module`) this server started."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != self.process.pid:
                continue
            try:  # not the fork server of `pasture.isolated`: runners run pasture.runner
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if module in command:
                pids.append(int(entry.name))
        return pids

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(models_dir: Path, log_path: Path, *, command: Sequence[str] = (),
                 ca: Path | None = None, **env: str) -> RunningServer:
    """Start `pasture serve` (or `command`, which must exec it) and wait until it answers
    (over https, trusting `ca`, when given: the server's PASTURE_TLS_* are in `env`)."""
    port = _free_port()
    environ = {
        **os.environ,
        "PASTURE_HOST": f"127.0.0.1:{port}",
        "PASTURE_MODELS": str(models_dir),
        # Only the engine installed with Pasture, whatever builds this machine has.
        "PASTURE_ENGINES": str(models_dir.parent / "engines"),
        "PYTHONPATH": str(REPO / "src"),
        **env,
    }
    log_file = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(command or [sys.executable, "-m", "pasture", "serve"], env=environ,
                               stdout=log_file, stderr=subprocess.STDOUT)
    url = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=ca) if ca else True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited:\n" + log_path.read_text())
        try:
            if httpx.get(url + "/", timeout=1, verify=verify).status_code == 200:
                return RunningServer(url, process, models_dir, log_path)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start:\n" + log_path.read_text())


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop_server(server: RunningServer) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def import_model(url: str, gguf: Path, name: str, **fields: object) -> None:
    """Upload a GGUF as a blob and create a model from it, as `pasture create` does."""
    import hashlib

    digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    with httpx.Client(base_url=url, timeout=120) as client:
        if client.head(f"/api/blobs/{digest}").status_code != 200:
            with open(gguf, "rb") as f:
                client.post(f"/api/blobs/{digest}", content=f).raise_for_status()
        response = client.post("/api/create", json={
            "model": name, "files": {gguf.name: digest}, "stream": False, **fields,
        })
        assert response.status_code == 200, response.text


def create_variant(api: httpx.Client, name: str, template: str, base: str = MODEL) -> str:
    """Create `name` as `base` with another TEMPLATE (a model family's prompt format)."""
    reply = api.post("/api/create", json={"model": name, "from": base, "template": template,
                                          "stream": False})
    assert reply.status_code == 200, reply.text
    return name


async def complete_alone(spec: LoadSpec, prompt: str, options: dict[str, object]
                         ) -> tuple[str, EngineDone]:
    """One completion on a runner of its own for `spec`, closed after: the text and the
    engine's final counts."""
    runner = await ProcessRunner.start(spec, timeout=120)
    try:
        text, done = "", None
        async for item in runner.complete(CompletionRequest(prompt, dict(options))):
            if isinstance(item, EngineDone):
                done = item
            else:
                text += item.text
        assert done is not None
        return text, done
    finally:
        await runner.close()


_SHARED: list[RunningServer] = []  # the shared server, once started


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[RunningServer]:
    """The shared server, with SmolLM2 imported as `smollm2:135m`."""
    root = tmp_path_factory.mktemp("server")
    running = start_server(root / "models", root / "server.log")
    _SHARED.append(running)
    try:
        import_model(running.url, smollm2_gguf, MODEL)
        yield running
    finally:
        _SHARED.remove(running)
        stop_server(running)


@pytest.fixture(autouse=True, scope="module")
def unload_other_models() -> Iterator[None]:
    """After each module, the shared server keeps at most SmolLM2 loaded: later modules
    count its runner processes and /api/ps entries."""
    yield
    for running in _SHARED:
        loaded = httpx.get(running.url + "/api/ps", timeout=30).json()["models"]
        for model in loaded:
            if model["name"] != MODEL:
                httpx.post(running.url + "/api/generate", timeout=120,
                           json={"model": model["name"], "keep_alive": 0})


@pytest.fixture(scope="session")
def reranker(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random-weight BERT cross-encoder (rank pooling, classifier head), as `reranker`."""
    from tests.embedding_ggufs import write_tiny_bert

    path = write_tiny_bert(tmp_path_factory.mktemp("reranker") / "ranker.gguf", reranker=True)
    import_model(server.url, path, RERANKER)
    return RERANKER


@pytest.fixture(scope="session")
def gemma3(server: RunningServer, gemma3_gguf: Path) -> str:
    """Gemma 3 270M imported into the shared server from its GGUF alone (native mode)."""
    import_model(server.url, gemma3_gguf, GEMMA3)
    return GEMMA3


@pytest.fixture(scope="session")
def vision(server: RunningServer, smollm2_gguf: Path,
           tmp_path_factory: pytest.TempPathFactory) -> str:
    """SmolLM2 with a random vision projector (`tests.ggufs.write_projector`), created as
    Ollama's vision models are: a Modelfile with the text model and the projector as two
    FROM files. Each image costs `VISION_IMAGE_TOKENS` prompt tokens."""
    from pasture.client import Client
    from tests.ggufs import write_projector

    folder = tmp_path_factory.mktemp("vision")
    (folder / "smollm2.gguf").symlink_to(smollm2_gguf)
    write_projector(folder / "mmproj.gguf", text_embd=576)
    Client(server.url).create_from_modelfile(
        VISION, "FROM ./smollm2.gguf\nFROM ./mmproj.gguf\n", folder)
    return VISION


@pytest.fixture(scope="session")
def default_wheel() -> Path:
    """The xllamacpp wheel Pasture depends on, downloaded from PyPI once into the cache
    (a second engine build, or a CPU stand-in for the CUDA build in bench/gpu_engines.py)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from fetch_models import cache_dir

    from pasture.engines.builds import EngineBuilds

    version = EngineBuilds(Path("/nonexistent")).default().version
    target = cache_dir() / "wheels"
    wheels = list(target.glob(f"xllamacpp-{version}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", str(target), f"xllamacpp=={version}"],
                       check=True)
        wheels = list(target.glob(f"xllamacpp-{version}-*.whl"))
    return wheels[0]


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client
