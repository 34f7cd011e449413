"""A stored model, read from its manifest: the files and settings a request needs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pasture.api.ollama import ModelDetails
from pasture.errors import BadRequestError
from pasture.store import manifests as mf
from pasture.store.names import ModelName

if TYPE_CHECKING:  # the facade imports this module's siblings
    from pasture.store import Store


@dataclass
class LocalModel:
    """Everything Pasture knows about one local model without opening its weights."""

    name: ModelName
    manifest: mf.Manifest
    digest: str  # sha256 hex of the manifest: the model's ID
    modified_at: datetime
    config: mf.ModelConfig
    model_path: Path
    adapters: list[Path] = field(default_factory=list)
    draft_path: Path | None = None  # DRAFT model for speculative decoding
    projector_path: Path | None = None  # vision projector (llama.cpp loads one, the first)
    template: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.manifest.total_size

    @property
    def context_length(self) -> int | None:
        return self.config.context_length

    @property
    def details(self) -> ModelDetails:
        family = self.config.model_family
        return ModelDetails(
            format=self.config.model_format,
            family=family,
            families=self.config.model_families or ([family] if family else None),
            parameter_size=self.config.model_type,
            quantization_level=self.config.file_type,
        )


def load_local_model(store: Store, name: ModelName) -> LocalModel:
    """Read a model's manifest and small layers (ModelNotFoundError if it is absent)."""
    manifest = store.manifests.read(name)
    model_layer = manifest.layer(mf.MEDIA_TYPE_MODEL)
    if model_layer is None:
        raise BadRequestError(f"model '{name.display}' has no model layer")

    def text(media_type: str) -> str | None:
        layer = manifest.layer(media_type)
        return store.blobs.path(layer.digest).read_text() if layer else None

    def json_layer(media_type: str, default: Any) -> Any:
        raw = text(media_type)
        return json.loads(raw) if raw else default

    return LocalModel(
        name=name,
        manifest=manifest,
        digest=store.manifests.digest(name),
        modified_at=store.manifests.modified_at(name),
        config=mf.ModelConfig.parse(store.blobs.path(manifest.config.digest).read_bytes()),
        model_path=store.blobs.path(model_layer.digest),
        adapters=[store.blobs.path(a.digest) for a in manifest.layers_of(mf.MEDIA_TYPE_ADAPTER)],
        draft_path=(store.blobs.path(draft.digest)
                    if (draft := manifest.layer(mf.MEDIA_TYPE_DRAFT)) else None),
        projector_path=next((store.blobs.path(layer.digest)
                             for layer in manifest.layers_of(mf.MEDIA_TYPE_PROJECTOR)), None),
        template=text(mf.MEDIA_TYPE_TEMPLATE) or text(mf.MEDIA_TYPE_PROMPT),
        system=text(mf.MEDIA_TYPE_SYSTEM),
        params=json_layer(mf.MEDIA_TYPE_PARAMS, {}),
        messages=json_layer(mf.MEDIA_TYPE_MESSAGES, []),
        licenses=[
            store.blobs.path(layer.digest).read_text()
            for layer in manifest.layers_of(mf.MEDIA_TYPE_LICENSE)
        ],
    )
