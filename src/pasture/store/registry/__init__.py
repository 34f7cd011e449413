"""Pull and push models: an async client of the OCI distribution (Docker Registry v2) API
as Ollama uses it. `pull.pull_model` and `push.push_model` yield Ollama's progress statuses.

This package's own namespace holds only what loads without httpx (options and errors), so
that importing any part of it, as the server does at start-up, does not load the network
client; the pulling and pushing modules are imported where a transfer begins.
"""

from __future__ import annotations

from pasture.store.registry.errors import (
    DiskFullError,
    RegistryAuthError,
    RegistryError,
    UnsafeRegistryError,
)
from pasture.store.registry.options import TransferOptions

__all__ = [
    "DiskFullError",
    "RegistryAuthError",
    "RegistryError",
    "TransferOptions",
    "UnsafeRegistryError",
]
