"""Images as the engine takes them.

llama-server reads base64 without line breaks (Go's decoder, Ollama's, skips them;
llama-server's and Python's strict one stop at them), and its image decoder (stb_image)
reads JPEG, PNG, GIF and BMP but not WebP, so a WebP image is transcoded to PNG on its way
to the engine, as Ollama does (`llamaServerMediaBytes` in its `llm/llama_server.go`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import Sequence

from pasture.errors import BadRequestError

# A WebP file starts `RIFF`, four size bytes, `WEBP`: base64 of `RIFF` is `UklGR`.
_WEBP_BASE64 = "UklGR"
# The largest WebP decoded (RGBA in memory while it becomes PNG); the format's own limit is
# 16383 × 16383, about a gigabyte.
MAX_WEBP_PIXELS = 50_000_000


def unwrapped(payload: str) -> str:
    """Base64 without line breaks."""
    if "\n" in payload or "\r" in payload:
        return payload.replace("\r", "").replace("\n", "")
    return payload


async def for_engine(payloads: Sequence[str]) -> list[str]:
    """The images as the engine takes them: base64 without line breaks, WebP as PNG
    (transcoded off the event loop)."""
    plain = [unwrapped(payload) for payload in payloads]
    if not any(payload.startswith(_WEBP_BASE64) for payload in plain):
        return plain
    return await asyncio.to_thread(lambda: [_png_if_webp(payload) for payload in plain])


def _png_if_webp(payload: str) -> str:
    head = binascii.a2b_base64(payload[:16])
    if not (head.startswith(b"RIFF") and head[8:12] == b"WEBP"):
        return payload
    from PIL import Image, UnidentifiedImageError

    too_large = f"over {MAX_WEBP_PIXELS // 1_000_000} megapixels"
    try:
        with Image.open(io.BytesIO(binascii.a2b_base64(payload)), formats=["WEBP"]) as image:
            width, height = image.size
            if width * height > MAX_WEBP_PIXELS:
                raise BadRequestError(f"invalid image input: a {width}×{height} WebP image is "
                                      + too_large)
            out = io.BytesIO()
            image.save(out, format="PNG")  # the first frame of an animation
    except Image.DecompressionBombError:  # Pillow's own limit, met while opening
        raise BadRequestError(f"invalid image input: a WebP image {too_large}") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadRequestError("invalid image input: the WebP image cannot be decoded") from None
    return base64.b64encode(out.getvalue()).decode()
