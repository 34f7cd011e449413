"""Pulling from a hostile or broken registry: every attack is refused with a clear error
and leaves nothing behind (no manifest, no blob under a final name, no partial file).

The registry here is tests/fake_registry.py, a real HTTP server on 127.0.0.1 that
answers with what a real registry never sends; the protocol itself is checked against
Debian's docker-registry in tests/integration/test_registry.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pasture.api.ollama import ProgressResponse
from pasture.errors import BadRequestError, DigestMismatchError, NotFoundError, PastureError
from pasture.store import ModelName, Store
from pasture.store.manifests import InvalidManifestError
from pasture.store.registry import (
    RegistryAuthError,
    RegistryError,
    TransferOptions,
    UnsafeRegistryError,
)
from pasture.store.registry.pull import pull_model
from tests.fake_registry import FakeRegistry, Recorded, Route, manifest_for, sha256

REPO = Path(__file__).resolve().parents[2]
CONFIG = b'{"model_format":"gguf","architecture":"amd64","os":"linux"}'
WEIGHTS = os.urandom(300_000)
SMALL_PARTS = TransferOptions(part_size=64 * 1024, retries=1)


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        yield fake


def pull(store: Store, registry: FakeRegistry, tag: str = "latest",
         options: TransferOptions = SMALL_PARTS) -> list[ProgressResponse]:
    name = ModelName.parse(f"{registry.host}/library/m:{tag}")

    async def run() -> list[ProgressResponse]:
        return [p async for p in pull_model(store, name, insecure=True, options=options)]

    return asyncio.run(run())


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def partial_files(root: Path) -> dict[str, int]:
    """The download files left in the blobs directory, with their sizes on disk."""
    blobs = root / "blobs"
    return {p.name: p.stat().st_blocks * 512 for p in blobs.glob("*-partial*")} \
        if blobs.exists() else {}


def blob_gets(registry: FakeRegistry) -> list[str]:
    return [r.path for r in registry.requests if r.method == "GET" and "/blobs/" in r.path]


def test_pull_from_a_well_behaved_registry_stores_verified_blobs_and_the_manifest(
        tmp_path: Path, registry: FakeRegistry) -> None:
    raw = registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                               {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS})
    store = Store(tmp_path)
    statuses = [p.status for p in pull(store, registry)]
    assert statuses[0] == "pulling manifest" and statuses[-3:] == [
        "verifying sha256 digest", "writing manifest", "success"]
    assert f"pulling {sha256(WEIGHTS)[7:19]}" in statuses
    assert store.blobs.verify(sha256(WEIGHTS)) and store.blobs.verify(sha256(CONFIG))
    name = ModelName.parse(f"{registry.host}/library/m:latest")
    assert store.manifests.read_bytes(name) == raw  # byte for byte: the ID is kept
    assert len(blob_gets(registry)) == 5 + 1  # 300 kB in 64 KiB ranges, plus the config
    assert files_under(tmp_path / "blobs") == sorted(
        f"{d.replace(':', '-')}" for d in (sha256(CONFIG), sha256(WEIGHTS)))


def test_pulled_bytes_are_counted_once_for_the_metrics(tmp_path: Path,
                                                       registry: FakeRegistry) -> None:
    from pasture.store.registry.traffic import TRAFFIC

    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS})
    before = TRAFFIC.pulled
    pull(Store(tmp_path), registry)
    assert TRAFFIC.pulled - before == len(CONFIG) + len(WEIGHTS)
    pull(Store(tmp_path), registry)  # every blob is there: nothing is fetched again
    assert TRAFFIC.pulled - before == len(CONFIG) + len(WEIGHTS)


def test_manifest_with_a_traversal_digest_is_refused_before_any_download(
        tmp_path: Path, registry: FakeRegistry) -> None:
    manifest = manifest_for(CONFIG, WEIGHTS)
    manifest["layers"][0]["digest"] = "sha256:../../../../tmp/probllama"
    registry.serve_model("library/m", "latest", manifest, {})
    with pytest.raises(InvalidManifestError, match="invalid digest format"):
        pull(Store(tmp_path / "models"), registry)
    assert blob_gets(registry) == []
    assert files_under(tmp_path) == []


def test_blob_that_does_not_match_its_digest_is_deleted(
        tmp_path: Path, registry: FakeRegistry) -> None:
    tampered = b"X" + WEIGHTS[1:]
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): tampered})
    with pytest.raises(DigestMismatchError) as info:
        pull(Store(tmp_path), registry)
    assert info.value.message == ("digest mismatch, file must be downloaded again: "
                                  f"want {sha256(WEIGHTS)}, got {sha256(tampered)}")
    assert info.value.status == 400
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
def test_oversized_manifest_is_refused(tmp_path: Path, registry: FakeRegistry,
                                       send_length: bool) -> None:
    huge = json.dumps({**manifest_for(CONFIG), "padding": "x" * (5 << 20)}).encode()
    registry.route("GET", "/v2/library/m/manifests/latest",
                   Route(body=huge, send_length=send_length))
    with pytest.raises(InvalidManifestError, match="larger than 4 MiB"):
        pull(Store(tmp_path), registry)
    assert files_under(tmp_path) == []


def test_token_realm_on_another_host_gets_nothing(tmp_path: Path,
                                                  registry: FakeRegistry) -> None:
    with FakeRegistry() as elsewhere:
        challenge = f'Bearer realm="{elsewhere.url}/token",service="x",scope="repository:m:pull"'
        registry.route("GET", "/v2/library/m/manifests/latest",
                       Route(401, headers={"WWW-Authenticate": challenge}))
        with pytest.raises(UnsafeRegistryError, match="token from another host") as info:
            pull(Store(tmp_path), registry)
        assert info.value.status == 400
        assert elsewhere.requests == []
    assert files_under(tmp_path) == []


def test_token_from_the_registry_host_is_fetched_anonymously_and_used(
        tmp_path: Path, registry: FakeRegistry) -> None:
    raw = json.dumps(manifest_for(CONFIG)).encode()
    challenge = f'Bearer realm="{registry.url}/token",service="reg",scope="repository:m:pull"'

    def guarded(body: bytes) -> Callable[[Recorded], Route]:
        def answer(request: Recorded) -> Route:
            if request.headers.get("Authorization") == "Bearer s3cret":
                return Route(body=body, ranges=True)
            return Route(401, headers={"WWW-Authenticate": challenge})
        return answer

    registry.route("GET", "/token", Route(body=b'{"token":"s3cret"}'))
    registry.route("GET", "/v2/library/m/manifests/latest", guarded(raw))
    registry.route("GET", f"/v2/library/m/blobs/{sha256(CONFIG)}", guarded(CONFIG))
    assert pull(Store(tmp_path), registry)[-1].status == "success"
    (token_request,) = [r for r in registry.requests if r.path.startswith("/token")]
    assert "Authorization" not in token_request.headers  # only Ollama's registry gets a key
    assert "service=reg" in token_request.path and "scope=repository%3Am%3Apull" in \
        token_request.path


def test_token_is_not_sent_along_a_redirect_to_another_host(
        tmp_path: Path, registry: FakeRegistry) -> None:
    challenge = f'Bearer realm="{registry.url}/token",service="reg"'
    raw = json.dumps(manifest_for(CONFIG, WEIGHTS)).encode()

    def guarded(route: Route) -> Callable[[Recorded], Route]:
        def answer(request: Recorded) -> Route:
            if request.headers.get("Authorization") == "Bearer s3cret":
                return route
            return Route(401, headers={"WWW-Authenticate": challenge})
        return answer

    with FakeRegistry() as cdn:
        cdn.route("GET", "/weights", Route(body=WEIGHTS, ranges=True))
        registry.route("GET", "/token", Route(body=b'{"token":"s3cret"}'))
        registry.route("GET", "/v2/library/m/manifests/latest", guarded(Route(body=raw)))
        registry.route("GET", f"/v2/library/m/blobs/{sha256(CONFIG)}",
                       guarded(Route(body=CONFIG, ranges=True)))
        registry.route("GET", f"/v2/library/m/blobs/{sha256(WEIGHTS)}",
                       guarded(Route(307, headers={"Location": f"{cdn.url}/weights"})))
        store = Store(tmp_path)
        assert pull(store, registry)[-1].status == "success"
        assert len(cdn.requests) == 5  # each 64 KiB range followed the redirect
        assert all("Authorization" not in r.headers for r in cdn.requests)
        assert all(r.headers.get("Range") for r in cdn.requests)
    assert store.blobs.verify(sha256(WEIGHTS))


def test_redirect_loop_is_a_clear_error(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.route("GET", "/v2/library/m/manifests/latest",
                   Route(302, headers={"Location": "/v2/library/m/manifests/latest"}))
    with pytest.raises(RegistryError, match="too many redirects"):
        pull(Store(tmp_path), registry)
    assert len(registry.requests) == 11  # the request and 10 redirects, then it stops


def test_rejected_token_is_a_clear_unauthorized_error(tmp_path: Path,
                                                      registry: FakeRegistry) -> None:
    challenge = f'Bearer realm="{registry.url}/token",service="reg"'
    registry.route("GET", "/token", Route(body=b'{"token":"useless"}'))
    registry.route("GET", "/v2/library/m/manifests/latest",
                   Route(401, headers={"WWW-Authenticate": challenge}))
    with pytest.raises(RegistryAuthError, match="unauthorized") as info:
        pull(Store(tmp_path), registry)
    assert info.value.status == 401
    assert len([r for r in registry.requests if r.path.startswith("/token")]) == 1  # no loop


def test_encoded_blob_is_refused(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS},
                         headers={"Content-Encoding": "gzip"})
    with pytest.raises(UnsafeRegistryError, match="content encoding"):
        pull(Store(tmp_path), registry)
    assert not Store(tmp_path).blobs.exists(sha256(WEIGHTS))
    assert files_under(tmp_path / "manifests") == []
    assert partial_files(tmp_path) == {}  # nothing to resume from a refused encoding


def test_registry_that_ignores_range_still_yields_a_verified_blob(
        tmp_path: Path, registry: FakeRegistry) -> None:
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS}, ranges=False)
    store = Store(tmp_path)
    assert pull(store, registry)[-1].status == "success"
    assert store.blobs.verify(sha256(WEIGHTS))


def test_wrong_content_range_is_refused(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG})
    registry.route("GET", f"/v2/library/m/blobs/{sha256(WEIGHTS)}",
                   Route(206, WEIGHTS[:1000], headers={"Content-Range": "bytes 5-1004/300000"}))
    with pytest.raises(RegistryError, match="wrong byte range"):
        pull(Store(tmp_path), registry)
    assert files_under(tmp_path / "manifests") == []
    assert not Store(tmp_path).blobs.exists(sha256(WEIGHTS))


def test_manifest_that_does_not_match_the_registrys_digest_is_refused(
        tmp_path: Path, registry: FakeRegistry) -> None:
    raw = json.dumps(manifest_for(CONFIG)).encode()
    registry.route("GET", "/v2/library/m/manifests/latest",
                   Route(body=raw, headers={"Docker-Content-Digest": sha256(b"other")}))
    with pytest.raises(UnsafeRegistryError, match="does not match its digest"):
        pull(Store(tmp_path), registry)
    assert files_under(tmp_path) == []


def test_absurd_blob_size_is_refused_before_any_download(
        tmp_path: Path, registry: FakeRegistry) -> None:
    manifest = manifest_for(CONFIG, WEIGHTS)
    manifest["layers"][0]["size"] = 2**60
    registry.serve_model("library/m", "latest", manifest, {sha256(CONFIG): CONFIG})
    with pytest.raises(UnsafeRegistryError, match="size over 4 TiB"):
        pull(Store(tmp_path), registry)
    assert blob_gets(registry) == [] and files_under(tmp_path) == []


def test_unknown_remote_model_is_ollamas_404(tmp_path: Path, registry: FakeRegistry) -> None:
    with pytest.raises(NotFoundError) as info:
        pull(Store(tmp_path), registry, tag="missing")
    assert info.value.message == "pull model manifest: file does not exist"


def test_plain_http_name_needs_insecure(tmp_path: Path, registry: FakeRegistry) -> None:
    name = ModelName.parse(f"http://{registry.host}/library/m:latest")

    async def run() -> None:
        async for _ in pull_model(Store(tmp_path), name, insecure=False):
            pass

    with pytest.raises(BadRequestError, match="^insecure protocol http$"):
        asyncio.run(run())
    assert registry.requests == []


def test_unreachable_registry_is_a_clear_502(tmp_path: Path) -> None:
    with FakeRegistry() as gone:
        host = gone.host
    name = ModelName.parse(f"{host}/library/m:latest")

    async def run() -> None:
        async for _ in pull_model(Store(tmp_path), name, insecure=True):
            pass

    with pytest.raises(RegistryError, match="could not reach registry") as info:
        asyncio.run(run())
    assert info.value.status == 502


def test_concurrent_pulls_of_one_model_share_each_download(
        tmp_path: Path, registry: FakeRegistry) -> None:
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS}, chunk_delay=0.05)
    store = Store(tmp_path)
    name = ModelName.parse(f"{registry.host}/library/m:latest")

    async def both() -> list[list[ProgressResponse]]:
        async def one() -> list[ProgressResponse]:
            return [p async for p in pull_model(store, name, insecure=True, options=SMALL_PARTS)]
        return await asyncio.gather(one(), one(), one())

    results = asyncio.run(both())
    assert all(statuses[-1].status == "success" for statuses in results)
    weights_gets = [p for p in blob_gets(registry) if sha256(WEIGHTS) in p]
    assert len(weights_gets) == 5  # one GET per part, not one per pull
    assert store.blobs.verify(sha256(WEIGHTS))


def test_full_disk_fails_at_once_with_a_clear_error(tmp_path: Path,
                                                   registry: FakeRegistry) -> None:
    """A real full disk: the models dir is a 1 MiB tmpfs in a private mount namespace."""
    big = os.urandom(3 << 20)
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, big),
                         {sha256(CONFIG): CONFIG, sha256(big): big})
    models = tmp_path / "models"
    models.mkdir()
    script = textwrap.dedent(f"""
        import asyncio
        from pasture.errors import PastureError
        from pasture.store import ModelName, Store
        from pasture.store.registry.pull import pull_model
        async def main():
            name = ModelName.parse("{registry.host}/library/m:latest")
            try:
                async for _ in pull_model(Store({str(models)!r}), name, insecure=True):
                    pass
            except PastureError as exc:
                print(exc.status, exc.message)
        asyncio.run(main())
    """)
    command = f"mount -t tmpfs -o size=1m tmpfs {models} && exec {sys.executable} -c \"$0\""
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           command, script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.stdout.strip() == (f"507 no space left on device while downloading "
                                   f"{sha256(big)[7:19]}: free some space and pull again to "
                                   "resume"), done.stderr
    assert [p for p in blob_gets(registry) if sha256(big) in p] == []  # no retry storm


def test_errors_never_name_server_paths(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): b"bad"})
    with pytest.raises(PastureError) as info:
        pull(Store(tmp_path), registry)
    assert str(tmp_path) not in info.value.message


DECLARED = 64 << 20  # what a hostile manifest claims; far more than it will send
ONE_PART = TransferOptions(part_size=1 << 30, retries=0)


def serve_stalling_layer(registry: FakeRegistry, tag: str, sent: bytes) -> str:
    """A layer declared DECLARED bytes long whose blob ends after `sent`; its digest."""
    digest = sha256(sent + tag.encode())
    manifest = manifest_for(CONFIG, WEIGHTS)
    manifest["layers"][0].update(digest=digest, size=DECLARED)
    registry.serve_model("library/m", tag, manifest, {sha256(CONFIG): CONFIG})
    registry.route("GET", f"/v2/library/m/blobs/{digest}",
                   Route(body=sent, send_length=False))
    return digest


def test_a_declared_size_reserves_no_disk_when_the_blob_is_missing(
        tmp_path: Path, registry: FakeRegistry) -> None:
    """A manifest can claim any size; a 404 for the blob must leave no file behind."""
    manifest = manifest_for(CONFIG, WEIGHTS)
    manifest["layers"][0]["size"] = DECLARED
    registry.serve_model("library/m", "latest", manifest, {sha256(CONFIG): CONFIG})
    with pytest.raises(RegistryError, match="not on the registry"):
        pull(Store(tmp_path), registry, options=ONE_PART)
    assert partial_files(tmp_path) == {}


def test_an_interrupted_download_keeps_only_the_bytes_received(
        tmp_path: Path, registry: FakeRegistry) -> None:
    sent = os.urandom(100_000)
    serve_stalling_layer(registry, "latest", sent)
    with pytest.raises(RegistryError, match="ended the body early"):
        pull(Store(tmp_path), registry, options=ONE_PART)
    left = partial_files(tmp_path)
    data = [size for name, size in left.items() if name.endswith("-partial")]
    assert len(data) == 1 and data[0] <= len(sent) + 8192  # a block, not DECLARED bytes
    assert sum(left.values()) <= len(sent) + 16 * 8192


def test_only_the_most_recent_interrupted_downloads_are_kept(
        tmp_path: Path, registry: FakeRegistry) -> None:
    from pasture.store.registry.partials import MAX_LEFTOVERS

    digests = [serve_stalling_layer(registry, f"t{i}", b"x" * 1000)
               for i in range(MAX_LEFTOVERS + 3)]
    for i in range(len(digests)):
        with pytest.raises(RegistryError, match="ended the body early"):
            pull(Store(tmp_path), registry, tag=f"t{i}", options=ONE_PART)
    kept = {name.split("-partial")[0] for name in partial_files(tmp_path)}
    assert kept == {d.replace(":", "-") for d in digests[-MAX_LEFTOVERS:]}
