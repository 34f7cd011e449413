"""A pulled manifest that replaces a tag removes the old blobs nothing else uses, at once.

The end-to-end pull against a real registry is in tests/integration/test_registry.py;
these pin down which blobs may go: never one another manifest references, never one a
pull under way holds, never any while some manifest is unreadable, none with noprune.
"""

from __future__ import annotations

from pathlib import Path

from pasture.store import Store
from pasture.store.manifests import MEDIA_TYPE_CONFIG, MEDIA_TYPE_MODEL, Layer, Manifest
from pasture.store.names import ModelName

TAG = ModelName.parse("example.com/library/m:1")


def manifest_of(store: Store, *contents: bytes) -> Manifest:
    """A manifest over blobs holding `contents` (written now); the config is shared."""
    layers = [Layer(mediaType=MEDIA_TYPE_MODEL, digest=store.blobs.write_bytes(data),
                    size=len(data)) for data in contents]
    config = Layer(mediaType=MEDIA_TYPE_CONFIG, digest=store.blobs.write_bytes(b"{}"), size=2)
    return Manifest(config=config, layers=layers)


def repull(store: Store, old: tuple[bytes, ...], new: tuple[bytes, ...]
           ) -> tuple[Manifest, Manifest, set[str]]:
    v1, v2 = manifest_of(store, *old), manifest_of(store, *new)
    assert store.replace_manifest(TAG, v1.to_bytes()) == set()  # nothing replaced yet
    return v1, v2, store.replace_manifest(TAG, v2.to_bytes())


def test_the_old_versions_own_blobs_go_and_shared_ones_stay(tmp_path: Path) -> None:
    store = Store(tmp_path)
    v1, v2, stale = repull(store, (b"weights", b"old system"), (b"weights", b"new system"))
    assert stale == {v1.layers[1].digest}
    assert not store.blobs.exists(v1.layers[1].digest)
    assert all(store.blobs.exists(digest) for digest in v2.digests())
    assert store.manifests.read_bytes(TAG) == v2.to_bytes()


def test_a_blob_another_model_uses_stays(tmp_path: Path) -> None:
    store = Store(tmp_path)
    other = manifest_of(store, b"old system")
    store.write_manifest(ModelName.parse("other"), other)
    v1, _, stale = repull(store, (b"weights", b"old system"), (b"weights", b"new"))
    assert stale == {v1.layers[1].digest}
    assert store.blobs.exists(v1.layers[1].digest)


def test_a_blob_a_pull_under_way_holds_stays(tmp_path: Path) -> None:
    store = Store(tmp_path)
    held = store.blobs.write_bytes(b"old system")
    with store.in_use([held]):
        with store.in_use([held]):  # two pulls of it; the first to finish keeps it held
            pass
        _, _, stale = repull(store, (b"weights", b"old system"), (b"weights", b"new"))
        assert stale == {held} and store.blobs.exists(held)
    assert store.prune(older_than=-1) == [held]  # once released, an orphan like any other


def test_noprune_keeps_the_old_blobs(tmp_path: Path) -> None:
    store = Store(tmp_path, noprune=True)
    v1, _, stale = repull(store, (b"weights", b"old system"), (b"weights", b"new"))
    assert stale == set()
    assert all(store.blobs.exists(digest) for digest in v1.digests())


def test_an_unreadable_manifest_keeps_every_blob(tmp_path: Path) -> None:
    store = Store(tmp_path)
    v1 = manifest_of(store, b"weights", b"old system")
    store.replace_manifest(TAG, v1.to_bytes())
    corrupt = tmp_path / "manifests" / "registry.ollama.ai" / "library" / "bad"
    corrupt.mkdir(parents=True)
    (corrupt / "latest").write_bytes(b"{not json")
    assert store.replace_manifest(TAG, manifest_of(store, b"new").to_bytes())
    assert all(store.blobs.exists(digest) for digest in v1.digests())
