"""Pull and push against a real registry (Debian's docker-registry on 127.0.0.1).

A model pushed from one server and pulled into another keeps its ID and runs; errors
before any output keep their HTTP status; a pull killed with SIGKILL resumes with byte
ranges from where it stopped; a re-pulled tag loses its old blobs at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import ollama
import pytest

from pasture.store import ModelName, Store
from pasture.store.manifests import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_SYSTEM,
    Layer,
    Manifest,
)
from pasture.store.registry import TransferOptions
from pasture.store.registry.partials import partial_path
from pasture.store.registry.pull import pull_model
from pasture.store.registry.push import push_model
from tests.integration.conftest import (
    MODEL,
    REPO,
    RunningServer,
    start_server,
    stop_server,
)
from tests.integration.registry import (  # noqa: F401 - the fixture is used by name
    RecordingProxy,
    Registry,
    registry_fixture,
)


def cli(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PASTURE_HOST": server_url.removeprefix("http://"),
           "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def stream(client: httpx.Client, path: str, body: dict[str, object]) -> list[dict]:
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        return [json.loads(line) for line in response.iter_lines() if line]


def model_id(client: httpx.Client, name: str) -> str:
    (entry,) = [m for m in client.get("/api/tags").json()["models"] if m["name"] == name]
    return entry["digest"]


def registry_requests(registry: Registry, needle: str) -> int:
    return sum(needle in line for line in registry.log_path.read_text().splitlines())


def test_push_then_pull_into_an_empty_server_keeps_the_id_and_runs(
        api: httpx.Client, registry: Registry, tmp_path: Path) -> None:
    remote = f"{registry.host}/library/smollm2:135m"
    api.post("/api/copy", json={"source": MODEL, "destination": remote}).raise_for_status()
    second = None
    try:
        pushed = cli(api.base_url.__str__(), "push", remote, "--insecure")
        assert pushed.returncode == 0, pushed.stderr
        original_id = model_id(api, remote)
        manifest = httpx.get(f"{registry.url}/v2/library/smollm2/manifests/135m",
                             headers={"Accept": "application/vnd.docker.distribution"
                                                ".manifest.v2+json"})
        assert hashlib.sha256(manifest.content).hexdigest() == original_id
        layers = len(manifest.json()["layers"]) + 1

        second = start_server(tmp_path / "models", tmp_path / "server.log")
        with httpx.Client(base_url=second.url, timeout=120) as other:
            lines = stream(other, "/api/pull", {"model": remote, "insecure": True})
            statuses = [line["status"] for line in lines]
            assert statuses[0] == "pulling manifest"
            assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
            weights = max(manifest.json()["layers"], key=lambda layer: layer["size"])
            progress = [line for line in lines if line.get("digest") == weights["digest"]]
            assert progress[-1]["completed"] == progress[-1]["total"] == weights["size"]
            assert all(line["status"] == f"pulling {weights['digest'][7:19]}"
                       for line in progress)
            assert model_id(other, remote) == original_id

            answer = other.post("/api/generate", json={
                "model": remote, "prompt": "Say hi.", "stream": False,
                "options": {"num_predict": 4}}).json()
            assert answer["done"] is True and answer["eval_count"] == 4

            again = cli(second.url, "pull", remote, "--insecure")  # the CLI; all cached now
            assert again.returncode == 0, again.stderr

        # A second push finds every blob on the registry (HEAD) and uploads nothing.
        uploads = registry_requests(registry, "POST /v2/library/smollm2/blobs/uploads/")
        assert uploads == layers
        repushed = api.post("/api/push", json={"model": remote, "insecure": True,
                                               "stream": False})
        assert repushed.json() == {"status": "success"}
        assert registry_requests(registry, "POST /v2/library/smollm2/blobs/uploads/") == layers
    finally:
        if second is not None:
            stop_server(second)
        api.request("DELETE", "/api/delete", json={"model": remote})


@pytest.mark.parametrize("stream_flag", [True, False])
def test_registry_failures_stream_after_pulling_manifest_or_keep_their_status(
        api: httpx.Client, registry: Registry, stream_flag: bool) -> None:
    """Streamed, a pull shows `pulling manifest` first and then the failure as an error
    line, as Ollama's does; not streamed, the failure keeps its status."""
    def post(path: str, model: str, insecure: bool = True) -> httpx.Response:
        return api.post(path, json={"model": model, "insecure": insecure,
                                    "stream": stream_flag})

    def failed(reply: httpx.Response, status: int, error: str) -> None:
        if stream_flag:
            lines = [json.loads(line) for line in reply.text.splitlines()]
            assert (reply.status_code, lines) == (
                200, [{"status": "pulling manifest"}, {"error": error}])
        else:
            assert (reply.status_code, reply.json()) == (status, {"error": error})

    missing = post("/api/pull", f"{registry.host}/library/nothing:here")
    failed(missing, 404, "pull model manifest: file does not exist")
    nobody = post("/api/pull", f"127.0.0.1:{_closed_port()}/library/nothing:here")
    assert nobody.status_code == (200 if stream_flag else 502)
    assert "error" in (json.loads(nobody.text.splitlines()[-1]))
    plain = post("/api/pull", f"http://{registry.host}/library/nothing:here", insecure=False)
    assert (plain.status_code, plain.json()) == (400, {"error": "insecure protocol http"})
    unknown = post("/api/push", f"{registry.host}/library/not-local:1")
    assert unknown.status_code == 404 and "not found" in unknown.json()["error"]
    bad = post("/api/pull", "../../etc/passwd")
    assert bad.status_code == 400


def test_the_official_client_raises_a_streamed_pull_failure(
        server: RunningServer, registry: Registry) -> None:
    client = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        for _ in client.pull(f"{registry.host}/library/nothing:here", insecure=True,
                             stream=True):
            pass


def _closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_KILLABLE_PULL = textwrap.dedent("""
    import asyncio, sys
    from pasture.store import ModelName, Store
    from pasture.store.registry import TransferOptions
    from pasture.store.registry.pull import pull_model
    async def main():
        options = TransferOptions(part_size=int(sys.argv[3]))
        async for p in pull_model(Store(sys.argv[1]), ModelName.parse(sys.argv[2]),
                                  insecure=True, options=options):
            print(p.model_dump_json(exclude_none=True), flush=True)
    asyncio.run(main())
""")


def test_pull_killed_with_sigkill_resumes_with_ranges(registry: Registry,
                                                      tmp_path: Path) -> None:
    source = Store(tmp_path / "source")
    weights = os.urandom(4_000_000)
    weights_digest = source.blobs.write_bytes(weights)
    config = b'{"model_format":"gguf","architecture":"amd64","os":"linux"}'
    config_digest = source.blobs.write_bytes(config)
    name = ModelName.parse(f"{registry.host}/library/resume:1")
    source.write_manifest(name, Manifest(
        config=Layer(mediaType=MEDIA_TYPE_CONFIG, digest=config_digest, size=len(config)),
        layers=[Layer(mediaType=MEDIA_TYPE_MODEL, digest=weights_digest, size=len(weights))]))

    async def drain(progress) -> str:  # type: ignore[no-untyped-def]
        statuses = [p.status async for p in progress]
        return statuses[-1]

    assert asyncio.run(drain(push_model(source, name, insecure=True))) == "success"

    part_size = 1_000_000
    target = tmp_path / "target"
    with RecordingProxy(registry.host, delay=0.02) as proxy:  # about 800 kB/s per range
        via_proxy = f"{proxy.host}/library/resume:1"
        pull = subprocess.Popen(
            [sys.executable, "-c", _KILLABLE_PULL, str(target), via_proxy, str(part_size)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        assert pull.stdout is not None
        for line in pull.stdout:
            status = json.loads(line)
            if status.get("digest") == weights_digest and \
                    status["completed"] >= 0.35 * len(weights):
                break
        pull.send_signal(signal.SIGKILL)
        pull.wait(10)
        pull.stdout.close()

        blob = Store(target).blobs.path(weights_digest)
        assert partial_path(blob).exists() and not blob.exists()
        assert not (target / "manifests").exists() or not any((target / "manifests").rglob("*"))
        saved = [json.loads(p.read_text()) for p in blob.parent.glob(blob.name + "-partial-*")]
        assert len(saved) == 4
        kept = {part["Offset"] + part["Completed"] for part in saved
                if part["Completed"] < part["Size"]}
        assert sum(part["Completed"] for part in saved) > 0

        proxy.delay, killed_run = 0.0, len(proxy.seen)

        async def resume() -> str:
            store = Store(target)
            progress = pull_model(store, ModelName.parse(via_proxy), insecure=True,
                                  options=TransferOptions(part_size=part_size))
            return await drain(progress)

        assert asyncio.run(resume()) == "success"
        resumed = [seen.range for seen in proxy.seen[killed_run:]
                   if seen.method == "GET" and weights_digest in seen.path]

    starts = {int(r.removeprefix("bytes=").split("-")[0]) for r in resumed if r}
    assert len(resumed) == len(starts) == len(kept)
    # Each range starts where that part's saved bytes end: nothing on disk is fetched again.
    assert starts == kept, (starts, kept)
    assert any(start % part_size for start in starts)
    assert Store(target).blobs.verify(weights_digest)
    assert not partial_path(blob).exists()
    assert list(blob.parent.glob("*partial*")) == []
    assert Store(target).manifests.digest(ModelName.parse(via_proxy)) == \
        source.manifests.digest(name)


def test_layer_from_another_repository_is_mounted_not_uploaded(registry: Registry,
                                                               tmp_path: Path) -> None:
    """A layer whose `from` is a model on the same registry is mounted there (201)."""
    store = Store(tmp_path)
    data = os.urandom(50_000)
    digest = store.blobs.write_bytes(data)
    config = store.blobs.write_bytes(b"{}")
    first = ModelName.parse(f"{registry.host}/library/mount-a:1")
    layer = Layer(mediaType=MEDIA_TYPE_MODEL, digest=digest, size=len(data))
    store.write_manifest(first, Manifest(
        config=Layer(mediaType=MEDIA_TYPE_CONFIG, digest=config, size=2), layers=[layer]))
    second = ModelName.parse(f"{registry.host}/library/mount-b:1")
    store.write_manifest(second, Manifest(
        config=Layer(mediaType=MEDIA_TYPE_CONFIG, digest=config, size=2),
        layers=[layer.model_copy(update={"from_": first.full})]))

    async def push(name: ModelName) -> None:
        async for _ in push_model(store, name, insecure=True,
                                  options=TransferOptions(part_size=20_000)):
            pass

    asyncio.run(push(first))
    # 50 kB in 20 kB chunks, plus the config
    assert registry_requests(registry, "PATCH /v2/library/mount-a/") == 3 + 1
    asyncio.run(push(second))
    mounted = (f"POST /v2/library/mount-b/blobs/uploads/?mount={digest.replace(':', '%3A')}"
               f"&from=library%2Fmount-a HTTP/1.1\" 201")
    assert registry_requests(registry, mounted) == 1
    # Only the 2-byte config, which has no source to mount from, was sent (one chunk).
    assert registry_requests(registry, "PATCH /v2/library/mount-b/") == 1
    assert httpx.head(f"{registry.url}/v2/library/mount-b/blobs/{digest}").status_code == 200


def _version(source: Store, base: Manifest, system: str, license_: str) -> Manifest:
    """`base` with a SYSTEM and a LICENSE layer of its own, written to `source`."""
    layers = [layer for layer in base.layers if layer.mediaType != MEDIA_TYPE_SYSTEM]
    for media_type, text in [(MEDIA_TYPE_SYSTEM, system), (MEDIA_TYPE_LICENSE, license_)]:
        data = text.encode()
        layers.append(Layer(mediaType=media_type, digest=source.blobs.write_bytes(data),
                            size=len(data)))
    return Manifest(config=base.config, layers=layers)


def test_a_repulled_tag_removes_its_old_blobs_at_once_unless_noprune(
        api: httpx.Client, server: RunningServer, registry: Registry, tmp_path: Path) -> None:
    """As Ollama's PullModel: blobs only the replaced manifest used go when the new one is
    written, not at the next start; shared blobs stay; PASTURE_NOPRUNE keeps them all."""
    served = Store(server.models_dir)
    base = served.manifests.read(ModelName.parse(MODEL))
    source = Store(tmp_path / "source")
    source.blobs.root.mkdir(parents=True)
    for layer in [base.config, *base.layers]:  # SmolLM2's blobs, without copying them
        os.link(served.blobs.path(layer.digest), source.blobs.path(layer.digest))
    # The second server starts with SmolLM2's blobs too, so only the small layers move.
    kept = tmp_path / "noprune" / "models"
    (kept / "blobs").mkdir(parents=True)
    for layer in [base.config, *base.layers]:
        os.link(served.blobs.path(layer.digest), kept / "blobs" / layer.digest.replace(":", "-"))
    remote = f"{registry.host}/library/repull:latest"
    name = ModelName.parse(remote)
    v1 = _version(source, base, "You are version one.", f"shared license {tmp_path.name}")
    v2 = _version(source, base, "You are version two.", f"shared license {tmp_path.name}")
    (v1_only,) = v1.digests() - v2.digests()
    shared = v1.digests() & v2.digests()

    async def publish(manifest: Manifest) -> None:
        source.write_manifest(name, manifest)
        statuses = [p.status async for p in push_model(source, name, insecure=True)]
        assert statuses[-1] == "success"

    def pull(client: httpx.Client) -> list[str]:
        return [line["status"] for line in stream(client, "/api/pull",
                                                  {"model": remote, "insecure": True})]

    noprune = start_server(kept, tmp_path / "noprune.log", PASTURE_NOPRUNE="1")
    try:
        with httpx.Client(base_url=noprune.url, timeout=120) as other:
            asyncio.run(publish(v1))
            assert "removing unused layers" not in pull(api)  # nothing to replace yet
            pull(other)
            assert served.blobs.exists(v1_only)

            asyncio.run(publish(v2))
            assert pull(api)[-3:] == ["writing manifest", "removing unused layers", "success"]
            assert not served.blobs.exists(v1_only)
            assert all(served.blobs.exists(digest) for digest in shared)
            assert served.manifests.digest(name) == source.manifests.digest(name)
            assert api.post("/api/show", json={"model": remote}).json()["system"] == \
                "You are version two."
            answer = api.post("/api/generate", json={
                "model": remote, "prompt": "Hi.", "stream": False,
                "options": {"num_predict": 2}}).json()
            assert answer["done"] is True and answer["eval_count"] == 2

            assert pull(other)[-2:] == ["writing manifest", "success"]
            assert Store(kept).blobs.exists(v1_only)
            assert Store(kept).manifests.read(name) == v2
    finally:
        stop_server(noprune)
        api.request("DELETE", "/api/delete", json={"model": remote})


def test_a_push_never_reads_a_blob_through_a_link(
        api: httpx.Client, server: RunningServer, registry: Registry, tmp_path: Path) -> None:
    """A blob replaced by a link out of the store is refused, and its target never sent."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET " * 10)
    remote = f"{registry.host}/library/linked:1"
    template = "{{ .Prompt }} (a template only this test uses)"
    created = api.post("/api/create", json={"model": remote, "from": MODEL,
                                            "template": template, "stream": False})
    assert created.status_code == 200, created.text
    blobs = server.models_dir / "blobs"
    digest = "sha256:" + hashlib.sha256(template.encode()).hexdigest()
    blob = blobs / digest.replace(":", "-")
    assert blob.is_file()
    blob.unlink()
    blob.symlink_to(secret)
    try:
        pushed = api.post("/api/push", json={"model": remote, "insecure": True,
                                             "stream": False})
        assert pushed.status_code == 400 and "symbolic link" in pushed.json()["error"]
        # refused before any request for that blob: the registry's access log never names it
        assert digest.removeprefix("sha256:") not in registry.log_path.read_text()
    finally:
        blob.unlink()
        blob.write_text(template)
        api.request("DELETE", "/api/delete", json={"model": remote})
