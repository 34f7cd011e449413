"""Python clients for Pasture's (and Ollama's) REST API.

Same methods and arguments as the official `ollama` package, typed with Pasture's own
wire models, plus `create_from_modelfile` (uploads the files a Modelfile names) and
progress callbacks for blob uploads.

>>> from pasture.client import Client
>>> Client().list().models
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pasture.client._async import AsyncClient
    from pasture.client._sync import Client
    from pasture.client.blobs import BlobProgress
    from pasture.client.errors import CertificateError, ResponseError, ServerNotRunningError
    from pasture.client.modelfile import CreatePlan, plan_create

# Each name is imported from its module on first use, so `pasture list` (the blocking
# client) pays for neither anyio (the async client) nor urllib (Modelfile planning).
_EXPORTS = {
    "AsyncClient": "pasture.client._async",
    "BlobProgress": "pasture.client.blobs",
    "CertificateError": "pasture.client.errors",
    "Client": "pasture.client._sync",
    "CreatePlan": "pasture.client.modelfile",
    "ResponseError": "pasture.client.errors",
    "ServerNotRunningError": "pasture.client.errors",
    "plan_create": "pasture.client.modelfile",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pasture.client' has no attribute {name!r}")

__all__ = [
    "AsyncClient",
    "BlobProgress",
    "CertificateError",
    "Client",
    "CreatePlan",
    "ResponseError",
    "ServerNotRunningError",
    "plan_create",
]
