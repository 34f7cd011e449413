"""`create` from a Safetensors model directory or a PEFT LoRA adapter: converted to GGUF.

The client uploads every file of the directory as a blob and sends their names in
`files` (or `adapters`), as Ollama's client does. The names and sizes are checked and
every Safetensors header (and a sharded model's index) is parsed (`isolated`,
`store.safetensors`) before anything else reads them, so a bad upload is a 400 before
any output. Then the blobs are linked under their names into a scratch folder in the
store and llama.cpp's converter (`pasture.engines.converter`) writes the GGUF, stored
as a content-addressed blob; the rest of create goes on as for an uploaded GGUF
(quantizing included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pasture.api.ollama import ProgressResponse
from pasture.engines import converter
from pasture.errors import BadRequestError
from pasture.isolated import isolated
from pasture.store.blobs import disk_full_is_507
from pasture.store.local import Store
from pasture.store.quantize import PROGRESS_DIGEST, QuantizeSettings
from pasture.store.safetensors import (
    INDEX_NAME,
    MAX_SIDE_FILE,
    check_header,
    check_index,
    check_names,
)

PARSE_SECONDS = 60  # one header (the largest real ones parse in well under a second)
CONVERT_SECONDS = 4 * 3600  # a 70B model converts in well under an hour on a server
_OUTPUT_SLACK = 64 << 20  # the GGUF's own header and tokenizer, beyond the weights


@dataclass(frozen=True)
class Upload:
    """A checked upload: its files (name: digest), tensor count and weights' bytes."""

    kind: str  # "model" or "lora"
    files: dict[str, str]
    tensors: int
    weights_size: int


async def check_upload(store: Store, files: dict[str, str], kind: str) -> Upload:
    """The upload `files` (names already checked, blobs present) once it is known to be
    a directory the converter takes; 400 naming what is wrong otherwise."""
    weights = check_names(files)
    if kind == "model" and "config.json" not in files:
        raise BadRequestError("a Safetensors model directory needs its config.json")
    if kind == "model" and not any(PurePosixPath(name).name.startswith("model")
                                   for name in weights):
        raise BadRequestError("no model weights: a Safetensors model's weights are named "
                              "model*.safetensors")
    if kind == "lora" and not {"adapter_config.json", "adapter_model.safetensors"} <= set(files):
        raise BadRequestError("a PEFT LoRA adapter directory needs adapter_config.json and "
                              "adapter_model.safetensors")
    weights_size = 0
    for name, digest in files.items():
        size = await asyncio.to_thread(store.blobs.size, digest)
        if name in weights:
            weights_size += size
        elif size > MAX_SIDE_FILE:
            raise BadRequestError(f"{name}: {size} bytes is too large for a model's "
                                  f"configuration or tokenizer file (at most {MAX_SIDE_FILE})")
    tensors = 0
    for name in weights:  # in turn: a hostile header can take seconds and memory
        tensors += await isolated(check_header, store.blobs.path(files[name]), name,
                                  timeout=PARSE_SECONDS)
    if tensors == 0:
        raise BadRequestError("the Safetensors files hold no tensors")
    if INDEX_NAME in files:  # a sharded model's map of which file holds which tensor
        await isolated(check_index, store.blobs.path(files[INDEX_NAME]), INDEX_NAME, weights,
                       timeout=PARSE_SECONDS)
    return Upload(kind, dict(files), tensors, weights_size)


async def convert_upload(store: Store, upload: Upload, settings: QuantizeSettings,
                         base: Path | None = None) -> AsyncIterator[ProgressResponse | str]:
    """Progress of converting `upload` to GGUF (a LoRA for the GGUF model `base`), then
    the digest of the stored GGUF."""
    if not converter.source_path(settings.cache).is_dir():
        yield ProgressResponse(status="fetching llama.cpp's converters (once)")
    converters = await asyncio.to_thread(converter.prepare, settings.cache,
                                         lambda *_: None)
    # F32 weights become F16; F16 and BF16 stay their size: twice the weights is a
    # hostile upload, stopped by the child's file size cap.
    max_output = 2 * upload.weights_size + _OUTPUT_SLACK
    await asyncio.to_thread(store.blobs.check_space, upload.weights_size + _OUTPUT_SLACK)
    status = "converting adapter" if upload.kind == "lora" else "converting model"
    total = upload.weights_size
    yield ProgressResponse(status=status, digest=PROGRESS_DIGEST, total=total, completed=0)
    target = store.blobs.new_temp_path()
    # In the store, not the system's temp folder: what a killed server leaves there is
    # removed by the start-up prune.
    scratch = await asyncio.to_thread(store.blobs.new_temp_dir)
    # A fixed folder name: the converter names the model after it, and the same upload
    # then converts to the same bytes (the same blob) every time.
    folder = scratch / upload.kind
    try:
        await asyncio.to_thread(_stage, store, upload.files, folder)
        steps = converter.convert(converters, upload.kind, folder, target, base=base,
                                  max_output=max_output, memory_limit=settings.memory_limit,
                                  timeout=CONVERT_SECONDS)
        shown = 0
        async with contextlib.aclosing(steps):  # leaving early kills the child
            async for written in steps:
                percent = min(written, upload.tensors) * 100 // upload.tensors
                if percent > shown:  # one line per percent, not one per tensor
                    shown = percent
                    yield ProgressResponse(status=status, digest=PROGRESS_DIGEST, total=total,
                                           completed=total * percent // 100)
        if not target.is_file():
            raise BadRequestError("llama.cpp's converter wrote no GGUF file")
        with disk_full_is_507():
            digest = await asyncio.to_thread(store.blobs.adopt, target)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # left only if converting failed or was cancelled
    yield digest


def _stage(store: Store, files: dict[str, str], scratch: Path) -> None:
    """Each blob linked (symbolically: no copy) under its file name below `scratch`."""
    for name, digest in files.items():
        path = scratch / PurePosixPath(name.replace("\\", "/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(store.blobs.path(digest))
