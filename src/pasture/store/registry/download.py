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
import errno
import logging
import os
import re
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx

from pasture.api.ollama import ProgressResponse
from pasture.digests import hash_file
from pasture.errors import DigestMismatchError, PastureError
from pasture.store.blobs import fsync_dir
from pasture.store.registry.client import RegistryClient
from pasture.store.registry.errors import (
    DiskFullError,
    RegistryError,
    RegistryUnreachableError,
    UnsafeRegistryError,
)
from pasture.store.registry.partials import (
    ACTIVE,
    MAX_LEFTOVERS,
    Part,
    keep_recent_partials,
    load_parts,
    partial_path,
    plan_parts,
    remove_partial,
    save_part,
)
from pasture.store.registry.traffic import TRAFFIC

log = logging.getLogger(__name__)

_FLUSH_SIZE = 1 << 20  # bytes gathered before each write to disk
_SAVE_INTERVAL = 0.5  # seconds between saves of a part's progress
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


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
            ACTIVE.pop(self.blob, None)
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


async def download_blob(client: RegistryClient, blob: Path, digest: str, size: int, *,
                        interval: float = 0.1) -> AsyncGenerator[ProgressResponse, None]:
    """Fetch `digest` to `blob`, yielding `pulling <digest12>` progress every `interval` s.

    Joins a download of the same blob already running; the download is cancelled (its
    progress kept on disk) only when no pull is watching it any more.
    """
    download = ACTIVE.get(blob)
    if download is None:
        download = BlobDownload(client.clone(), blob, digest, size)
        ACTIVE[blob] = download
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
