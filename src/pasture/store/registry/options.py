"""How pulls and pushes move bytes: part sizes, parallelism, retries, mirrors.

A module of its own, free of httpx, so that routes and `create` can name the options
without loading the network client before the first pull (issue 23: `pasture serve`
starts without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Ollama's part sizing: a blob is cut in 16 parts of 100 MB to 1000 MB.
NUM_PARTS = 16
MIN_PART_SIZE = 100 * 1000 * 1000
MAX_PART_SIZE = 1000 * 1000 * 1000


@dataclass(frozen=True)
class TransferOptions:
    """How pulls and pushes move bytes; the defaults are Ollama's."""

    part_size: int | None = None  # None: size/16 clamped to [100 MB, 1000 MB]
    max_parallel: int = NUM_PARTS  # byte ranges of one blob fetched at once
    retries: int = 3  # per part, for network errors
    timeout: float = 30.0  # seconds without progress before a request is retried
    key_path: Path | None = None  # None: ~/.pasture/id_ed25519
    # (host, base URL) pairs: a pull from `host` asks the URL instead (a mirror of it)
    mirrors: tuple[tuple[str, str], ...] = ()

    def mirror(self, host: str) -> str | None:
        """The base URL that stands in for registry `host`, if one does."""
        return dict(self.mirrors).get(host.lower())

    def parts_for(self, size: int) -> int:
        """The part size used for a blob of `size` bytes."""
        if self.part_size:
            return max(1, self.part_size)
        return min(max(size // NUM_PARTS, MIN_PART_SIZE), MAX_PART_SIZE)
