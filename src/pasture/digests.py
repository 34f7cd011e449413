"""`sha256:<hex>` digests, the names of blobs for the client (to upload a local file) and
the store (to write and verify one): a leaf module, so the client needs nothing of the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

_CHUNK_SIZE = 1 << 20


def digest_of(data: bytes) -> str:
    """The `sha256:<hex>` digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """The `sha256:<hex>` digest of a file, read in 1 MiB chunks (blocking: use a thread);
    `progress` is told the size of each chunk as it is hashed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_SIZE):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return "sha256:" + h.hexdigest()
