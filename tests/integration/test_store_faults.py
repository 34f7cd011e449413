"""kill -9 during a blob upload or a create, and a full disk: the store stays consistent.

A real `pasture serve` is killed with SIGKILL, either from outside (mid-body of an upload
the test holds open) or by itself at an exact file operation (tests/integration/kill_at.py),
then started again on the same models directory. Consistent means: every file under a
final `sha256-…` name hashes to that name, every manifest parses and names blobs that are
there with their sizes, the model being replaced is still the old one, and the operation
succeeds when retried. A full disk is a real one: the models directory is a small tmpfs
mounted in a private mount namespace (`unshare`, as root or through a user namespace).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pasture.api.ollama import CreateRequest
from pasture.digests import hash_file
from pasture.store import ModelName, Store
from pasture.store.create import create_model
from pasture.store.model import load_local_model
from pasture.store.prune import GRACE_PERIOD
from tests.ggufs import write_tiny_llama
from tests.integration.conftest import (
    REPO,
    RunningServer,
    start_server,
    stop_server,
    wait_for,
)
from tests.integration.registry import RecordingProxy

KILL_AT = REPO / "tests" / "integration" / "kill_at.py"
BLOB_NAME = re.compile(r"sha256-([0-9a-f]{64})")
FULL_DISK = "no space left on device to store the model: free some space and try again"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding `m` (a tiny llama, SYSTEM "v1"), built without a server."""
    root = tmp_path_factory.mktemp("seeded")
    gguf = write_tiny_llama(root / "tiny.gguf")
    store = Store(root / "models")
    digest = store.blobs.write_bytes(gguf.read_bytes())

    async def create() -> None:
        request = CreateRequest(model="m", files={"tiny.gguf": digest}, system="v1")
        async for _ in create_model(store, ModelName.parse("m"), request):
            pass

    asyncio.run(create())
    return root / "models"


@pytest.fixture
def models(seeded: Path, tmp_path: Path) -> Path:
    shutil.copytree(seeded, tmp_path / "models")
    return tmp_path / "models"


def assert_store_consistent(models: Path) -> list[Path]:
    """Fail on a blob whose content is not its name or on a half manifest; returns the
    temp files crashed writes left (never under a final name)."""
    store = Store(models)
    for path in (models / "blobs").iterdir():
        if match := BLOB_NAME.fullmatch(path.name):
            assert hash_file(path) == "sha256:" + match.group(1), f"{path.name} is partial"
    for name in store.manifests.list():
        manifest = store.manifests.read(name)  # InvalidManifestError if half-written
        for layer in [manifest.config, *manifest.layers]:
            assert store.blobs.size(layer.digest) == layer.size, name.display
    return sorted(models.rglob(".tmp-*"))


def system_of(models: Path, model: str = "m") -> str | None:
    return load_local_model(Store(models), ModelName.parse(model)).system


def start_killable(models: Path, log: Path, event: str, pattern: str) -> RunningServer:
    return start_server(models, log, command=[sys.executable, str(KILL_AT)],
                        PASTURE_TEST_KILL_AT=f"{event}:{pattern}")


def assert_killed(server: RunningServer) -> None:
    """The server died of SIGKILL: the kill point was reached, not skipped."""
    assert server.process.wait(30) == -signal.SIGKILL, server.log()


def generate(client: httpx.Client, model: str = "m") -> httpx.Response:
    return client.post("/api/generate", json={"model": model, "prompt": "hi", "stream": False,
                                              "options": {"num_predict": 2}})


# ----- kill -9 during a blob upload -------------------------------------------------------


def retry_upload(models: Path, tmp_path: Path, body: bytes) -> None:
    """After the kill: a new server does not have the blob, and takes it when sent again."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    server = start_server(models, tmp_path / "restarted.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.head(f"/api/blobs/{digest}").status_code == 404
            assert client.post(f"/api/blobs/{digest}", content=body).status_code == 201
    finally:
        stop_server(server)
    assert hash_file(models / "blobs" / digest.replace(":", "-")) == digest
    assert_store_consistent(models)


def test_upload_killed_mid_body_leaves_only_a_temp_file(models: Path, tmp_path: Path) -> None:
    body = os.urandom(8 << 20)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    server = start_server(models, tmp_path / "server.log")
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])

        def half_on_disk() -> bool:
            return any(p.stat().st_size >= 2 << 20 for p in (models / "blobs").glob(".tmp-*"))

        wait_for(half_on_disk, "the first half of the body to reach the disk")
        os.kill(server.process.pid, signal.SIGKILL)
        assert_killed(server)

    (temp,) = assert_store_consistent(models)
    assert temp.stat().st_size < len(body)
    assert not (models / "blobs" / digest.replace(":", "-")).exists()
    assert system_of(models) == "v1"
    retry_upload(models, tmp_path, body)


def test_upload_killed_before_its_rename_leaves_only_a_temp_file(models: Path,
                                                                 tmp_path: Path) -> None:
    body = os.urandom(3 << 20)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    server = start_killable(models, tmp_path / "server.log", "os.rename", r"/blobs/sha256-")
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{server.url}/api/blobs/{digest}", content=body, timeout=60)
    assert_killed(server)

    (temp,) = assert_store_consistent(models)
    assert temp.read_bytes() == body  # complete and verified, yet under no blob name
    assert not (models / "blobs" / digest.replace(":", "-")).exists()
    retry_upload(models, tmp_path, body)


# ----- kill -9 during create --------------------------------------------------------------

# Re-creating `m` with a new SYSTEM and parameters writes two new layers, then the
# manifest (the config is unchanged, so it is reused). A kill just before a rename leaves
# a complete, fsynced temp file, the case most easily mistaken for a finished write; one
# earlier leaves a shorter temp file, which start-up prune clears the same way.
CREATE_KILL_POINTS = {
    "layer complete, not renamed": ("os.rename", r"/blobs/sha256-", "v1"),
    "manifest complete, not renamed": ("os.rename", r"/manifests/.+/m/latest$", "v1"),
    "manifest renamed, directory not synced": ("os.rename+", r"/manifests/.+/m/latest$",
                                               "v2"),
}


@pytest.mark.parametrize("point", CREATE_KILL_POINTS)
def test_create_killed_leaves_the_old_model_or_the_new_one(models: Path, tmp_path: Path,
                                                           point: str) -> None:
    event, pattern, system_after_kill = CREATE_KILL_POINTS[point]
    request = {"model": "m", "from": "m", "system": "v2", "parameters": {"temperature": 0.25},
               "stream": False}
    server = start_killable(models, tmp_path / "server.log", event, pattern)
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{server.url}/api/create", json=request, timeout=60)
    assert_killed(server)

    assert_store_consistent(models)
    assert system_of(models) == system_after_kill

    server = start_server(models, tmp_path / "restarted.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.post("/api/show", json={"model": "m"}).json()["system"] == \
                system_after_kill
            retried = client.post("/api/create", json=request)
            assert retried.json() == {"status": "success"}, retried.text
            assert client.post("/api/show", json={"model": "m"}).json()["system"] == "v2"
            assert generate(client).status_code == 200
    finally:
        stop_server(server)
    assert_store_consistent(models)


# ----- start-up prune ---------------------------------------------------------------------


def test_start_up_prune_removes_stale_leftovers_and_keeps_fresh_ones(models: Path,
                                                                     tmp_path: Path) -> None:
    """What kills leave behind (temp files of uploads, layers and manifests, an unused
    uploaded blob, an interrupted download's partial files) goes once it is older than the
    grace period; younger files may belong to work about to be retried and stay."""
    store = Store(models)
    manifest_dir = store.manifests.path(ModelName.parse("m")).parent  # type: ignore[union-attr]
    stale_digest = store.blobs.write_bytes(b"an upload never used by a create")
    fresh_digest = store.blobs.write_bytes(b"an upload a create is about to use")
    partial = "sha256-" + "ab" * 32
    stale = [models / "blobs" / ".tmp-0001", manifest_dir / ".tmp-0002",
             store.blobs.path(stale_digest), models / "blobs" / f"{partial}-partial",
             models / "blobs" / f"{partial}-partial-0"]
    fresh = [models / "blobs" / ".tmp-0003", manifest_dir / ".tmp-0004",
             store.blobs.path(fresh_digest), models / "blobs" / f"{'cd' * 32}-partial"]
    old = time.time() - GRACE_PERIOD - 60
    for path in stale + fresh:
        if not path.exists():
            path.write_bytes(b"left by a kill")
    for path in stale:
        os.utime(path, (old, old))

    server = start_server(models, tmp_path / "server.log")
    try:
        wait_for(lambda: not any(path.exists() for path in stale), "the start-up prune")
        assert all(path.exists() for path in fresh)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert generate(client).status_code == 200
    finally:
        stop_server(server)
    assert_store_consistent(models)


# ----- a full disk ------------------------------------------------------------------------


def start_on_tmpfs(models: Path, log: Path, size: str) -> tuple[RunningServer, Path]:
    """A server whose models directory is a fresh tmpfs of `size`; returns it and the path
    through which this process sees that tmpfs (/proc/<pid>/root/…)."""
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
               f'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$1" -m pasture serve',
               str(models), sys.executable]
    server = start_server(models, log, command=command)
    view = Path(f"/proc/{server.process.pid}/root") / models.relative_to("/")
    assert os.statvfs(view).f_blocks * os.statvfs(view).f_frsize <= 8 << 20, "not a tmpfs"
    return server, view


def files_in(view: Path) -> set[str]:
    return {str(path.relative_to(view)) for path in view.rglob("*") if path.is_file()}


def test_full_disk_during_create_is_a_507_and_changes_nothing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    server, view = start_on_tmpfs(models, tmp_path / "server.log", "4m")
    try:
        tiny = write_tiny_llama(tmp_path / "tiny.gguf")
        with httpx.Client(base_url=server.url, timeout=60) as client:
            digest = "sha256:" + hashlib.sha256(tiny.read_bytes()).hexdigest()
            client.post(f"/api/blobs/{digest}", content=tiny.read_bytes()).raise_for_status()
            client.post("/api/create", json={"model": "small", "files": {"t.gguf": digest},
                                             "stream": False}).raise_for_status()
        before = files_in(view)

        # `pasture create` of a model larger than the disk: one upload, refused, no retry.
        (tmp_path / "big.gguf").write_bytes(os.urandom(6 << 20))
        (tmp_path / "Modelfile").write_text("FROM ./big.gguf\n")
        with RecordingProxy(server.url.removeprefix("http://")) as proxy:
            done = subprocess.run(
                [sys.executable, "-m", "pasture", "create", "big", "-f",
                 str(tmp_path / "Modelfile")], capture_output=True, text=True, timeout=120,
                env={**os.environ, "PASTURE_HOST": proxy.host, "PYTHONPATH": str(REPO / "src")})
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1] == f"Error: {FULL_DISK}", done.stderr
        assert [seen.method for seen in proxy.seen] == ["HEAD", "POST"]
        assert files_in(view) == before

        # The disk filled to the last byte: a create that only writes a manifest fails too.
        with httpx.Client(base_url=server.url, timeout=60) as client:
            space = os.statvfs(view)
            filler = os.urandom(space.f_bavail * space.f_frsize)
            filler_digest = "sha256:" + hashlib.sha256(filler).hexdigest()
            client.post(f"/api/blobs/{filler_digest}", content=filler).raise_for_status()
            before = files_in(view)
            for body in ({"model": "copy", "from": "small", "stream": False},
                         {"model": "small", "from": "small", "system": "new", "stream": False}):
                refused = client.post("/api/create", json=body)
                assert (refused.status_code, refused.json()) == (507, {"error": FULL_DISK})
            streamed = client.post("/api/create", json={"model": "copy", "from": "small"})
            assert streamed.status_code == 200  # the first status line was already out
            assert streamed.text.splitlines()[-1] == f'{{"error":"{FULL_DISK}"}}'
            assert files_in(view) == before

            # Other models are intact and still run.
            assert [m["name"] for m in client.get("/api/tags").json()["models"]] == \
                ["small:latest"]
            assert generate(client, "small").status_code == 200
    finally:
        stop_server(server)
