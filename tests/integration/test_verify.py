"""`pasture verify`: damaged blobs are found, and those of pulled models are repaired.

Everything is real: a server with its own models directory, models pushed to and pulled
from Debian's docker-registry, the CLI as a subprocess, and damage done to the blob files
on disk the way a bad disk or a careless copy does it (a flipped byte, a truncated or a
deleted file).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pasture.client import AsyncClient
from pasture.digests import hash_file
from pasture.store import ModelName, Store
from pasture.store.manifests import MEDIA_TYPE_MODEL
from tests.ggufs import write_tiny_llama
from tests.integration.conftest import (
    REPO,
    RunningServer,
    import_model,
    start_server,
    stop_server,
)
from tests.integration.registry import Registry, registry_fixture  # noqa: F401 - by name


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "models", tmp_path / "server.log")
    try:
        yield running
    finally:
        stop_server(running)


def pasture(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
           "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def verdicts(stdout: str) -> dict[str, list[str]]:
    """The table's rows by model name: [STATUS, DETAILS]."""
    header, *rows = stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "DETAILS"]
    return {row.split()[0]: row.split(maxsplit=2)[1:] for row in rows}


def pulled(server: RunningServer, registry: Registry, gguf: Path, name: str) -> str:
    """`name` on the registry, pulled into the server: pushed, deleted, pulled back."""
    import_model(server.url, gguf, name)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for step in ("push", "delete", "pull"):
            method = "DELETE" if step == "delete" else "POST"
            client.request(method, f"/api/{step}", json={
                "model": name, "insecure": True, "stream": False}).raise_for_status()
    return name


def weights(server: RunningServer, name: str) -> Path:
    store = Store(server.models_dir)
    layer = store.manifests.read(ModelName.parse(name)).layer(MEDIA_TYPE_MODEL)
    assert layer is not None
    return store.blobs.path(layer.digest)


def flip_a_byte(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)  # in the tensor data: the GGUF still parses
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))


def generate(server: RunningServer, model: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/generate", timeout=120, json={
        "model": model, "prompt": "hi", "stream": False, "options": {"num_predict": 2}})


def test_flipped_byte_is_found_and_a_pulled_model_repaired(
        server: RunningServer, registry: Registry, tmp_path: Path) -> None:
    remote = pulled(server, registry, write_tiny_llama(tmp_path / "tiny.gguf"),
                    f"{registry.host}/library/verify-tiny:1")
    local = f"{registry.host}/library/verify-local:1"  # created here, never pushed
    import_model(server.url, write_tiny_llama(tmp_path / "local.gguf", name="local"), local)
    # Pushed, then replaced here by a different model: the registry's is not this one.
    changed = pulled(server, registry, write_tiny_llama(tmp_path / "v1.gguf", name="v1"),
                     f"{registry.host}/library/verify-tiny:2")
    import_model(server.url, write_tiny_llama(tmp_path / "v2.gguf", name="v2"), changed)
    damaged = {}
    for name in (remote, local, changed):
        flip_a_byte(weights(server, name))
        damaged[name] = f"{weights(server, name).name[7:19]} corrupt"

    found = pasture(server, "verify")
    assert found.returncode == 1, found.stderr
    assert verdicts(found.stdout) == {name: ["CORRUPT", damaged[name]] for name in damaged}

    repaired = pasture(server, "verify", "--repair", "--insecure")
    assert repaired.returncode == 1, repaired.stderr  # two models cannot be repaired
    assert verdicts(repaired.stdout) == {
        remote: ["REPAIRED", damaged[remote]],
        local: ["CORRUPT", f"{damaged[local]}; cannot repair: not on {registry.host} "
                           "(created locally?)"],
        changed: ["CORRUPT", f"{damaged[changed]}; cannot repair: {registry.host} has "
                             "another version of this model; pull it again to replace it"]}

    again = pasture(server, "verify", remote)
    assert again.returncode == 0 and verdicts(again.stdout) == {remote: ["OK"]}, again.stdout
    blob = weights(server, remote)
    assert hash_file(blob) == "sha256:" + blob.name.removeprefix("sha256-")
    assert generate(server, remote).status_code == 200


def test_truncated_or_lost_blob_is_refused_on_use_and_repaired(
        server: RunningServer, registry: Registry, tmp_path: Path) -> None:
    remote = pulled(server, registry, write_tiny_llama(tmp_path / "tiny.gguf", name="cut"),
                    f"{registry.host}/library/verify-cut:1")
    blob = weights(server, remote)
    size = blob.stat().st_size
    os.truncate(blob, size - 1000)

    refused = generate(server, remote)  # a clear error before any load is tried
    assert (refused.status_code, refused.json()) == (500, {"error": (
        f"model '{remote}' is damaged: blob {blob.name[7:19]} has {size - 1000} bytes "
        f"instead of {size}; run 'pasture verify --repair {remote}'")})

    async def verify_with_the_async_client() -> list:
        async with AsyncClient(server.url) as client:
            verdict = await client.verify([remote], repair=True, insecure=True)
            return verdict.models

    (check,) = asyncio.run(verify_with_the_async_client())
    assert (check.state, check.damaged) == ("repaired", {f"sha256:{blob.name[7:]}": "corrupt"})
    assert generate(server, remote).status_code == 200

    blob.unlink()  # while loaded: the runner keeps its mapping, the store lost the file
    with httpx.Client(base_url=server.url, timeout=120) as client:
        answer = client.post("/api/verify", json={"models": [remote], "stream": False}).json()
        assert answer["status"] == "damaged"
        assert answer["models"][0]["state"] == "missing"
        lines = client.post("/api/verify", json={"models": [remote], "repair": True,
                                                 "insecure": True}).text.splitlines()
        assert f'"status":"pulling {blob.name[7:19]}"' in lines[-2]
        assert '"state":"repaired"' in lines[-1]
        unknown = client.post("/api/verify", json={"models": ["no-such-model"]})
        assert (unknown.status_code, unknown.json()) == (
            404, {"error": "model 'no-such-model' not found"})
        assert generate(server, remote).status_code == 200

        # A lost config blob hides the model from the list (not the list from the user).
        store = Store(server.models_dir)
        store.blobs.remove(store.manifests.read(ModelName.parse(remote)).config.digest)
        assert client.get("/api/tags").json() == {"models": []}
        answer = client.post("/api/verify", json={"repair": True, "insecure": True,
                                                  "stream": False}).json()
        assert answer["status"] == "success" and answer["models"][0]["state"] == "repaired"
        assert [m["name"] for m in client.get("/api/tags").json()["models"]] == [remote]
