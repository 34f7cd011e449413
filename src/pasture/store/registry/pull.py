"""`pull`: fetch a model's manifest and blobs from a registry into the local store.

The manifest is fetched and validated (size cap, digest grammar, layer count) before any
status is reported, so an unknown model or a hostile manifest is an ordinary HTTP error;
blobs are verified as they land, then the settings layers (template, parameters, ...) and
the config are read back as a load reads them; the manifest is written last, byte for
byte, so the model's ID (the manifest's sha256) is the registry's. As in Ollama, a pull
that replaces a tag's manifest then removes the old blobs nothing else uses, unless
`OLLAMA_NOPRUNE` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

from pasture.api.ollama import ProgressResponse
from pasture.digests import digest_of
from pasture.store.local import Store
from pasture.store.manifests import InvalidManifestError, Manifest
from pasture.store.model import MAX_SETTINGS_LAYER, SETTINGS_LAYERS, check_layers
from pasture.store.names import ModelName
from pasture.store.registry.client import RegistryClient
from pasture.store.registry.download import download_blob
from pasture.store.registry.errors import UnsafeRegistryError
from pasture.store.registry.options import TransferOptions

# Larger than any model blob (a 671B model at 4 bits is about 400 GB): refused up front.
MAX_BLOB_SIZE = 4 << 40


async def pull_model(store: Store, name: ModelName, *, insecure: bool = False,
                     options: TransferOptions | None = None,
                     ) -> AsyncIterator[ProgressResponse]:
    """Pull `name`, yielding Ollama's statuses: `pulling manifest`, `pulling <digest12>`
    (with digest/total/completed), `verifying sha256 digest`, `writing manifest`,
    `removing unused layers` (if an older manifest of the tag had other blobs), `success`.

    >>> async for status in pull_model(store, ModelName.parse("smollm2:135m")): ...
    """
    async with RegistryClient(name, insecure=insecure, options=options) as client:
        # First, as in Ollama: a streamed pull shows it before any registry failure
        yield ProgressResponse(status="pulling manifest")
        raw, manifest = await fetch_manifest(client, name.tag)
        # Held from before the first presence check, so that no other pull collects
        # them while this one counts on them.
        with store.in_use(manifest.digests()):
            for layer in [*manifest.layers, manifest.config]:  # Ollama's order: config last
                blob = store.blobs.path(layer.digest)
                if await asyncio.to_thread(_present, blob, layer.size):
                    yield ProgressResponse(status=f"pulling {layer.digest[7:19]}",
                                           digest=layer.digest, total=layer.size,
                                           completed=layer.size)
                    continue
                # aclosing: a pull that stops early releases its share of the download now.
                async with aclosing(download_blob(client, blob, layer.digest,
                                                  layer.size)) as progress:
                    async for status in progress:
                        yield status

            # Downloads were hashed before they got their names; blobs already here are
            # checked for the size the manifest gives.
            yield ProgressResponse(status="verifying sha256 digest")
            for layer in [*manifest.layers, manifest.config]:
                if not await asyncio.to_thread(_present, store.blobs.path(layer.digest),
                                               layer.size):
                    raise InvalidManifestError(
                        f"blob {layer.digest[7:19]} is missing or has the wrong size")
            # Templates, parameters and the config are read by every listing: one that
            # cannot be read must not be stored, or it would break them for everyone.
            await asyncio.to_thread(check_layers, store, name.display, manifest)

            yield ProgressResponse(status="writing manifest")
            if await asyncio.to_thread(store.replace_manifest, name, raw):
                yield ProgressResponse(status="removing unused layers")
            yield ProgressResponse(status="success")


async def fetch_manifest(client: RegistryClient, tag: str) -> tuple[bytes, Manifest]:
    """The raw manifest for `tag` and its parsed form, refused if it does not match the
    registry's digest or claims blobs too large to plan (also used by `verify --repair`)."""
    raw, claimed = await client.get_manifest(tag)
    manifest = Manifest.parse(raw)
    if claimed and claimed != digest_of(raw):
        raise UnsafeRegistryError("registry sent a manifest that does not match its digest")
    for layer in [*manifest.layers, manifest.config]:
        if layer.size > MAX_BLOB_SIZE:  # would only plan parts and pre-size files forever
            raise UnsafeRegistryError(f"blob {layer.digest[7:19]} claims a size over 4 TiB")
        if layer.mediaType in SETTINGS_LAYERS and layer.size > MAX_SETTINGS_LAYER:
            raise UnsafeRegistryError(f"the {layer.mediaType} layer {layer.digest[7:19]} "
                                      f"is larger than {MAX_SETTINGS_LAYER >> 20} MiB")
    return raw, manifest


def _present(blob: Path, size: int) -> bool:
    """Whether a blob is stored with the expected size (a cheap check of a cache hit)."""
    try:
        return blob.stat().st_size == size
    except FileNotFoundError:
        return False
