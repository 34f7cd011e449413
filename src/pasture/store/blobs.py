"""Content-addressed blobs: `blobs/sha256-<64 hex>`, written atomically and verified.

A digest from outside (API, manifest, registry) is validated before it becomes a path
(Probllama, CVE-2024-37032), and content is hashed while it is written to a temp file in
the same directory, so a blob file only ever appears under its name once it matches it.
Temp files start with `.tmp-`, which no digest can, so they are never mistaken for blobs;
so do the scratch folders of a conversion, which the start-up prune removes like them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from pasture.digests import digest_of, hash_file
from pasture.errors import (
    DigestMismatchError,
    InvalidDigestError,
    NotFoundError,
    PastureError,
)
from pasture.store.paths import lstat_below, open_below, read_below

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_BLOB_FILE_RE = re.compile(r"sha256-([0-9a-f]{64})")
TEMP_PREFIX = ".tmp-"
# Chunks from a stream are batched to this size before each hop to a worker thread.
_FLUSH_SIZE = 1 << 20


class StoreFullError(PastureError):
    """No space left where the models are stored (507, as for a pull that fills the disk)."""

    status = 507

    def __init__(self) -> None:
        super().__init__("no space left on device to store the model: free some space "
                         "and try again")


@contextlib.contextmanager
def disk_full_is_507() -> Iterator[None]:
    """Report a full disk or quota (ENOSPC, EDQUOT) as StoreFullError, without the path
    that the OSError carries; any other OSError is left alone (a 500: a bug or a broken
    disk, not something the user can fix by freeing space)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFullError() from None
        raise


def validate_digest(digest: str) -> str:
    """Return `digest` if it is `sha256:` + 64 lowercase hex, else raise InvalidDigestError."""
    if not isinstance(digest, str) or DIGEST_RE.fullmatch(digest) is None:
        raise InvalidDigestError()
    return digest


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable; best effort where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(temp: Path, f: BinaryIO) -> None:
    """Close and delete a failed write's temp file. Closing flushes what is buffered,
    which fails again on a full disk: that must not keep the file from being deleted."""
    with contextlib.suppress(OSError):
        f.close()
    temp.unlink(missing_ok=True)


class BlobStore:
    """The `blobs/` directory of a models directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # `<models>/blobs`: below the models directory, no link
        self.base = self.root.parent  # is followed (pasture.store.paths)

    def path(self, digest: str) -> Path:
        """Where the blob for `digest` lives; the digest is validated first."""
        validate_digest(digest)
        return self.root / digest.replace(":", "-", 1)

    def _parts(self, digest: str) -> tuple[str, str]:
        return (self.root.name, self.path(digest).name)

    def lstat(self, digest: str) -> os.stat_result | None:
        """The blob file's own status, None if absent; StoreLinkError (400) if it, or the
        blobs directory, is a symbolic link: a blob is never read through a link."""
        return lstat_below(self.base, self._parts(digest))

    def exists(self, digest: str) -> bool:
        found = self.lstat(digest)
        return found is not None and stat.S_ISREG(found.st_mode)

    def size(self, digest: str) -> int:
        """Size in bytes; NotFoundError if the blob is missing."""
        found = self.lstat(digest)
        if found is None or not stat.S_ISREG(found.st_mode):
            raise NotFoundError(f'blob "{digest}" not found')
        return found.st_size

    def open(self, digest: str) -> BinaryIO:
        """The blob open for reading, without following links; FileNotFoundError if it
        is missing, StoreLinkError (400) if it is a link."""
        return open_below(self.base, self._parts(digest))

    def read(self, digest: str, limit: int) -> bytes:
        """A small blob's bytes, at most `limit + 1` of them, opened without following
        links; FileNotFoundError if it is missing."""
        return read_below(self.base, self._parts(digest), limit)

    def _temp(self) -> tuple[Path, BinaryIO]:
        path = self.new_temp_path()
        return path, open(path, "xb")  # the caller closes it

    def _commit(self, temp: Path, f: BinaryIO, digest: str) -> None:
        """fsync the temp file, rename it onto the blob name, fsync the directory."""
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(temp, self.path(digest))
        fsync_dir(self.root)

    def check_space(self, size: int) -> None:
        """StoreFullError now, rather than after `size` bytes that cannot all fit."""
        self.root.mkdir(parents=True, exist_ok=True)
        space = os.statvfs(self.root)
        if size > space.f_bavail * space.f_frsize:
            raise StoreFullError()

    async def write_stream(
        self, digest: str, chunks: AsyncIterator[bytes], *, size: int | None = None
    ) -> bool:
        """Store a streamed body under `digest`, verifying it; False if already present.

        When `size` is given, a body that cannot fit in the free space is refused before
        it is read, and reading stops as soon as the body is longer than `size`, so a
        lying peer cannot fill the disk. Errors (a full disk: StoreFullError, 507) leave
        nothing behind.
        """
        validate_digest(digest)
        if self.exists(digest):
            return False
        with disk_full_is_507():
            if size is not None:
                await asyncio.to_thread(self.check_space, size)
            return await self._write_stream(digest, chunks, size)

    async def _write_stream(self, digest: str, chunks: AsyncIterator[bytes],
                            size: int | None) -> bool:
        temp, f = await asyncio.to_thread(self._temp)
        h = hashlib.sha256()
        written = 0
        pending: list[bytes] = []
        pending_len = 0

        def flush(parts: list[bytes]) -> None:
            for part in parts:
                h.update(part)
                f.write(part)

        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                written += len(chunk)
                if size is not None and written > size:
                    raise DigestMismatchError(
                        f"size mismatch, expected {size} bytes, got more for {digest}"
                    )
                pending.append(bytes(chunk))
                pending_len += len(chunk)
                if pending_len >= _FLUSH_SIZE:
                    await asyncio.to_thread(flush, pending)
                    pending, pending_len = [], 0
            await asyncio.to_thread(flush, pending)
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise DigestMismatchError(f'digest mismatch, expected "{digest}", got "{got}"')
            if size is not None and written != size:
                raise DigestMismatchError(
                    f"size mismatch, expected {size} bytes, got {written} for {digest}"
                )
            await asyncio.to_thread(self._commit, temp, f, digest)
        except BaseException:
            _discard(temp, f)
            raise
        return True

    def write_bytes(self, data: bytes) -> str:
        """Store small content (config, template, params layers); returns its digest."""
        digest = digest_of(data)
        if self.exists(digest):
            return digest
        with disk_full_is_507():
            temp, f = self._temp()
            try:
                f.write(data)
                self._commit(temp, f, digest)
            except BaseException:
                _discard(temp, f)
                raise
        return digest

    def new_temp_path(self) -> Path:
        """A fresh temp file name in the blobs folder, for a writer outside this process
        (the quantizer): `adopt` makes the finished file a blob; a crash leaves it to
        `clean_temp`."""
        self.root.mkdir(parents=True, exist_ok=True)
        lstat_below(self.base, (self.root.name,))  # not written through a linked folder
        return self.root / f"{TEMP_PREFIX}{secrets.token_hex(8)}"

    def new_temp_dir(self) -> Path:
        """A fresh scratch folder in the blobs folder (blocking): the caller removes it,
        and what a killed server leaves is removed by `clean_temp` after the grace period,
        as a temp file would be."""
        path = self.new_temp_path()
        path.mkdir(mode=0o700)
        return path

    def adopt(self, temp: Path) -> str:
        """Store the finished file `temp` (from `new_temp_path`) under its content's
        digest, as any other blob (blocking: it hashes the whole file)."""
        digest = hash_file(temp)
        with open(temp, "rb") as f:
            self._commit(temp, f, digest)
        return digest

    def verify(self, digest: str) -> bool:
        """Whether the stored blob still hashes to its name (blocking: use a thread)."""
        try:
            return hash_file(self.path(digest)) == digest
        except FileNotFoundError:
            return False

    def remove(self, digest: str) -> None:
        """Delete a blob; a missing one is not an error."""
        self.path(digest).unlink(missing_ok=True)

    def all_digests(self) -> list[str]:
        """Every well-named blob, sorted; temp files and foreign names are skipped."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            match = _BLOB_FILE_RE.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                found.append("sha256:" + match.group(1))
        return sorted(found)

    def clean_temp(self, older_than: float = 3600.0) -> int:
        """Remove temp files left by crashed writes that are older than `older_than` s."""
        return remove_stale_temps(self.root, older_than)


def remove_stale_temps(directory: Path, older_than: float) -> int:
    """Remove the `.tmp-` files in `directory` older than `older_than` seconds: what a
    write killed before its rename leaves (blobs, and manifests in their own folders),
    and scratch folders (`new_temp_dir`), whose links are removed, not what they name."""
    removed = 0
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX):
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                continue
    return removed
