"""Pull and push models: an async client of the OCI distribution (Docker Registry v2) API
as Ollama uses it. `pull_model` and `push_model` yield Ollama's progress statuses."""

from __future__ import annotations

from pasture.store.registry.client import TransferOptions
from pasture.store.registry.download import remove_stale_partials
from pasture.store.registry.errors import (
    DiskFullError,
    RegistryAuthError,
    RegistryError,
    UnsafeRegistryError,
)
from pasture.store.registry.pull import pull_model
from pasture.store.registry.push import push_model

__all__ = [
    "DiskFullError",
    "RegistryAuthError",
    "RegistryError",
    "TransferOptions",
    "UnsafeRegistryError",
    "pull_model",
    "push_model",
    "remove_stale_partials",
]
