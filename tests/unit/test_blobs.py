"""Blobs are addressed by validated digests, verified while written, and written atomically."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pasture.digests import digest_of
from pasture.errors import (
    DigestMismatchError,
    InvalidDigestError,
    NotFoundError,
)
from pasture.store.blobs import BlobStore, validate_digest

HEX = "0123456789abcdef" * 4


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_validate_digest_accepts_sha256_lowercase_hex() -> None:
    assert validate_digest("sha256:" + HEX) == "sha256:" + HEX


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256:" + HEX[:-1],
        "sha256:" + HEX + "0",
        "sha256:" + HEX.upper(),
        "sha256-" + HEX,
        "sha512:" + HEX + HEX,
        "sha256:../../" + HEX[6:],
        "sha256:" + HEX[:-1] + "/",
        "sha256:" + HEX + "\n",
        "sha256:" + HEX[:-1] + "\x00",
        " sha256:" + HEX,
        HEX,
    ],
)
def test_validate_digest_rejects_everything_else(digest: str) -> None:
    with pytest.raises(InvalidDigestError) as info:
        validate_digest(digest)
    assert info.value.message == "invalid digest format"


def test_path_uses_ollamas_file_name_inside_root(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert store.path("sha256:" + HEX) == tmp_path / f"sha256-{HEX}"
    with pytest.raises(InvalidDigestError):
        store.path("sha256:../../etc/passwd")


def test_write_stream_stores_verified_content(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = os.urandom(3 << 20)
    digest = sha(data)
    parts = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    assert asyncio.run(store.write_stream(digest, chunks(*parts))) is True
    assert store.path(digest).read_bytes() == data
    assert store.exists(digest) and store.size(digest) == len(data)
    assert leftovers(tmp_path) == [f"sha256-{digest[7:]}"]


def test_write_stream_returns_false_without_reading_when_present(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.write_bytes(b"hello")
    consumed = []

    async def body() -> AsyncIterator[bytes]:
        consumed.append(True)
        yield b"hello"

    assert asyncio.run(store.write_stream(digest, body())) is False
    assert consumed == []


def test_write_stream_mismatch_raises_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    claimed = sha(b"expected")
    with pytest.raises(DigestMismatchError) as info:
        asyncio.run(store.write_stream(claimed, chunks(b"something ", b"else")))
    assert info.value.message == (
        f'digest mismatch, expected "{claimed}", got "{sha(b"something else")}"'
    )
    assert info.value.status == 400
    assert not store.exists(claimed)
    assert leftovers(tmp_path) == []


def test_write_stream_stops_reading_past_declared_size(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"x" * 100
    read = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            read.append(10)
            yield b"x" * 10

    with pytest.raises(DigestMismatchError):
        asyncio.run(store.write_stream(sha(data), endless(), size=100))
    assert sum(read) == 110
    assert leftovers(tmp_path) == []


def test_write_stream_cleans_temp_file_when_the_body_fails(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(store.write_stream(sha(b"partial body"), broken()))
    assert leftovers(tmp_path) == []


def test_write_stream_rejects_bad_digest_before_touching_disk(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(InvalidDigestError):
        asyncio.run(store.write_stream("sha256-" + HEX, chunks(b"x")))
    assert not (tmp_path / "blobs").exists()


def test_write_bytes_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.write_bytes(b'{"temperature": 0.2}')
    assert first == digest_of(b'{"temperature": 0.2}')
    assert store.write_bytes(b'{"temperature": 0.2}') == first
    assert leftovers(tmp_path) == [first.replace(":", "-")]


def test_size_of_missing_blob_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        BlobStore(tmp_path).size("sha256:" + HEX)


def test_all_digests_skips_temp_and_foreign_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.write_bytes(b"a")
    (tmp_path / ".tmp-123").write_bytes(b"half")
    (tmp_path / f"sha256-{HEX}-partial").write_bytes(b"x")
    (tmp_path / f"sha256-{HEX.upper()}").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert store.all_digests() == [digest]


def test_remove_deletes_and_tolerates_missing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.write_bytes(b"a")
    store.remove(digest)
    store.remove(digest)
    assert not store.exists(digest)


def test_verify_detects_a_flipped_byte(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.write_bytes(b"weights" * 1000)
    assert store.verify(digest)
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    assert not store.verify(digest)


def test_clean_temp_removes_only_old_temp_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.write_bytes(b"keep")
    old, new = tmp_path / ".tmp-old", tmp_path / ".tmp-new"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    os.utime(old, (0, 0))
    assert store.clean_temp(older_than=3600) == 1
    assert leftovers(tmp_path) == sorted([".tmp-new", digest.replace(":", "-")])


def test_clean_temp_removes_old_scratch_folders_but_not_what_they_link(tmp_path: Path) -> None:
    # A conversion's folder of links to blobs, left by a server killed mid-conversion.
    store = BlobStore(tmp_path)
    digest = store.write_bytes(b"weights")
    old, new = store.new_temp_dir(), store.new_temp_dir()
    for scratch in (old, new):
        (scratch / "model").mkdir()
        (scratch / "model" / "model.safetensors").symlink_to(store.path(digest))
    os.utime(old, (0, 0))
    assert store.clean_temp(older_than=3600) == 1
    assert leftovers(tmp_path) == sorted([new.name, digest.replace(":", "-")])
    assert store.path(digest).read_bytes() == b"weights"
