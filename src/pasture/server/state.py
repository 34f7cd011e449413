"""What every route shares: settings, the store and the scheduler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from pasture import options as opts
from pasture.config import Settings
from pasture.durations import parse_keep_alive
from pasture.errors import BadRequestError, ModelNotFoundError
from pasture.runner.base import LoadSpec
from pasture.scheduler import Scheduler
from pasture.store import ModelName, Store
from pasture.store.model import LocalModel, load_local_model
from pasture.store.show import capabilities, model_gguf
from pasture.store.verify import check_blobs

VISION_MIN_CTX = 2048  # Ollama raises a multimodal model's num_ctx to at least this


@dataclass
class ServerState:
    settings: Settings
    store: Store
    scheduler: Scheduler
    _models: dict[str, tuple[tuple[int, int, int], LocalModel]] = field(
        default_factory=dict, repr=False)

    def model(self, name_text: str | None) -> tuple[ModelName, LocalModel]:
        """The local model a request names (400 for a bad name, 404 if absent)."""
        name = ModelName.parse(name_text or "")
        try:
            model = self._local_model(name)
        except ModelNotFoundError:  # Ollama names the model as the request spelled it
            raise ModelNotFoundError(name_text or "") from None
        except OSError:  # a small layer could not be read: name the damaged blob
            check_blobs(self.store, name, self.store.manifests.read(name))
            raise
        check_blobs(self.store, name, model.manifest)  # a clear error, not a failed load
        return name, model

    def _local_model(self, name: ModelName) -> LocalModel:
        """`load_local_model`, remembered while the manifest file is unchanged: every
        inference request resolves its model, and re-reading the manifest and its small
        layers each time was blocking file I/O on the event loop."""
        path = self.store.manifests.path(name)
        try:
            stat = path.stat() if path is not None else None
        except FileNotFoundError:  # deleted a moment ago
            stat = None
        if path is None or stat is None:
            raise ModelNotFoundError(name.display)
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._models.get(name.key)
        if cached is not None and cached[0] == version:
            return cached[1]
        model = load_local_model(self.store, name)
        self._models[name.key] = (version, model)
        return model

    def keep_alive(self, value: float | str | None) -> float:
        """Seconds from a request's keep_alive, or the server default when unset."""
        return self.settings.keep_alive if value is None else parse_keep_alive(value)

    def load_spec(self, model: LocalModel, options: dict[str, Any]) -> LoadSpec:
        """How to start a runner for `model` with merged options."""
        num_ctx = max(4, options.get("num_ctx") or self.settings.context_length)
        if model.projector_path:
            num_ctx = max(num_ctx, VISION_MIN_CTX)
        if model.context_length:  # then no more than the model was trained for
            num_ctx = min(num_ctx, model.context_length)
        num_gpu = options.get("num_gpu", -1)
        num_batch = options.get("num_batch", opts.LOAD["num_batch"].default)
        # Embedding models (the GGUF declares pooling) embed a whole input in one batch and,
        # as in Ollama, get one slot; other models embed with their last token's state.
        # The GGUF read is cached per blob (see `model_capabilities` to do it off-loop).
        embedding_model = model_gguf(model).pooling_type is not None
        draft_n = options.get("draft_num_predict", LoadSpec.draft_num_predict)
        draft = str(model.draft_path) if model.draft_path and draft_n > 0 else None
        return LoadSpec(
            model_path=str(model.model_path),
            num_ctx=num_ctx,
            num_parallel=1 if embedding_model else self.settings.num_parallel,
            num_batch=max(num_batch, num_ctx) if embedding_model else num_batch,
            num_gpu=num_gpu if num_gpu >= 0 else -1,  # -1: the scheduler's placement decides
            num_thread=options.get("num_thread") or self.settings.num_threads,
            use_mmap=options.get("use_mmap"),
            adapters=tuple(str(p) for p in model.adapters),
            draft_model=draft,
            draft_num_predict=draft_n if draft else LoadSpec.draft_num_predict,
            projector=str(model.projector_path) if model.projector_path else None,
            kv_cache_type=self.settings.kv_cache_type,
            flash_attention=self.settings.flash_attention,
            embedding=True,
            pooling=None if embedding_model else "last",
        )

    async def model_capabilities(self, model: LocalModel) -> list[str]:
        """What `model` can do (`completion`, `embedding`, `tools`, …), read off the loop."""
        info = await asyncio.to_thread(model_gguf, model)
        return capabilities(model, info)

    async def require_capability(self, name_text: str, model: LocalModel, capability: str,
                                 action: str) -> None:
        """400 `"<model>" does not support <action>` unless `model` has `capability`."""
        if capability not in await self.model_capabilities(model):
            raise BadRequestError(f'"{name_text}" does not support {action}')


def state_of(request: Request) -> ServerState:
    return request.app.state.pasture
