"""What every route shares: settings, the store and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from pasture import options as opts
from pasture.config import Settings
from pasture.durations import parse_keep_alive
from pasture.errors import ModelNotFoundError
from pasture.runner.base import LoadSpec
from pasture.scheduler import Scheduler
from pasture.store import ModelName, Store
from pasture.store.model import LocalModel, load_local_model


@dataclass
class ServerState:
    settings: Settings
    store: Store
    scheduler: Scheduler
    auto_gpu_layers: int = 0  # layers offloaded when `num_gpu` is unset: all on a GPU build

    def model(self, name_text: str | None) -> tuple[ModelName, LocalModel]:
        """The local model a request names (400 for a bad name, 404 if absent)."""
        name = ModelName.parse(name_text or "")
        try:
            return name, load_local_model(self.store, name)
        except ModelNotFoundError:  # Ollama names the model as the request spelled it
            raise ModelNotFoundError(name_text or "") from None

    def keep_alive(self, value: float | str | None) -> float:
        """Seconds from a request's keep_alive, or the server default when unset."""
        return self.settings.keep_alive if value is None else parse_keep_alive(value)

    def load_spec(self, model: LocalModel, options: dict[str, Any]) -> LoadSpec:
        """How to start a runner for `model` with merged options."""
        num_ctx = options.get("num_ctx") or self.settings.context_length
        train_ctx = model.context_length
        if train_ctx:
            num_ctx = min(num_ctx, train_ctx)
        num_gpu = options.get("num_gpu", -1)
        return LoadSpec(
            model_path=str(model.model_path),
            num_ctx=max(4, num_ctx),
            num_parallel=self.settings.num_parallel,
            num_batch=options.get("num_batch", opts.LOAD["num_batch"].default),
            num_gpu=num_gpu if num_gpu >= 0 else self.auto_gpu_layers,
            num_thread=options.get("num_thread") or self.settings.num_threads,
            use_mmap=options.get("use_mmap"),
            adapters=tuple(str(p) for p in model.adapters),
        )


def state_of(request: Request) -> ServerState:
    return request.app.state.pasture
