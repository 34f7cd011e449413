"""Download bookkeeping: Ollama's part sizing and part files, resuming from them, and the
start-up prune that must spare downloads young enough to be resumed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pasture.errors import DigestMismatchError
from pasture.store import ModelName, Store
from pasture.store.manifests import MEDIA_TYPE_CONFIG, MEDIA_TYPE_MODEL, Layer, Manifest
from pasture.store.prune import prune_at_start
from pasture.store.registry import TransferOptions
from pasture.store.registry.partials import (
    Part,
    load_parts,
    part_path,
    partial_path,
    plan_parts,
    save_part,
)
from pasture.store.registry.pull import pull_model
from tests.fake_registry import FakeRegistry, manifest_for, sha256

CONFIG = b'{"model_format":"gguf"}'
WEIGHTS = os.urandom(200_000)
MB = 1000 * 1000


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        fake.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS})
        yield fake


def pull(store: Store, registry: FakeRegistry, part_size: int) -> None:
    name = ModelName.parse(f"{registry.host}/library/m:latest")

    async def run() -> None:
        async for _ in pull_model(store, name, insecure=True,
                                  options=TransferOptions(part_size=part_size)):
            pass

    asyncio.run(run())


def ranges(registry: FakeRegistry) -> list[str]:
    return sorted(r.headers.get("Range", "") for r in registry.requests
                  if r.method == "GET" and sha256(WEIGHTS) in r.path)


@pytest.mark.parametrize(("size", "part"), [
    (98 * MB, 100 * MB),  # small blobs: one part of at most 100 MB
    (3_200 * MB, 200 * MB),  # size / 16
    (100_000 * MB, 1000 * MB),  # capped at 1000 MB
])
def test_parts_are_sized_like_ollamas(size: int, part: int) -> None:
    assert TransferOptions().parts_for(size) == part
    assert TransferOptions(part_size=7).parts_for(size) == 7


def test_plan_covers_the_blob_exactly() -> None:
    parts = plan_parts(250, 100)
    assert [(p.n, p.offset, p.size) for p in parts] == [(0, 0, 100), (1, 100, 100), (2, 200, 50)]


def test_part_files_use_ollamas_format(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "a" * 64)
    save_part(blob, Part(1, 100, 100, 42))
    assert part_path(blob, 1).read_bytes() == b'{"N":1,"Offset":100,"Size":100,"Completed":42}\n'


def test_inconsistent_part_files_are_not_trusted(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "b" * 64)
    partial_path(blob).write_bytes(b"\0" * 250)
    for part in plan_parts(250, 100):
        save_part(blob, part)
    assert load_parts(blob, 250) is not None
    assert load_parts(blob, 300) is None  # describes another size
    part_path(blob, 1).write_text('{"N":1,"Offset":150,"Size":100,"Completed":0}')  # a gap
    assert load_parts(blob, 250) is None
    part_path(blob, 1).write_text("{not json")
    assert load_parts(blob, 250) is None


def test_claimed_progress_is_capped_to_the_bytes_on_disk(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "c" * 64)
    partial_path(blob).write_bytes(b"\0" * 120)  # the file was never pre-sized fully
    save_part(blob, Part(0, 0, 100, 100))
    save_part(blob, Part(1, 100, 100, 100))
    parts = load_parts(blob, 200)
    assert parts is not None and [p.completed for p in parts] == [100, 20]


def test_pull_resumes_from_saved_parts_with_ranges_past_zero(
        tmp_path: Path, registry: FakeRegistry) -> None:
    store = Store(tmp_path)
    blob = store.blobs.path(sha256(WEIGHTS))
    blob.parent.mkdir(parents=True)
    with open(partial_path(blob), "wb") as f:  # an earlier pull got 30 kB of each part
        f.truncate(len(WEIGHTS))
        for part in plan_parts(len(WEIGHTS), 100_000):
            f.seek(part.offset)
            f.write(WEIGHTS[part.offset:part.offset + 30_000])
            save_part(blob, Part(part.n, part.offset, part.size, 30_000))
    pull(store, registry, part_size=100_000)
    assert ranges(registry) == ["bytes=130000-199999", "bytes=30000-99999"]
    assert store.blobs.verify(sha256(WEIGHTS))
    assert sorted(p.name for p in blob.parent.iterdir()) == sorted(
        d.replace(":", "-") for d in (sha256(CONFIG), sha256(WEIGHTS)))


def test_corrupt_resumed_bytes_are_caught_and_the_next_pull_starts_over(
        tmp_path: Path, registry: FakeRegistry) -> None:
    store = Store(tmp_path)
    blob = store.blobs.path(sha256(WEIGHTS))
    blob.parent.mkdir(parents=True)
    partial_path(blob).write_bytes(b"\xff" * len(WEIGHTS))  # garbage claimed as done
    save_part(blob, Part(0, 0, len(WEIGHTS), len(WEIGHTS) - 10))
    with pytest.raises(DigestMismatchError, match="must be downloaded again"):
        pull(store, registry, part_size=len(WEIGHTS))
    assert not blob.exists() and not partial_path(blob).exists()
    assert not part_path(blob, 0).exists()
    pull(store, registry, part_size=len(WEIGHTS))
    assert store.blobs.verify(sha256(WEIGHTS))


def test_start_up_prune_spares_young_downloads_and_removes_old_ones(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old_time = time.time() - 2 * 3600
    young = store.blobs.path("sha256:" + "1" * 64)
    old = store.blobs.path("sha256:" + "2" * 64)
    young.parent.mkdir(parents=True)
    for blob in (young, old):
        partial_path(blob).write_bytes(b"x" * 10)
        save_part(blob, Part(0, 0, 10, 5))
    for path in (partial_path(old), part_path(old, 0)):
        os.utime(path, (old_time, old_time))
    unused = store.blobs.path(store.blobs.write_bytes(b"unused blob"))
    os.utime(unused, (old_time, old_time))
    config = store.blobs.write_bytes(CONFIG)
    weights = store.blobs.write_bytes(b"weights")
    os.utime(store.blobs.path(weights), (old_time, old_time))
    store.write_manifest(ModelName.parse("kept"), Manifest(
        config=Layer(mediaType=MEDIA_TYPE_CONFIG, digest=config, size=len(CONFIG)),
        layers=[Layer(mediaType=MEDIA_TYPE_MODEL, digest=weights, size=7)]))

    prune_at_start(store)

    assert partial_path(young).exists() and part_path(young, 0).exists()
    assert not partial_path(old).exists() and not part_path(old, 0).exists()
    assert not unused.exists()
    assert store.blobs.exists(weights)  # referenced blobs stay, however old


def test_a_pull_that_stops_early_cancels_its_download_and_keeps_progress(
        tmp_path: Path) -> None:
    from pasture.store.registry import partials

    with FakeRegistry() as slow:
        slow.serve_model("library/m", "latest", manifest_for(CONFIG, WEIGHTS),
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS}, chunk_delay=0.6)
        store = Store(tmp_path)
        name = ModelName.parse(f"{slow.host}/library/m:latest")

        async def start_then_stop() -> None:
            progress = pull_model(store, name, insecure=True,
                                  options=TransferOptions(part_size=100_000))
            async for status in progress:
                if status.completed:
                    break
            await progress.aclose()  # as the server does when the client goes away
            await asyncio.sleep(0.05)
            assert partials.ACTIVE == {}  # no pull watches it any more: cancelled

        asyncio.run(start_then_stop())
        blob = store.blobs.path(sha256(WEIGHTS))
        saved = load_parts(blob, len(WEIGHTS))
        assert saved is not None and 0 < sum(p.completed for p in saved) < len(WEIGHTS)
        assert not blob.exists()
