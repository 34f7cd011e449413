"""The model store, in Ollama's on-disk layout: names, blobs, manifests, Modelfiles."""

from __future__ import annotations

from pasture.store.local import Store
from pasture.store.names import ModelName

__all__ = ["ModelName", "Store"]
