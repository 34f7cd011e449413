"""`push`: send a local model's blobs and then its manifest to a registry.

The manifest is sent as the exact bytes stored locally, so the model keeps its ID on the
registry and in every store that pulls it from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

from pasture.api.ollama import ProgressResponse
from pasture.store.local import Store
from pasture.store.manifests import Manifest
from pasture.store.names import ModelName
from pasture.store.registry.client import RegistryClient
from pasture.store.registry.options import TransferOptions
from pasture.store.registry.upload import upload_blob


async def push_model(store: Store, name: ModelName, *, insecure: bool = False,
                     options: TransferOptions | None = None,
                     ) -> AsyncIterator[ProgressResponse]:
    """Push `name`, yielding Ollama's statuses: `retrieving manifest`, `pushing <digest12>`
    (with digest/total/completed), `pushing manifest`, `success`.

    >>> async for status in push_model(store, ModelName.parse("host:5000/me/m:1")): ...
    """
    raw = await asyncio.to_thread(store.manifests.read_bytes, name)  # 404 if unknown
    manifest = Manifest.parse(raw)
    async with RegistryClient(name, insecure=insecure, options=options) as client:
        yield ProgressResponse(status="retrieving manifest")
        for layer in [*manifest.layers, manifest.config]:
            async with aclosing(upload_blob(client, store.blobs, layer)) as progress:
                async for status in progress:
                    yield status
        yield ProgressResponse(status="pushing manifest")
        await client.put_manifest(name.tag, raw)
        yield ProgressResponse(status="success")
