"""Images in requests: where they enter, every API family checks them the same way.

Native requests carry `images` as base64; OpenAI's `image_url` parts and Anthropic's
`image` blocks are unwrapped here to the same base64 payload, so that the native
message shape (`{"role", "content", "images"}`) is what every layer passes on. Each
image is then checked once, before the model runs: malformed base64 is a 400 (one
crashed Ollama, CVE-2025-15514) and an image over `PASTURE_MAX_IMAGE_BYTES` decoded a
413, its size known from the base64 length before anything is decoded. Pasture works
offline, so an image URL is refused rather than fetched. How the engine takes images
(WebP transcoded to PNG) is the runner's business: `runner.media`.
"""

from __future__ import annotations

import asyncio
import binascii
import re
from typing import Any

from pasture.errors import BadRequestError, ImageTooLargeError
from pasture.runner.media import unwrapped

# `data:image/png;base64,…`, or `data:;base64,…` (no media type), as Ollama takes them.
_DATA_URI = re.compile(r"data:(?:image/[A-Za-z0-9.+-]+)?;base64,", re.IGNORECASE)

URL_REFUSED = ("image URLs are not supported: Pasture works offline and does not download "
               "images; send the image inline as base64 (a data:image/...;base64, URI)")


def from_url(url: str) -> str:
    """The base64 payload of an OpenAI `image_url`: a data URI or bare base64."""
    if url.startswith(("http://", "https://")):
        raise BadRequestError(URL_REFUSED)
    if url.startswith("data:"):
        prefix = _DATA_URI.match(url)
        if prefix is None:
            raise BadRequestError("invalid image input: expected a base64 data:image/... URI")
        return url[prefix.end():]
    return url


def from_source(source: dict[str, Any] | None) -> str:
    """The base64 payload of an Anthropic image block's `source`."""
    kind = (source or {}).get("type")
    if kind == "url":
        raise BadRequestError(URL_REFUSED)
    if kind != "base64" or not isinstance((source or {}).get("data"), str):
        raise BadRequestError(f"invalid image source type: {kind}. Only base64 images are "
                              "supported.")
    return source["data"]  # type: ignore[index]


def decoded_size(payload: str) -> int:
    """Bytes `payload` decodes to; 400 unless its length can be base64."""
    if len(payload) % 4:
        raise BadRequestError("invalid image input: malformed base64 data")
    return len(payload) // 4 * 3 - (payload.endswith("=") + payload.endswith("=="))


def decode(payload: str, limit: int) -> bytes:
    """An image's bytes: 413 over `limit` (checked before decoding), 400 if not base64."""
    payload = unwrapped(payload)
    size = decoded_size(payload)
    if size == 0:
        raise BadRequestError("invalid image input: the image is empty")
    if size > limit:
        raise ImageTooLargeError(size, limit)
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except ValueError:  # binascii.Error, or characters outside ASCII
        raise BadRequestError("invalid image input: malformed base64 data") from None


async def check(payloads: list[str], limit: int) -> None:
    """Decode every image once (off the event loop: they can be megabytes) to refuse a
    malformed or oversized one before the model is loaded."""
    if payloads:
        await asyncio.to_thread(lambda: [decode(payload, limit) for payload in payloads])
