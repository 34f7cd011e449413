"""Blob uploads: skip what the registry has, mount what it has elsewhere, else send chunks.

The OCI flow as Ollama drives it: `HEAD` the blob; `POST …/blobs/uploads/` (with
`?mount=<digest>&from=<repo>` when the layer came from another model on that registry,
201 meaning mounted); then `PATCH` each chunk with `Content-Range: <first>-<last>` to the
`Location` the previous answer gave; finally `PUT <location>?digest=<digest>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import httpx

from pasture.api.ollama import ProgressResponse
from pasture.errors import BadRequestError, NotFoundError
from pasture.store.blobs import BlobStore
from pasture.store.manifests import Layer
from pasture.store.names import ModelName
from pasture.store.registry.client import RegistryClient
from pasture.store.registry.errors import RegistryError
from pasture.store.registry.traffic import TRAFFIC

_READ_SIZE = 1 << 20


class _Upload:
    """The state of one blob upload, read by the progress loop while it runs."""

    def __init__(self, client: RegistryClient, blobs: BlobStore, layer: Layer) -> None:
        self.client = client
        self.blobs = blobs
        self.layer = layer
        self.completed = 0

    async def run(self) -> None:
        digest = self.layer.digest
        if await self.client.blob_exists(digest):
            self.completed = self.layer.size
            return
        location = await self._start()
        if location is None:  # mounted from another repository
            self.completed = self.layer.size
            return
        chunk = self.client.options.parts_for(self.layer.size)
        for offset in range(0, self.layer.size, chunk):
            location = await self._patch(location, offset, min(chunk, self.layer.size - offset))
        async with self.client.request("PUT", location, params={"digest": digest},
                                       headers={"Content-Length": "0"}) as response:
            if response.status_code not in (201, 204):
                raise await self.client.fail(response, f"upload of {digest[7:19]}")
        self.completed = self.layer.size

    def _mount_source(self) -> str | None:
        """`namespace/model` of the layer's source on the same registry, if it has one."""
        if not self.layer.from_:
            return None
        try:
            source = ModelName.parse(self.layer.from_)
        except BadRequestError:
            return None
        if source.host.lower() != self.client.host.lower():
            return None
        return f"{source.namespace}/{source.model}"

    async def _start(self) -> httpx.URL | None:
        """Open an upload session; None when the registry mounted the blob instead."""
        source = self._mount_source()
        params = {"mount": self.layer.digest, "from": source} if source else None
        async with self.client.request("POST", self.client.url("blobs", "uploads") + "/",
                                       params=params,
                                       headers={"Content-Length": "0"}) as response:
            if response.status_code == 201 and source:
                return None
            if response.status_code != 202:
                raise await self.client.fail(response, f"upload of {self.layer.digest[7:19]}")
            return self._next_location(response)

    async def _patch(self, location: httpx.URL, offset: int, size: int) -> httpx.URL:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            "Content-Range": f"{offset}-{offset + size - 1}",
        }
        start_completed = self.completed

        async def body() -> AsyncIterator[bytes]:
            self.completed = start_completed  # a retried request starts over
            with await asyncio.to_thread(self.blobs.open, self.layer.digest) as f:
                await asyncio.to_thread(f.seek, offset)
                left = size
                while left:
                    data = await asyncio.to_thread(f.read, min(_READ_SIZE, left))
                    if not data:
                        raise RegistryError(f"blob {self.layer.digest[7:19]} shrank on disk")
                    left -= len(data)
                    self.completed += len(data)
                    TRAFFIC.pushed += len(data)
                    yield data

        async with self.client.request("PATCH", location, headers=headers,
                                       body=body) as response:
            if response.status_code != 202:
                raise await self.client.fail(response, f"upload of {self.layer.digest[7:19]}")
            return self._next_location(response)

    def _next_location(self, response: httpx.Response) -> httpx.URL:
        location = (response.headers.get("docker-upload-location")
                    or response.headers.get("location"))
        if not location:
            raise RegistryError("registry gave no upload location")
        return response.url.join(location)


async def upload_blob(client: RegistryClient, blobs: BlobStore, layer: Layer, *,
                      interval: float = 0.1) -> AsyncGenerator[ProgressResponse, None]:
    """Push one blob, yielding `pushing <digest12>` progress every `interval` seconds; the
    blob is read from the store without following links."""
    try:
        size = await asyncio.to_thread(blobs.size, layer.digest)
    except NotFoundError:
        raise NotFoundError(f"blob {layer.digest[7:19]} of this model is missing") from None
    if size != layer.size:
        raise BadRequestError(f"blob {layer.digest[7:19]} does not have the size in the manifest")
    upload = _Upload(client, blobs, layer)
    task = asyncio.create_task(upload.run())
    status = f"pushing {layer.digest[7:19]}"
    try:
        reported = -1
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                break
            if upload.completed != reported:
                reported = upload.completed
                yield ProgressResponse(status=status, digest=layer.digest, total=layer.size,
                                       completed=reported)
        task.result()
        yield ProgressResponse(status=status, digest=layer.digest, total=layer.size,
                               completed=layer.size)
    finally:
        if not task.done():
            task.cancel()
