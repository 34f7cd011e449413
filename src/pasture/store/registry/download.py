"""Blob downloads: parallel byte ranges, resumable after a crash, verified before use.

A blob is fetched into `blobs/sha256-<hex>-partial` and only renamed onto its final name
once the whole file hashes to its digest, so a crash can never leave an unverified blob
that a later pull would trust (a flaw in Ollama's order). The blob is cut in parts, each
fetched with a `Range` request; each part's progress is kept next to the file in
`sha256-<hex>-partial-<N>` as Ollama writes it (`{"N","Offset","Size","Completed"}`), so
a pull killed at any point resumes with ranges from where the bytes on disk end, and
Ollama and Pasture can resume each other's downloads. Several pulls of one digest in this
process share one download.

A registry is trusted with nothing it has not sent: the partial file grows only with the
bytes received (no preallocation to the declared size, which a hostile manifest picks), a
download that fails for good (the blob is missing, encoded, the wrong range, the wrong
digest) deletes its partial file at once, and only the `MAX_LEFTOVERS` most recent
interrupted downloads are kept for resuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

import httpx

from pasture.api.ollama import ProgressResponse
from pasture.digests import hash_file
from pasture.errors import DigestMismatchError, PastureError
from pasture.store.blobs import TEMP_PREFIX, fsync_dir
from pasture.store.registry.client import RegistryClient
from pasture.store.registry.errors import (
    DiskFullError,
    RegistryError,
    RegistryUnreachableError,
    UnsafeRegistryError,
)
from pasture.store.registry.traffic import TRAFFIC

log = logging.getLogger(__name__)

_FLUSH_SIZE = 1 << 20  # bytes gathered before each write to disk
_SAVE_INTERVAL = 0.5  # seconds between saves of a part's progress
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_PARTIAL_RE = re.compile(r"(sha256-[0-9a-f]{64})-partial(?:-(\d+))?")
# Interrupted downloads kept for resuming; older ones are deleted when a new one starts.
MAX_LEFTOVERS = 4


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
    active = {path.name for path in _ACTIVE}
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


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class BlobDownload:
    """One blob being fetched; runs as a task that every interested pull watches."""

    def __init__(self, client: RegistryClient, blob: Path, digest: str, size: int) -> None:
        self.client = client  # owned: closed when the download ends
        self.blob = blob
        self.digest = digest
        self.total = size
        self.completed = 0
        self.watchers = 0
        self.task: asyncio.Task[None] | None = None
        self._saved_at: dict[int, float] = {}

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"download {self.digest[7:19]}")

    async def _run(self) -> None:
        try:
            await self._download()
        except (RegistryUnreachableError, asyncio.CancelledError):
            raise  # the network or the client went away: kept for a resume
        except PastureError:  # the registry's answer is unusable: nothing to resume
            await asyncio.to_thread(remove_partial, self.blob)
            raise
        except OSError as exc:  # reported without the path, which is the server's business
            if exc.errno == errno.ENOSPC:
                raise DiskFullError(self.digest) from None
            raise PastureError(f"could not store blob {self.digest[7:19]}: "
                               f"{os.strerror(exc.errno or errno.EIO)}") from None
        finally:
            _ACTIVE.pop(self.blob, None)
            await self.client.aclose()

    async def _download(self) -> None:
        opts = self.client.options
        self.blob.parent.mkdir(parents=True, exist_ok=True)
        parts = await asyncio.to_thread(load_parts, self.blob, self.total)
        if parts is None:
            await asyncio.to_thread(remove_partial, self.blob)
            await asyncio.to_thread(keep_recent_partials, self.blob.parent, MAX_LEFTOVERS - 1)
            parts = plan_parts(self.total, opts.parts_for(self.total))
        else:
            log.info("resuming %s from %d of %d bytes", self.digest[7:19],
                     sum(p.completed for p in parts), self.total)
        self.completed = sum(p.completed for p in parts)
        fd = os.open(partial_path(self.blob), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            await asyncio.to_thread(self._check_space, fd)
            for part in parts:
                await asyncio.to_thread(save_part, self.blob, part)
            limit = asyncio.Semaphore(max(1, opts.max_parallel))

            async def fetch(part: Part) -> None:
                async with limit:
                    await self._fetch_part(fd, part)

            try:
                async with asyncio.TaskGroup() as group:
                    for part in parts:
                        if part.completed < part.size:
                            group.create_task(fetch(part))
            except BaseExceptionGroup as group_error:
                raise _first_error(group_error) from None
            await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)
        await self._commit()

    def _check_space(self, fd: int) -> None:
        """Report a full disk before any byte is fetched, reserving nothing: the size is the
        registry's claim, and a file sized to it would hold that much disk for a blob the
        registry may never send (the file grows with what arrives instead)."""
        info, space = os.fstat(fd), os.fstatvfs(fd)
        if self.total - info.st_blocks * 512 > space.f_bavail * space.f_frsize:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    async def _commit(self) -> None:
        """Verify the whole file, then give it its final name (or delete it)."""
        partial = partial_path(self.blob)
        got = await asyncio.to_thread(hash_file, partial)
        if got != self.digest:
            await asyncio.to_thread(remove_partial, self.blob)
            raise DigestMismatchError(
                f"digest mismatch, file must be downloaded again: want {self.digest}, got {got}")
        os.replace(partial, self.blob)
        await asyncio.to_thread(fsync_dir, self.blob.parent)
        await asyncio.to_thread(remove_partial, self.blob)

    async def _fetch_part(self, fd: int, part: Part) -> None:
        """Fetch what is missing of `part`, retrying network failures with backoff."""
        failures = 0
        try:
            while part.completed < part.size:
                before, error = part.completed, None
                try:
                    await self._stream_range(fd, part)
                except (RegistryUnreachableError, httpx.TransportError) as exc:
                    error = exc
                if part.completed >= part.size:
                    break
                # A connection that made progress resets the count, as Ollama's stall retry.
                failures = 0 if part.completed > before else failures + 1
                if failures > self.client.options.retries:
                    why = _describe(error) if error else "the registry ended the body early"
                    raise RegistryUnreachableError(
                        f"download of {self.digest[7:19]} failed: {why}")
                await asyncio.sleep(0.25 * 2**failures if failures else 0)
        finally:
            save_part(self.blob, part)

    async def _stream_range(self, fd: int, part: Part) -> None:
        start, last = part.offset + part.completed, part.end - 1
        headers = {"Range": f"bytes={start}-{last}", "Accept-Encoding": "identity"}
        async with self.client.request("GET", self.client.url("blobs", self.digest),
                                       headers=headers) as response:
            skip = self._check_range_response(response, start, last)
            write_at, buffer = start, bytearray()
            flushed_at = time.monotonic()
            async for chunk in response.aiter_raw():
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                buffer += chunk[: part.end - write_at - len(buffer)]
                # Large writes for speed, but at least every _SAVE_INTERVAL on a slow link,
                # so a kill loses little.
                now = time.monotonic()
                if len(buffer) >= _FLUSH_SIZE or write_at + len(buffer) >= part.end or \
                        (buffer and now - flushed_at >= _SAVE_INTERVAL):
                    await self._write(fd, part, bytes(buffer))
                    write_at, flushed_at = write_at + len(buffer), now
                    buffer.clear()
                    if write_at >= part.end:
                        break
            if buffer:
                await self._write(fd, part, bytes(buffer))

    def _check_range_response(self, response: httpx.Response, start: int, last: int) -> int:
        """Validate the answer to a Range request; returns how many leading bytes to skip."""
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("", "identity"):
            raise UnsafeRegistryError(
                f"registry sent blob {self.digest[7:19]} with content encoding {encoding!r}")
        if response.status_code == 206:
            match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("content-range", ""))
            if not match or int(match.group(1)) != start or \
                    not start <= int(match.group(2)) <= last:
                raise RegistryError(
                    f"registry answered the wrong byte range for blob {self.digest[7:19]}")
            return 0
        if response.status_code == 200:  # Range ignored: the whole blob comes
            return start
        if response.status_code == 404:
            raise RegistryError(f"blob {self.digest[7:19]} is not on the registry")
        if response.status_code == 416:
            raise RegistryError(f"registry refused the byte range for blob {self.digest[7:19]}")
        raise RegistryError(
            f"download of {self.digest[7:19]} failed: registry answered {response.status_code}")

    async def _write(self, fd: int, part: Part, data: bytes) -> None:
        await asyncio.to_thread(_pwrite_all, fd, data, part.offset + part.completed)
        part.completed += len(data)
        self.completed += len(data)
        TRAFFIC.pulled += len(data)
        now = time.monotonic()
        if now - self._saved_at.get(part.n, 0.0) >= _SAVE_INTERVAL:
            self._saved_at[part.n] = now
            save_part(self.blob, part)


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The exception to report from a group of failed parts (innermost first one)."""
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, RegistryError) else type(exc).__name__


# Downloads running in this process, by final blob path: one per digest.
_ACTIVE: dict[Path, BlobDownload] = {}


async def download_blob(client: RegistryClient, blob: Path, digest: str, size: int, *,
                        interval: float = 0.1) -> AsyncGenerator[ProgressResponse, None]:
    """Fetch `digest` to `blob`, yielding `pulling <digest12>` progress every `interval` s.

    Joins a download of the same blob already running; the download is cancelled (its
    progress kept on disk) only when no pull is watching it any more.
    """
    download = _ACTIVE.get(blob)
    if download is None:
        download = BlobDownload(client.clone(), blob, digest, size)
        _ACTIVE[blob] = download
        download.start()
    assert download.task is not None
    download.watchers += 1
    status = f"pulling {digest[7:19]}"
    try:
        reported = -1
        while True:
            done, _ = await asyncio.wait({download.task}, timeout=interval)
            if done:
                break
            if download.completed != reported:
                reported = download.completed
                yield ProgressResponse(status=status, digest=digest, total=download.total,
                                       completed=reported)
        download.task.result()
        yield ProgressResponse(status=status, digest=digest, total=size, completed=size)
    finally:
        download.watchers -= 1
        if download.watchers == 0 and not download.task.done():
            download.task.cancel()
