"""`verify`: hash stored models' blobs against their digests, and repair from a registry.

Ollama has no such command. Pasture's runs in the server (`POST /api/verify`, progress
streamed like a pull's) rather than in the CLI against the directory, for the reasons the
rest of the CLI goes through the API: the server may run as another user or on another
machine, and repairs reuse its pull machinery (authentication, resumable verified
downloads, one download per digest shared with concurrent pulls).

Hashing reads every byte, minutes for a large model, so it happens only on request. What
is cheap is checked on every use instead (`check_blobs`): a blob missing or of another
size than its manifest says, as a truncated copy or an interrupted manual restore leaves.
A flipped byte keeps the size; only a verify finds it.

A repair fetches each damaged blob from the registry the model's name points at, only if
that registry's manifest for the tag still lists the blob (so a model created locally
under a name that exists remotely is never replaced by someone else's). The download
lands beside the blob and replaces it only once verified, so no removal is needed first
and a failed repair leaves the model no worse.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from pasture.api.ollama import BlobState, ModelCheck, VerifyResponse
from pasture.digests import hash_file
from pasture.errors import ModelNotFoundError, NotFoundError, PastureError
from pasture.store.local import Store
from pasture.store.manifests import InvalidManifestError, Layer, Manifest
from pasture.store.names import ModelName

_PROGRESS_INTERVAL = 0.1  # seconds between progress lines while a blob is hashed


class DamagedModelError(PastureError):
    """A model's blob is missing or has the wrong size: the store, not the request, is at
    fault (500), and the message says how to repair it."""

    def __init__(self, name: str, digest: str, problem: str) -> None:
        super().__init__(f"model '{name}' is damaged: blob {digest[7:19]} {problem}; "
                         f"run 'pasture verify --repair {name}'")


def check_blobs(store: Store, name: ModelName, manifest: Manifest) -> None:
    """DamagedModelError unless every blob of `manifest` is there with its size (a few
    stat calls: cheap enough for every request that uses the model)."""
    for layer in [*manifest.layers, manifest.config]:
        found = store.blobs.lstat(layer.digest)  # a link is refused, never followed
        if found is None:
            raise DamagedModelError(name.display, layer.digest, "is missing")
        size = found.st_size
        if size != layer.size:
            raise DamagedModelError(name.display, layer.digest,
                                    f"has {size} bytes instead of {layer.size}")


async def verify_models(store: Store, models: Sequence[str] = (), *,
                        repair: bool = False, insecure: bool = False
                        ) -> AsyncIterator[VerifyResponse]:
    """Check `models` (default: every model), yielding progress, then one last line whose
    `models` holds each model's ModelCheck; with `repair`, damaged blobs are fetched again.

    >>> async for line in verify_models(store, ["smollm2"]): ...
    """
    names = [ModelName.parse(model) for model in models]  # a bad name is a 400, and
    for model, name in zip(models, names, strict=True):  # an unknown model a 404, at once
        if not await asyncio.to_thread(store.manifests.exists, name):
            raise ModelNotFoundError(model)
    if not names:
        names = sorted(await asyncio.to_thread(store.manifests.list),
                       key=lambda n: n.display)
    states: dict[str, BlobState | None] = {}  # by digest: each blob is hashed once
    checks = []
    for name in names:
        try:
            manifest = await asyncio.to_thread(store.manifests.read, name)
        except InvalidManifestError:
            checks.append(ModelCheck(model=name.display, state="corrupt",
                                     note="its manifest is unreadable: pull it again"))
            continue
        for layer in [*manifest.layers, manifest.config]:
            if layer.digest not in states:
                async for line in _check_blob(store, layer, states):
                    yield line
        damaged = {layer.digest: state for layer in [*manifest.layers, manifest.config]
                   if (state := states[layer.digest]) is not None}
        check = ModelCheck(model=name.display, damaged=damaged or None,
                           state="missing" if "missing" in damaged.values()
                           else "corrupt" if damaged else "ok")
        if damaged and repair:
            async for line in _repair(store, name, check, insecure):
                yield line
            if check.state == "repaired":
                states.update(dict.fromkeys(damaged))
        checks.append(check)
    healthy = all(check.state in ("ok", "repaired") for check in checks)
    yield VerifyResponse(status="success" if healthy else "damaged", models=checks)


async def _check_blob(store: Store, layer: Layer, states: dict[str, BlobState | None]
                      ) -> AsyncIterator[VerifyResponse]:
    """Hash one blob (after a size check that spares hashing a truncated one), yielding
    progress, and record its state in `states` (None: intact)."""
    path = store.blobs.path(layer.digest)
    found = await asyncio.to_thread(store.blobs.lstat, layer.digest)
    if found is None:
        states[layer.digest] = "missing"
        return
    size = found.st_size
    if size != layer.size:
        states[layer.digest] = "corrupt"
        return
    status = f"verifying {layer.digest[7:19]}"
    hashed = 0
    stop = threading.Event()

    def count(chunk: int) -> None:
        nonlocal hashed
        if stop.is_set():  # nobody waits for this hash any more: stop reading
            raise InterruptedError
        hashed += chunk

    task = asyncio.ensure_future(asyncio.to_thread(hash_file, path, count))
    try:
        while not (await asyncio.wait({task}, timeout=_PROGRESS_INTERVAL))[0]:
            yield VerifyResponse(status=status, digest=layer.digest, total=size,
                                 completed=hashed)
        try:
            intact = task.result() == layer.digest
        except FileNotFoundError:  # deleted while being hashed
            states[layer.digest] = "missing"
            return
    finally:
        if not task.done():  # the consumer left: end the hashing, discard its outcome
            stop.set()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
    states[layer.digest] = None if intact else "corrupt"
    yield VerifyResponse(status=status, digest=layer.digest, total=size, completed=size)


async def _repair(store: Store, name: ModelName, check: ModelCheck, insecure: bool
                  ) -> AsyncIterator[VerifyResponse]:
    """Fetch `check.damaged` again from the model's registry, yielding pull progress;
    sets `check.state` to `repaired`, or `check.note` to why it could not be."""
    assert check.damaged
    # The registry client loads httpx: imported on a repair, not when the server starts.
    from pasture.store.registry.client import RegistryClient
    from pasture.store.registry.download import download_blob
    from pasture.store.registry.pull import fetch_manifest

    try:
        async with RegistryClient(name, insecure=insecure) as client:
            _, remote = await fetch_manifest(client, name.tag)
            layers = {layer.digest: layer for layer in [*remote.layers, remote.config]}
            if any(digest not in layers for digest in check.damaged):
                check.note = (f"cannot repair: {name.host} has another version of this "
                              "model; pull it again to replace it")
                return
            for digest in check.damaged:
                blob = store.blobs.path(digest)
                async with aclosing(download_blob(client, blob, digest,
                                                  layers[digest].size)) as progress:
                    async for line in progress:
                        yield VerifyResponse(**line.model_dump())
    except NotFoundError:
        check.note = f"cannot repair: not on {name.host} (created locally?)"
        return
    except PastureError as exc:  # unreachable, refused, disk full: the model's own verdict
        check.note = f"cannot repair: {exc.message}"
        return
    check.state = "repaired"
