"""Python clients for Pasture's (and Ollama's) REST API.

Same methods and arguments as the official `ollama` package, typed with Pasture's own
wire models, plus `create_from_modelfile` (uploads the files a Modelfile names) and
progress callbacks for blob uploads.

>>> from pasture.client import Client
>>> Client().list().models
"""

from __future__ import annotations

from pasture.client._async import AsyncClient
from pasture.client._sync import Client
from pasture.client.blobs import BlobProgress
from pasture.client.errors import ResponseError, ServerNotRunningError
from pasture.client.modelfile import CreatePlan, plan_create

__all__ = [
    "AsyncClient",
    "BlobProgress",
    "Client",
    "CreatePlan",
    "ResponseError",
    "ServerNotRunningError",
    "plan_create",
]
