"""`create --quantize`: a model's F16, BF16 or F32 weights quantized to one of Ollama's levels.

Ollama accepts the levels of its `fs/ggml.ParseFileType` and refuses other input with its
own messages (`server/create.go`); both are kept here word for word. The work is
llama.cpp's own quantizer (`pasture.engines.quantizer`), in a child process, and the
result is stored as a content-addressed blob like any upload. The weights may be an
upload, so their header, and the output's (whose metadata is copied from it), are read
`isolated`, as create reads uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pasture import gguf
from pasture.api.ollama import ProgressResponse
from pasture.engines import quantizer
from pasture.errors import BadRequestError
from pasture.isolated import isolated
from pasture.runner import watchdog
from pasture.store import manifests as mf
from pasture.store.blobs import disk_full_is_507
from pasture.store.local import Store

# Ollama's names for the levels it accepts, and llama.cpp's file type for each.
LEVELS = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K_S": 14, "Q4_K_M": 15, "Q4_K": 15, "BF16": 32}
# Listed in Ollama's order in its refusal (BF16 is accepted but not listed there).
_LISTED = ("F32", "F16", "Q4_K_S", "Q4_K_M", "Q8_0")
QUANTIZABLE = ("F16", "BF16", "F32")
PROGRESS_DIGEST = "0000000000000000000"  # what Ollama's quantize progress lines carry
# How long reading a header's file type may take (a real header takes well under a second).
PARSE_SECONDS = 60


@dataclass(frozen=True)
class QuantizeSettings:
    """Where the quantizer is built and what the child may use."""

    cache: Path  # the engines directory: the quantizer library is built below it
    threads: int  # 0: every core
    memory_limit: int | None  # bytes of anonymous memory; None: no cap


def parse_level(level: str) -> str:
    """Ollama's canonical name for a requested level (case-insensitive), else its 400."""
    name = level.upper()
    if name not in LEVELS:
        raise BadRequestError(f"unsupported quantization type {name} - supported types are "
                              + ", ".join(_LISTED))
    return "Q4_K_M" if name == "Q4_K" else name


async def quantize_layer(store: Store, layer: mf.Layer, level: str, settings: QuantizeSettings
                         ) -> AsyncIterator[ProgressResponse | mf.Layer]:
    """Progress of quantizing model `layer` to `level` (from `parse_level`), then the new
    layer; nothing but that layer when the weights are at that level already."""
    source = store.blobs.path(layer.digest)
    current = await isolated(read_file_type, source, timeout=PARSE_SECONDS) or "unknown"
    if current == level:
        yield layer
        return
    if current not in QUANTIZABLE:
        raise BadRequestError("quantization is only supported for F16, BF16 and F32 models")
    if not quantizer.library_path(settings.cache).is_file():
        yield ProgressResponse(status="building llama.cpp's quantizer (once)")
    library = await asyncio.to_thread(quantizer.build, settings.cache)
    status = f"quantizing {current} model to {level}"
    yield ProgressResponse(status=status, digest=PROGRESS_DIGEST, total=layer.size, completed=0)
    target = store.blobs.new_temp_path()
    # F16 to F32 doubles the size at most; anything past that is a hostile file
    steps = quantizer.quantize(library, source, target, LEVELS[level], threads=settings.threads,
                               max_output=2 * layer.size + (1 << 20),
                               memory_limit=settings.memory_limit)
    try:
        shown = 0
        async with contextlib.aclosing(steps):  # leaving early kills the child
            async for done, total in steps:
                percent = done * 100 // max(total, 1)
                if percent > shown:  # one line per percent, not one per tensor
                    shown = percent
                    yield ProgressResponse(status=status, digest=PROGRESS_DIGEST,
                                           total=layer.size,
                                           completed=layer.size * done // max(total, 1))
        yield ProgressResponse(status="verifying conversion")
        made = await isolated(read_file_type, target, timeout=PARSE_SECONDS)
        if made != level:
            raise BadRequestError(f"the quantized model is {made}, not {level}")
        with disk_full_is_507():
            digest = await asyncio.to_thread(store.blobs.adopt, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # left only if quantizing failed or was cancelled
    size = await asyncio.to_thread(store.blobs.size, digest)
    yield mf.Layer(mediaType=layer.mediaType, digest=digest, size=size)


def read_file_type(path: Path) -> str | None:
    """The level a GGUF's header gives its weights (parses the header: run it `isolated`)."""
    return gguf.read_gguf(path).file_type


def settings_for(engines_dir: Path, num_threads: int, memory_setting: int | None
                 ) -> QuantizeSettings:
    """The quantizer's limits from the server's settings: its threads, and the runners'
    memory cap (PASTURE_RUNNER_MEMORY_LIMIT, by default half the machine's RAM)."""
    return QuantizeSettings(engines_dir, num_threads,
                            watchdog.memory_limit(memory_setting, 0))
