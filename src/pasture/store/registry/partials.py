"""Interrupted downloads on disk: the `-partial` data file of a blob and its part files.

Kept apart from the downloading itself (`download.py`, which needs httpx) so that the
store's start-up clean-up reads and removes leftovers without loading a network client.
A part file is Ollama's `{"N","Offset","Size","Completed"}`, so each can resume the
other's downloads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pasture.store.blobs import TEMP_PREFIX

if TYPE_CHECKING:
    from pasture.store.registry.download import BlobDownload

_PARTIAL_RE = re.compile(r"(sha256-[0-9a-f]{64})-partial(?:-(\d+))?")
# Interrupted downloads kept for resuming; older ones are deleted when a new one starts.
MAX_LEFTOVERS = 4
# Downloads running in this process, by final blob path: one per digest. Their files are
# never leftovers.
ACTIVE: dict[Path, BlobDownload] = {}


@dataclass
class Part:
    """One byte range of a blob: `size` bytes from `offset`, `completed` of them on disk."""

    n: int
    offset: int
    size: int
    completed: int = 0

    @property
    def end(self) -> int:
        """One past the last byte of the part."""
        return self.offset + self.size

    def to_json(self) -> bytes:
        return json.dumps({"N": self.n, "Offset": self.offset, "Size": self.size,
                           "Completed": self.completed}, separators=(",", ":")).encode() + b"\n"


def partial_path(blob: Path) -> Path:
    return blob.with_name(blob.name + "-partial")


def part_path(blob: Path, n: int) -> Path:
    return blob.with_name(f"{blob.name}-partial-{n}")


def plan_parts(total: int, part_size: int) -> list[Part]:
    """Cut `total` bytes in parts of `part_size` (the last one shorter)."""
    return [Part(n, offset, min(part_size, total - offset))
            for n, offset in enumerate(range(0, total, part_size))]


def load_parts(blob: Path, total: int) -> list[Part] | None:
    """The saved parts of an earlier download of `blob`, or None if there are none or
    they do not describe exactly `total` bytes (then the download starts over)."""
    pattern = re.compile(re.escape(blob.name) + r"-partial-(\d+)")
    parts = []
    try:
        for entry in os.scandir(blob.parent):
            if pattern.fullmatch(entry.name):
                with open(entry.path, "rb") as f:
                    state = json.loads(f.read(4096))
                parts.append(Part(int(state["N"]), int(state["Offset"]), int(state["Size"]),
                                  int(state["Completed"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    parts.sort(key=lambda p: p.n)
    offset = 0
    for i, part in enumerate(parts):
        if part.n != i or part.offset != offset or part.size <= 0 or \
                not 0 <= part.completed <= part.size:
            return None
        offset = part.end
    if not parts or offset != total:
        return None
    try:  # bytes claimed done must be on disk
        on_disk = partial_path(blob).stat().st_size
    except FileNotFoundError:
        return None
    for part in parts:
        part.completed = max(0, min(part.completed, on_disk - part.offset))
    return parts


def save_part(blob: Path, part: Part) -> None:
    """Record a part's progress atomically (a kill mid-write keeps the previous state)."""
    temp = blob.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    temp.write_bytes(part.to_json())
    os.replace(temp, part_path(blob, part.n))


def remove_partial(blob: Path) -> None:
    """Delete a download's data file and every part file."""
    partial_path(blob).unlink(missing_ok=True)
    pattern = re.compile(re.escape(blob.name) + r"-partial-\d+")
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(blob.parent):
            if pattern.fullmatch(entry.name):
                Path(entry.path).unlink(missing_ok=True)


def _leftovers(blobs_root: Path) -> list[tuple[float, list[os.DirEntry[str]]]]:
    """The files of each download not running in this process, with the time its newest
    file was touched, oldest download first."""
    groups: dict[str, list[os.DirEntry[str]]] = {}
    try:
        entries = list(os.scandir(blobs_root))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = _PARTIAL_RE.fullmatch(entry.name)
        if match:
            groups.setdefault(match.group(1), []).append(entry)
    active = {path.name for path in ACTIVE}
    found = []
    for name, files in groups.items():
        if name in active:
            continue
        try:
            found.append((max(f.stat(follow_symlinks=False).st_mtime for f in files), files))
        except FileNotFoundError:
            continue
    return sorted(found, key=lambda leftover: leftover[0])


def _remove_files(files: list[os.DirEntry[str]]) -> int:
    for f in files:
        Path(f.path).unlink(missing_ok=True)
    return len(files)


def remove_stale_partials(blobs_root: Path, older_than: float = 3600.0) -> int:
    """Delete downloads untouched for `older_than` seconds; younger ones stay resumable.

    A download is judged by the newest of its files, and one running in this process is
    never touched. Returns how many files were removed.
    """
    cutoff = time.time() - older_than
    return sum(_remove_files(files) for newest, files in _leftovers(blobs_root)
               if newest < cutoff)


def keep_recent_partials(blobs_root: Path, keep: int = MAX_LEFTOVERS) -> int:
    """Delete all but the `keep` most recently touched interrupted downloads, so that a
    registry that stalls each of many blobs cannot pile up partial files; returns how
    many files were removed."""
    leftovers = _leftovers(blobs_root)
    return sum(_remove_files(files) for _, files in leftovers[:max(0, len(leftovers) - keep)])
