"""Which model a request names, and what it can do: read once per request, off the loop.

Resolving reads the manifest and small layers (remembered while the manifest file is
unchanged), checks the blobs exist, reads the GGUF header (cached per blob), derives the
capabilities and parses a Go TEMPLATE (cached per source). All of it is file I/O or
parsing, so it runs in a worker thread; the answer is everything later stages ask about
the model, so none of them reads the store again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pasture import gguf
from pasture import options as opts
from pasture.config import Settings
from pasture.errors import BadRequestError, ModelNotFoundError
from pasture.prompt.render import PromptTemplate, parse_template_cached
from pasture.runner.base import LoadSpec
from pasture.store import ModelName, Store
from pasture.store.model import LocalModel, load_local_model
from pasture.store.show import capabilities, model_gguf
from pasture.store.verify import check_blobs

VISION_MIN_CTX = 2048  # Ollama raises a multimodal model's num_ctx to at least this


@dataclass(frozen=True)
class ResolvedModel:
    """A local model with what requests ask of it: its GGUF header, capabilities and
    prompt mode (a Go TEMPLATE rendered by Pasture, or the GGUF's own template applied by
    the engine)."""

    requested: str  # the name as the request spelled it (Ollama's messages quote it)
    name: ModelName
    local: LocalModel
    info: gguf.GGUFInfo
    capabilities: tuple[str, ...]

    @property
    def display(self) -> str:
        return self.name.display

    @property
    def template(self) -> PromptTemplate | None:
        """The model's Go TEMPLATE (rendered mode); None when the GGUF's template rules.
        Parsed when the model was resolved, so this is a cache hit."""
        source = self.local.template
        return parse_template_cached(source) if source is not None else None

    @property
    def embedding_only(self) -> bool:
        """The GGUF declares pooling: an embedding model."""
        return self.info.pooling_type is not None

    def require(self, capability: str, action: str) -> None:
        """400 `"<model>" does not support <action>` unless the model has `capability`."""
        if capability not in self.capabilities:
            raise BadRequestError(f'"{self.requested}" does not support {action}')

    def adapter_scales(self, lora: list[dict[str, Any]] | None) -> tuple[float, ...] | None:
        """The scale of each ADAPTER (in load order) for a request's `lora` option, whose
        entries choose adapters by id (position) or name; adapters not chosen get 0, as
        in llama-server. None without the option: every adapter at its load scale (1)."""
        if lora is None:
            return None
        adapters = self.local.adapters
        if not adapters:
            raise BadRequestError(f'"{self.requested}" has no LoRA adapters to scale')
        scales = [0.0] * len(adapters)
        for entry in lora:
            if "id" in entry:
                index = entry["id"]
                if index >= len(adapters):
                    raise BadRequestError(f"no LoRA adapter with id {index}: "
                                          f'"{self.requested}" has {len(adapters)} (ids from 0)')
            else:
                named = [i for i, adapter in enumerate(adapters) if adapter.name == entry["name"]]
                if len(named) != 1:
                    known = ", ".join(repr(a.name) for a in adapters if a.name) or "none"
                    raise BadRequestError(
                        f"no LoRA adapter named {entry['name']!r} (named: {known})" if not named
                        else f"several LoRA adapters are named {entry['name']!r}: choose by id")
                index = named[0]
            scales[index] = entry["scale"]
        return tuple(scales)

    def load_spec(self, options: dict[str, Any], settings: Settings) -> LoadSpec:
        """How to start a runner for this model with merged options."""
        model = self.local
        num_ctx = max(4, options.get("num_ctx") or settings.context_length)
        if model.projector_path:
            num_ctx = max(num_ctx, VISION_MIN_CTX)
        if model.context_length:  # then no more than the model was trained for
            num_ctx = min(num_ctx, model.context_length)
        num_gpu = options.get("num_gpu", -1)
        num_batch = options.get("num_batch", opts.LOAD["num_batch"].default)
        # Embedding models embed a whole input in one batch and, as in Ollama, get one
        # slot; other models embed with their last token's state.
        embedding = self.embedding_only
        draft_n = options.get("draft_num_predict", LoadSpec.draft_num_predict)
        draft = str(model.draft_path) if model.draft_path and draft_n > 0 else None
        # Draftless speculation drafts from the text so far: not for a model that embeds
        # only, and not with a projector (llama-server speculates on text prompts only).
        kind = options.get("speculative", opts.SPECULATIVE_DEFAULT)
        speculative = None if kind == "off" or draft or embedding or model.projector_path \
            else opts.SPECULATIVE_ENGINE_KINDS[kind]
        return LoadSpec(
            model_path=str(model.model_path),
            num_ctx=num_ctx,
            num_parallel=1 if embedding else settings.num_parallel,
            num_batch=max(num_batch, num_ctx) if embedding else num_batch,
            num_gpu=num_gpu if num_gpu >= 0 else -1,  # -1: the scheduler's placement decides
            num_thread=options.get("num_thread") or settings.num_threads,
            use_mmap=options.get("use_mmap"),
            adapters=tuple(str(adapter.path) for adapter in model.adapters),
            draft_model=draft,
            draft_num_predict=draft_n if draft else LoadSpec.draft_num_predict,
            speculative=speculative,
            projector=str(model.projector_path) if model.projector_path else None,
            kv_cache_type=settings.kv_cache_type,
            flash_attention=settings.flash_attention,
            embedding=True,
            # A reranker's rank pooling must be asked for by name: llama-server serves
            # `/rerank` only when its parameters say so, whatever the GGUF declares.
            pooling="rank" if self.info.reranker else None if embedding else "last",
        )


@dataclass
class Models:
    """The store's models as requests see them."""

    store: Store
    _local: dict[str, tuple[tuple[int, int, int], LocalModel]] = field(
        default_factory=dict, repr=False)

    async def resolve(self, requested: str | None) -> ResolvedModel:
        """The model a request names: 400 for a bad name, 404 if absent (off the loop)."""
        return await asyncio.to_thread(self.resolve_now, requested)

    def resolve_now(self, requested: str | None) -> ResolvedModel:
        """`resolve`, in the calling thread."""
        name, model = self.local(requested)
        info = model_gguf(model)
        return ResolvedModel(requested or "", name, model, info,
                             tuple(capabilities(model, info)))

    def local(self, requested: str | None) -> tuple[ModelName, LocalModel]:
        """The stored model a request names, its blobs checked (blocking file I/O)."""
        name = ModelName.parse(requested or "")
        try:
            model = self._remembered(name)
        except ModelNotFoundError:  # Ollama names the model as the request spelled it
            raise ModelNotFoundError(requested or "") from None
        except OSError:  # a small layer could not be read: name the damaged blob
            check_blobs(self.store, name, self.store.manifests.read(name))
            raise
        check_blobs(self.store, name, model.manifest)  # a clear error, not a failed load
        return name, model

    def _remembered(self, name: ModelName) -> LocalModel:
        """`load_local_model`, remembered while the manifest file is unchanged."""
        path = self.store.manifests.path(name)
        try:
            stat = path.stat() if path is not None else None
        except FileNotFoundError:  # deleted a moment ago
            stat = None
        if path is None or stat is None:
            raise ModelNotFoundError(name.display)
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._local.get(name.key)
        if cached is not None and cached[0] == version:
            return cached[1]
        model = load_local_model(self.store, name)
        self._local[name.key] = (version, model)
        return model
