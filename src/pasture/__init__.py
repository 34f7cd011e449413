"""Pasture: run open language models locally, with Ollama's API and CLI, on llama.cpp."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
# The Ollama release whose API and behaviour Pasture implements (shared/reference/ollama.md):
# what `/api/version` reports, since clients gate features on Ollama's version, and what a
# model's REQUIRES is compared with.
OLLAMA_VERSION = "0.33.0"

# The client is imported on first use, so the server and runner processes, which
# `import pasture` too, do not pay for httpx at start-up.
_CLIENT_EXPORTS = ("AsyncClient", "Client", "ResponseError", "ServerNotRunningError")


def __getattr__(name: str) -> Any:
    if name in _CLIENT_EXPORTS:
        import pasture.client

        return getattr(pasture.client, name)
    raise AttributeError(f"module 'pasture' has no attribute {name!r}")
