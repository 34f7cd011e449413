"""Engine builds for real: the PyPI wheel installed a second time with `pasture engine
install` serves a model, and a build that dies on import is set aside while the model
still answers through the next build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import (
    MODEL,
    REPO,
    RunningServer,
    import_model,
    start_server,
    stop_server,
)


def pasture(engines: Path, *args: str, url: str = "",
            **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PASTURE_ENGINES": str(engines), "PYTHONPATH": str(REPO / "src"),
           **extra}
    if url:
        env["PASTURE_HOST"] = url
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, default_wheel: Path) -> Path:
    root = tmp_path_factory.mktemp("engines")
    installed = pasture(root, "engine", "install", str(default_wheel), "--name", "second")
    assert installed.returncode == 0, installed.stderr
    assert "installed engine build 'second'" in installed.stdout
    # A build that kills itself on import, as one compiled for another CPU does (SIGILL),
    # claiming to be built for this CPU so that it is tried first.
    crashy = root / "crashy"
    (crashy / "site" / "xllamacpp").mkdir(parents=True)
    (crashy / "site" / "xllamacpp" / "__init__.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    second = json.loads((root / "second" / "build.json").read_text())
    (crashy / "build.json").write_text(json.dumps({**second, "native": True}))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engines: Path,
           smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("engine-server")
    running = start_server(root / "models", root / "server.log", PASTURE_ENGINES=str(engines))
    try:
        import_model(running.url, smollm2_gguf, MODEL)
        yield running
    finally:
        stop_server(running)


def test_a_crashing_build_is_set_aside_and_the_next_one_serves(
        server: RunningServer, engines: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=300) as api:
        reply = api.post("/api/generate", json={
            "model": MODEL, "prompt": "Say hi", "stream": False,
            "options": {"num_predict": 4, "temperature": 0}})
        assert reply.status_code == 200, reply.text
        assert reply.json()["eval_count"] > 0
        (running,) = api.get("/api/ps").json()["models"]
    assert running["engine"] == "second"
    crashy = json.loads((engines / "crashy" / "build.json").read_text())
    assert "SIGILL" in crashy["bad"]
    assert "engine builds: default, crashy, second; CPU placements use crashy" in server.log()
    assert "uses engine build second" in server.log()

    listing = pasture(engines, "engine", "list")
    assert listing.returncode == 0, listing.stderr
    assert "set aside: the engine could not load this model: the runner was killed by SIGILL" \
        in listing.stdout
    assert "CPU placements use: second" in listing.stdout
    chosen = pasture(engines, "engine", "list", PASTURE_ENGINE="default")
    assert "CPU placements use: default" in chosen.stdout  # the user's choice comes first
    ps = pasture(engines, "ps", url=server.url)
    assert "ENGINE" in ps.stdout and "second" in ps.stdout


def test_removing_a_build(engines: Path, tmp_path: Path) -> None:
    removed = pasture(engines, "engine", "remove", "crashy")
    assert removed.returncode == 0 and "deleted engine build 'crashy'" in removed.stdout
    again = pasture(engines, "engine", "remove", "crashy")
    assert again.returncode == 1 and "not found" in again.stderr
    refused = pasture(engines, "engine", "remove", "default")
    assert refused.returncode == 1 and "cannot be removed" in refused.stderr
