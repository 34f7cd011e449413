"""Manifests: validated at parse, stored atomically at Ollama's paths, found case-insensitively;
the Store deletes and copies models without losing shared blobs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pasture.errors import ModelNotFoundError, NotFoundError
from pasture.store import Store
from pasture.store.manifests import (
    MAX_MANIFEST_BYTES,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_SYSTEM,
    InvalidManifestError,
    Layer,
    Manifest,
    ManifestStore,
    ModelConfig,
)
from pasture.store.names import ModelName

HEX = "ab" * 32

OLLAMA_MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
    b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json",'
    b'"digest":"sha256:' + HEX.encode() + b'","size":485},'
    b'"layers":[{"mediaType":"application/vnd.ollama.image.model",'
    b'"digest":"sha256:' + ("cd" * 32).encode() + b'","size":270898080,'
    b'"from":"/root/.ollama/models/blobs/sha256-x"}]}\n'
)


def name(text: str) -> ModelName:
    return ModelName.parse(text)


def make_model(store: Store, text: str, *contents: bytes) -> Manifest:
    """Store a model whose layers hold `contents`, the way create does (blobs first)."""
    layers = []
    for data in contents:
        digest = store.blobs.write_bytes(data)
        layers.append(Layer(mediaType=MEDIA_TYPE_MODEL, digest=digest, size=len(data)))
    config = ModelConfig(model_family="llama").to_bytes()
    cfg = Layer(mediaType=MEDIA_TYPE_CONFIG, digest=store.blobs.write_bytes(config),
                size=len(config))
    manifest = Manifest(config=cfg, layers=layers)
    store.write_manifest(name(text), manifest)
    return manifest


def test_parse_reads_an_ollama_manifest() -> None:
    manifest = Manifest.parse(OLLAMA_MANIFEST)
    assert manifest.mediaType == MEDIA_TYPE_MANIFEST
    assert manifest.config.digest == "sha256:" + HEX
    assert manifest.layers[0].from_ == "/root/.ollama/models/blobs/sha256-x"
    assert manifest.total_size == 485 + 270898080
    assert manifest.layer(MEDIA_TYPE_MODEL) is manifest.layers[0]
    assert manifest.layer(MEDIA_TYPE_SYSTEM) is None


def test_to_bytes_is_compact_json_that_parses_back() -> None:
    manifest = Manifest.parse(OLLAMA_MANIFEST)
    data = manifest.to_bytes()
    assert data == OLLAMA_MANIFEST  # same field order and spelling as Ollama's encoder
    assert Manifest.parse(data) == manifest


def test_layer_from_is_left_out_when_unset() -> None:
    layer = Layer(mediaType=MEDIA_TYPE_PARAMS, digest="sha256:" + HEX, size=2)
    manifest = Manifest(config=layer, layers=[layer])
    assert b'"from"' not in manifest.to_bytes()


@pytest.mark.parametrize(
    "digest",
    ["sha256:../../../etc/passwd", "sha256-" + HEX, "sha256:" + HEX.upper(), "md5:abc"],
)
def test_parse_rejects_unsafe_layer_digests(digest: str) -> None:
    doc = json.loads(OLLAMA_MANIFEST)
    doc["layers"][0]["digest"] = digest
    with pytest.raises(InvalidManifestError) as info:
        Manifest.parse(json.dumps(doc).encode())
    assert "digest" in info.value.message


def test_parse_rejects_a_bad_config_digest() -> None:
    doc = json.loads(OLLAMA_MANIFEST)
    doc["config"]["digest"] = "sha256:/x"
    with pytest.raises(InvalidManifestError):
        Manifest.parse(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"schemaVersion":2}',
        b'{"schemaVersion":1,"config":{"mediaType":"x","digest":"sha256:' + HEX.encode()
        + b'","size":1},"layers":[]}',
        OLLAMA_MANIFEST.replace(b'"size":485', b'"size":-1'),
        OLLAMA_MANIFEST.replace(b'"size":485', b'"size":"big"'),
    ],
)
def test_parse_rejects_malformed_manifests(data: bytes) -> None:
    with pytest.raises(InvalidManifestError):
        Manifest.parse(data)


def test_parse_caps_size_and_layer_count() -> None:
    with pytest.raises(InvalidManifestError, match="4 MiB"):
        Manifest.parse(b" " * (MAX_MANIFEST_BYTES + 1))
    doc = json.loads(OLLAMA_MANIFEST)
    doc["layers"] = doc["layers"] * 1025
    with pytest.raises(InvalidManifestError):
        Manifest.parse(json.dumps(doc).encode())


def test_model_config_serialises_like_ollama() -> None:
    config = ModelConfig(model_family="llama", model_families=["llama"], model_type="134.52M",
                         file_type="Q4_1", context_length=8192)
    assert json.loads(config.to_bytes()) == {
        "model_format": "gguf",
        "model_family": "llama",
        "model_families": ["llama"],
        "model_type": "134.52M",
        "file_type": "Q4_1",
        "context_length": 8192,
        "architecture": "amd64",
        "os": "linux",
    }
    assert ModelConfig.parse(config.to_bytes()) == config


def test_write_then_read_uses_ollamas_path(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    manifest = Manifest.parse(OLLAMA_MANIFEST)
    store.write(name("me/m:v1"), manifest)
    path = tmp_path / "manifests" / "registry.ollama.ai" / "me" / "m" / "v1"
    assert path.read_bytes() == OLLAMA_MANIFEST
    assert store.read(name("me/m:v1")) == manifest
    assert store.digest(name("me/m:v1")) == hashlib.sha256(OLLAMA_MANIFEST).hexdigest()
    assert store.modified_at(name("me/m:v1")).tzinfo is not None
    assert [p.name for p in path.parent.iterdir()] == ["v1"]  # no temp file left


def test_write_raw_keeps_bytes_so_the_id_survives(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    pretty = json.dumps(json.loads(OLLAMA_MANIFEST), indent=2).encode()
    store.write_raw(name("m"), pretty)
    assert store.digest(name("m")) == hashlib.sha256(pretty).hexdigest()


def test_write_raw_refuses_invalid_manifest_and_keeps_the_old_one(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write_raw(name("m"), OLLAMA_MANIFEST)
    with pytest.raises(InvalidManifestError):
        store.write_raw(name("m"), b'{"truncated')
    assert store.read_bytes(name("m")) == OLLAMA_MANIFEST


def test_read_missing_model_is_ollamas_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ManifestStore(tmp_path).read(name("nope"))
    assert info.value.message == "model 'nope:latest' not found"
    assert info.value.status == 404


def test_lookup_is_case_insensitive(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write_raw(name("Me/SmolLM2:135M"), OLLAMA_MANIFEST)
    assert store.read_bytes(name("me/smollm2:135m")) == OLLAMA_MANIFEST
    assert store.resolve(name("ME/SMOLLM2:135m")).display == "Me/SmolLM2:135M"
    assert store.exists(name("REGISTRY.OLLAMA.AI/me/smollm2:135M"))


def test_writing_a_case_variant_replaces_the_existing_model(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write_raw(name("Model:Tag"), OLLAMA_MANIFEST)
    store.write_raw(name("model:tag"), OLLAMA_MANIFEST.replace(b"485", b"486"))
    assert [n.display for n in store.list()] == ["Model:Tag"]
    assert store.read(name("MODEL:TAG")).config.size == 486


def test_delete_removes_manifest_and_empty_directories(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write_raw(name("me/a:1"), OLLAMA_MANIFEST)
    store.write_raw(name("me/b:1"), OLLAMA_MANIFEST)
    store.delete(name("me/a:1"))
    me = tmp_path / "manifests" / "registry.ollama.ai" / "me"
    assert sorted(p.name for p in me.iterdir()) == ["b"]
    store.delete(name("me/b:1"))
    assert list((tmp_path / "manifests").iterdir()) == []
    with pytest.raises(ModelNotFoundError):
        store.delete(name("me/b:1"))


def test_list_skips_temp_files_and_invalid_names(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write_raw(name("a"), OLLAMA_MANIFEST)
    store.write_raw(name("example.com:5000/ns/b:v2"), OLLAMA_MANIFEST)
    tag_dir = tmp_path / "manifests" / "registry.ollama.ai" / "library" / "a"
    (tag_dir / ".tmp-deadbeef").write_bytes(b"{")
    bad = tmp_path / "manifests" / "registry.ollama.ai" / "bad.ns" / "m"
    bad.mkdir(parents=True)
    (bad / "latest").write_bytes(OLLAMA_MANIFEST)
    (tmp_path / "manifests" / "stray-file").write_text("x")
    assert sorted(n.display for n in store.list()) == ["a:latest", "example.com:5000/ns/b:v2"]


def test_referenced_digests_covers_layers_and_configs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = make_model(store, "a", b"weights-a")
    second = make_model(store, "b", b"weights-b")
    assert store.manifests.referenced_digests() == first.digests() | second.digests()


def test_write_manifest_requires_every_blob(tmp_path: Path) -> None:
    store = Store(tmp_path)
    manifest = Manifest.parse(OLLAMA_MANIFEST)
    with pytest.raises(NotFoundError):
        store.write_manifest(name("m"), manifest)
    assert store.manifests.list() == []


def test_delete_model_keeps_blobs_another_model_shares(tmp_path: Path) -> None:
    store = Store(tmp_path)
    shared = make_model(store, "a", b"shared weights", b"only a")
    make_model(store, "b", b"shared weights")
    only_a = shared.layers[1].digest
    store.delete_model(name("a"))
    assert not store.manifests.exists(name("a"))
    assert store.blobs.exists(shared.layers[0].digest)
    assert store.blobs.exists(shared.config.digest)  # same config blob as b
    assert not store.blobs.exists(only_a)


def test_delete_model_removes_all_its_blobs_when_unshared(tmp_path: Path) -> None:
    store = Store(tmp_path)
    make_model(store, "a", b"one", b"two")
    store.delete_model(name("a"))
    assert store.blobs.all_digests() == []


def test_delete_model_keeps_blobs_if_another_manifest_is_unreadable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    manifest = make_model(store, "a", b"weights")
    corrupt = tmp_path / "manifests" / "registry.ollama.ai" / "library" / "b"
    corrupt.mkdir(parents=True)
    (corrupt / "latest").write_bytes(b"{not json")
    store.delete_model(name("a"))
    assert all(store.blobs.exists(d) for d in manifest.digests())


def test_a_model_with_a_corrupt_manifest_can_still_be_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path)
    kept = make_model(store, "good", b"weights")
    corrupt = tmp_path / "manifests" / "registry.ollama.ai" / "library" / "bad"
    corrupt.mkdir(parents=True)
    (corrupt / "latest").write_bytes(b"\0\0garbage")
    store.delete_model(name("bad"))
    assert [n.display for n in store.manifests.list()] == ["good:latest"]
    assert all(store.blobs.exists(d) for d in kept.digests())


def test_write_manifest_checks_blob_sizes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    digest = store.blobs.write_bytes(b"four")
    layer = Layer(mediaType=MEDIA_TYPE_MODEL, digest=digest, size=5)
    with pytest.raises(InvalidManifestError, match="size"):
        store.write_manifest(name("m"), Manifest(config=layer, layers=[layer]))
    assert not store.manifests.exists(name("m"))


def test_delete_missing_model_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        Store(tmp_path).delete_model(name("ghost"))


def test_copy_gives_the_same_id_under_a_new_name(tmp_path: Path) -> None:
    store = Store(tmp_path)
    make_model(store, "a", b"weights")
    store.copy(name("a"), name("me/b:v2"))
    assert store.manifests.digest(name("me/b:v2")) == store.manifests.digest(name("a"))
    store.delete_model(name("a"))
    assert store.manifests.read(name("me/b:v2"))  # the copy still has its blobs
    assert all(store.blobs.exists(d) for d in store.manifests.read(name("me/b:v2")).digests())


def test_copy_of_missing_model_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        Store(tmp_path).copy(name("ghost"), name("b"))


def test_prune_removes_old_unreferenced_blobs_only(tmp_path: Path) -> None:
    import os

    store = Store(tmp_path)
    kept = make_model(store, "a", b"used")
    orphan_old = store.blobs.write_bytes(b"orphan old")
    orphan_new = store.blobs.write_bytes(b"orphan new")
    os.utime(store.blobs.path(orphan_old), (0, 0))
    for digest in kept.digests():
        os.utime(store.blobs.path(digest), (0, 0))
    assert store.prune(older_than=3600) == [orphan_old]
    assert store.blobs.exists(orphan_new)
    assert all(store.blobs.exists(d) for d in kept.digests())
