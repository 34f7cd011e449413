"""`verify_models` and `check_blobs` on a real store in a temporary directory.

The registry side (repairs) is covered by tests/integration/test_verify.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pasture.api.ollama import VerifyResponse
from pasture.errors import ModelNotFoundError
from pasture.store import ModelName, Store
from pasture.store import manifests as mf
from pasture.store.verify import DamagedModelError, check_blobs, verify_models


def add_model(store: Store, name: str, *contents: bytes) -> mf.Manifest:
    layers = [mf.Layer(mediaType=mf.MEDIA_TYPE_MODEL, digest=store.blobs.write_bytes(data),
                       size=len(data)) for data in contents]
    config = b"{}"
    manifest = mf.Manifest(config=mf.Layer(mediaType=mf.MEDIA_TYPE_CONFIG,
                                           digest=store.blobs.write_bytes(config),
                                           size=len(config)), layers=layers)
    store.write_manifest(ModelName.parse(name), manifest)
    return manifest


def verify(store: Store, *models: str) -> list[VerifyResponse]:
    async def collect() -> list[VerifyResponse]:
        return [line async for line in verify_models(store, models)]

    return asyncio.run(collect())


def test_a_shared_blob_is_hashed_once_and_judged_for_every_model(tmp_path: Path) -> None:
    store = Store(tmp_path)
    shared = add_model(store, "a", b"shared weights").layers[0].digest
    add_model(store, "b", b"shared weights", b"own weights")
    with open(store.blobs.path(shared), "r+b") as f:
        f.write(b"S")

    *progress, verdict = verify(store)
    assert [line.digest for line in progress].count(shared) == 1
    assert verdict.status == "damaged"
    assert [(c.model, c.state, c.damaged) for c in verdict.models or []] == [
        ("a:latest", "corrupt", {shared: "corrupt"}),
        ("b:latest", "corrupt", {shared: "corrupt"})]


def test_missing_blob_and_unreadable_manifest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    lost = add_model(store, "lost", b"weights").layers[0].digest
    store.blobs.remove(lost)
    add_model(store, "garbled", b"other weights")
    path = store.manifests.path(ModelName.parse("garbled"))
    assert path is not None
    path.write_bytes(b'{"schemaVersion": 2, "layers": [')

    *_, verdict = verify(store)
    checks = {c.model: c for c in verdict.models or []}
    assert (checks["lost:latest"].state, checks["lost:latest"].damaged) == (
        "missing", {lost: "missing"})
    assert (checks["garbled:latest"].state, checks["garbled:latest"].note) == (
        "corrupt", "its manifest is unreadable: pull it again")


def test_sound_models_pass_and_unknown_ones_are_404s(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add_model(store, "fine", b"weights")
    assert verify(store, "fine")[-1].status == "success"
    with pytest.raises(ModelNotFoundError):
        verify(store, "fine", "absent")


def test_check_blobs_names_a_truncated_or_missing_blob(tmp_path: Path) -> None:
    store = Store(tmp_path)
    manifest = add_model(store, "m", b"0123456789")
    name = ModelName.parse("m")
    check_blobs(store, name, manifest)
    digest = manifest.layers[0].digest
    store.blobs.path(digest).write_bytes(b"01234")
    with pytest.raises(DamagedModelError, match=f"blob {digest[7:19]} has 5 bytes instead of 10"):
        check_blobs(store, name, manifest)
    store.blobs.remove(digest)
    with pytest.raises(DamagedModelError, match="is missing; run 'pasture verify --repair m:"):
        check_blobs(store, name, manifest)
