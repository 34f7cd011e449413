"""A node's fetch of a blob it lacks, by digest, from the front end's internal endpoint.

Used when a node has neither the blob in its own `PASTURE_MODELS` nor the front end's
path (no shared filesystem). The bytes go to `blobs/.tmp-sha256-<hex>-fetch` and become
`blobs/sha256-<hex>` only once the whole file hashes to the digest; a copy that does not
(the front end's file damaged or altered after its manifest) is deleted, never kept. A
fetch cut off keeps its temp file and the next one resumes from where it ends with a
`Range` request (`clean_temp` removes one left for an hour). Blocking: run in a thread.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from pasture.digests import hash_file
from pasture.errors import RunnerError
from pasture.store.blobs import TEMP_PREFIX, fsync_dir

ATTEMPTS = 3  # tries, each resuming the last, before a fetch is given up
TIMEOUT = httpx.Timeout(30.0)  # seconds of silence from the front end before a try ends
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/\d+")
BLOB_PATH = "/api/cluster/blobs/"  # the front end's route (pasture.server.routes.cluster)


@dataclass(frozen=True)
class BlobSource:
    """Where this cluster's nodes fetch blobs: the front end's URL as they reach it, and
    the key its endpoint asks for (random per server start, handed to agents over Ray)."""

    url: str
    key: str


@dataclass(frozen=True)
class Fetched:
    """What a fetch did, for the front end's log."""

    digest: str
    size: int
    resumed_at: int  # bytes already on the node from an earlier, interrupted fetch


def fetch_blob(source: BlobSource, digest: str, blobs_dir: Path) -> Fetched:
    """Fetch blob `digest` (validated `sha256:<hex>`) into `blobs_dir`, verified."""
    hex_digest = digest.removeprefix("sha256:")
    blobs_dir.mkdir(parents=True, exist_ok=True)
    temp = blobs_dir / f"{TEMP_PREFIX}sha256-{hex_digest}-fetch"
    resumed_at = temp.stat().st_size if temp.exists() else 0
    failure: Exception | None = None
    for _attempt in range(ATTEMPTS):
        try:
            _download(source, digest, temp)
            break
        except httpx.TransportError as exc:  # cut off or unreachable: resume, twice
            failure = exc
    else:
        raise RunnerError(f"could not fetch blob {digest} from the front end at "
                          f"{source.url} ({type(failure).__name__}: {failure}): the nodes "
                          "must reach PASTURE_HOST, or share the models directory")
    got = hash_file(temp)
    if got != digest:
        temp.unlink(missing_ok=True)
        raise RunnerError(f"blob {digest} fetched from the front end does not match its "
                          f"digest (got {got}): refused and deleted; the front end's copy "
                          "is damaged or was altered")
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, blobs_dir / f"sha256-{hex_digest}")
    fsync_dir(blobs_dir)
    return Fetched(digest, os.path.getsize(blobs_dir / f"sha256-{hex_digest}"), resumed_at)


def _download(source: BlobSource, digest: str, temp: Path) -> None:
    """One try: append to `temp` from where it ends (or start over if the front end
    sends the whole blob)."""
    offset = temp.stat().st_size if temp.exists() else 0
    headers = {"Authorization": f"Bearer {source.key}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with httpx.Client(timeout=TIMEOUT) as client, \
            client.stream("GET", source.url + BLOB_PATH + digest, headers=headers) as reply:
        if reply.status_code == 416 and offset:  # more on disk than the blob holds
            temp.unlink()
            raise httpx.TransportError("the interrupted fetch was longer than the blob")
        if reply.status_code not in (200, 206):
            reply.read()
            raise RunnerError(f"the front end at {source.url} refused blob {digest}: "
                              f"{reply.status_code} {reply.text[:200]}")
        start = 0
        if reply.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(reply.headers.get("content-range", ""))
            start = int(match[1]) if match else -1
            if start != offset:
                raise RunnerError(f"the front end answered range {start} for {offset}")
        with open(temp, "r+b" if start else "wb") as f:
            f.seek(start)
            f.truncate()
            for chunk in reply.iter_bytes(_CHUNK):
                f.write(chunk)
