"""Prompt caches that survive a reload: each slot's KV state, kept on disk between loads.

A runner that is unloaded (keep_alive, eviction, shutdown) saves what its slots hold
through llama-server's slot save (`POST /slots/N?action=save`), and the next runner with
the same model and KV-shaping options restores it before serving, so a request sharing
that prefix skips its prefill (1,000 tokens: seconds on a CPU). The engine then matches
prefixes as it does for any cached prompt.

Files live in `<models>/prompt-cache/` as `<key>-slot-N.bin`, where the key hashes the
model file, the options that shape its KV cache and the engine build. Each file has a
`.json` record beside it with its SHA-256, size and key: a file whose record is missing,
foreign or does not match is removed, never handed to the engine. The directory is kept
under `PASTURE_PROMPT_CACHE_SIZE` bytes, least recently used first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasture.runner.base import LoadSpec

log = logging.getLogger(__name__)

FORMAT = 1  # of the JSON records; a record of another format is foreign
# A slot holding fewer tokens is not worth a file: its prefill takes well under a second.
MIN_TOKENS = 256
# LoadSpec fields that do not change what a KV cache holds (threads, placement, slots,
# draftless speculation).
_IRRELEVANT = frozenset({"num_thread", "num_parallel", "num_gpu", "use_mmap", "num_batch",
                         "speculative"})

_STALE = 3600.0  # seconds after which a partial file or a lone record is debris

Post = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class PromptCache:
    """Where saved prompt caches live (the engine's `slot_save_path`) and how much disk
    they may take (bytes)."""

    root: Path
    limit: int

    async def restore(self, key: str, slots: int, post: Post) -> int:
        """Load each slot's saved state for `key` into a fresh runner; the tokens
        restored. `post(path, body)` calls the runner's engine. A file that fails any
        check, or that the engine refuses, is removed."""
        restored = 0
        for slot in range(slots):
            name = f"{key}-slot-{slot}.bin"
            if not await asyncio.to_thread(_verified, self.root, name, key):
                continue
            try:
                reply = await post(f"/slots/{slot}?action=restore", {"filename": name})
            except Exception as exc:  # noqa: BLE001 - the engine refused the file
                log.warning("prompt cache %s refused by the engine (%s): removed",
                            self.root / name, exc)
                _remove(self.root, name)
                continue
            os.utime(self.root / name)  # recently used: evicted last
            restored += int(reply.get("n_restored", 0))
        return restored

    async def save(self, key: str, slots: int, post: Post) -> int:
        """Save each slot of a runner about to stop; the tokens kept."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        kept = 0
        for slot in range(slots):
            partial = f"{key}-slot-{slot}.{secrets.token_hex(4)}.partial"
            reply = await post(f"/slots/{slot}?action=save", {"filename": partial})
            tokens = int(reply.get("n_saved", 0))
            if tokens < MIN_TOKENS:
                _remove(self.root, partial)
                continue
            await asyncio.to_thread(_seal, self.root, partial, f"{key}-slot-{slot}.bin",
                                    key, tokens)
            kept += tokens
        await asyncio.to_thread(self.trim)
        return kept

    def trim(self) -> None:
        """Remove the least recently used files until all fit the size limit, and what
        is not a sealed cache file (leftover partial files, lone records or files)."""
        files = []
        now = time.time()
        for path in _listdir(self.root):
            try:
                stat = path.stat()
                if path.suffix == ".bin" and path.with_suffix(".json").exists():
                    files.append((stat.st_mtime, stat.st_size, path))
                elif path.suffix == ".bin" or now - stat.st_mtime > _STALE:
                    path.unlink(missing_ok=True)  # a save still being written is spared
            except OSError:  # removed meanwhile (another runner's save or restore)
                continue
        used = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if used <= self.limit:
                break
            used -= size
            _remove(self.root, path.name)


def cache_key(spec: LoadSpec, engine: str) -> str:
    """A hex digest naming what a saved KV state is valid for: the model file (its path,
    size and modification time: a blob's path names its digest), the adapters, the
    context and cache options that shape the state, and the engine build."""
    fields = {name: value for name, value in spec.to_json().items() if name not in _IRRELEVANT}
    stat = os.stat(spec.model_path)
    identity = {"spec": fields, "engine": engine, "model": [stat.st_size, stat.st_mtime_ns]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _seal(folder: Path, partial: str, name: str, key: str, tokens: int) -> None:
    """Record a saved file's checksum, then put it in place (the record first: a file
    without its record is never trusted)."""
    path = folder / partial
    record = {"format": FORMAT, "key": key, "sha256": _sha256(path),
              "size": path.stat().st_size, "tokens": tokens}
    record_path = folder / (name.removesuffix(".bin") + ".json")
    temporary = record_path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(record))
    os.replace(temporary, record_path)
    os.replace(path, folder / name)


def _verified(folder: Path, name: str, key: str) -> bool:
    """Whether `folder/name` is a file this cache saved for `key`, unchanged since; a
    file that is not is removed (with its record)."""
    path = folder / name
    if not path.exists():
        _remove(folder, name)  # a record left alone
        return False
    try:
        record = json.loads((folder / (name.removesuffix(".bin") + ".json")).read_text())
        good = (isinstance(record, dict) and record.get("format") == FORMAT
                and record.get("key") == key and record.get("size") == path.stat().st_size
                and record.get("sha256") == _sha256(path))
    except (OSError, ValueError):
        good = False
    if not good:
        log.warning("prompt cache %s is corrupt or not ours: removed", path)
        _remove(folder, name)
    return good


def _remove(folder: Path, name: str) -> None:
    """A cache file and its record."""
    (folder / name).unlink(missing_ok=True)
    if name.endswith(".bin"):
        (folder / (name.removesuffix(".bin") + ".json")).unlink(missing_ok=True)


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []
