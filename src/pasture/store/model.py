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


@dataclass(frozen=True)
class Adapter:
    """A LoRA ADAPTER: its blob, and the name a request may choose it by (the stem of the
    file it was created from; None for adapters pulled from a registry)."""

    path: Path
    name: str | None = None


@dataclass
class LocalModel:
    """Everything Pasture knows about one local model without opening its weights."""

    name: ModelName
    manifest: mf.Manifest
    digest: str  # sha256 hex of the manifest: the model's ID
    modified_at: datetime
    config: mf.ModelConfig
    model_path: Path
    adapters: list[Adapter] = field(default_factory=list)  # in the engine's order (ids)
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


# Settings layers are read whole, on every listing: real ones are a few KiB (a long
# license some tens), so a larger one is refused rather than read into memory.
MAX_SETTINGS_LAYER = 4 << 20
TEXT_LAYERS = (mf.MEDIA_TYPE_TEMPLATE, mf.MEDIA_TYPE_PROMPT, mf.MEDIA_TYPE_SYSTEM,
               mf.MEDIA_TYPE_LICENSE)
JSON_LAYERS = (mf.MEDIA_TYPE_PARAMS, mf.MEDIA_TYPE_MESSAGES)
SETTINGS_LAYERS = TEXT_LAYERS + JSON_LAYERS


class BrokenLayerError(BadRequestError):
    """A model's settings layer or config cannot be read as what its media type says
    (400, naming the layer): the model is unusable until pulled or created again."""

    def __init__(self, model: str, layer: mf.Layer, problem: str) -> None:
        super().__init__(f"model '{model}' has a broken layer {layer.mediaType} "
                         f"{layer.digest}: {problem}")


def read_settings_layer(store: Store, model: str, layer: mf.Layer) -> Any:
    """A settings layer's value, checked against its media type: text for a template,
    system prompt or license, a JSON object of parameters, a JSON list of message objects
    (BrokenLayerError otherwise; FileNotFoundError if the blob is missing)."""
    data = store.blobs.read(layer.digest, MAX_SETTINGS_LAYER)
    if len(data) > MAX_SETTINGS_LAYER:
        raise BrokenLayerError(model, layer, f"larger than {MAX_SETTINGS_LAYER >> 20} MiB")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise BrokenLayerError(model, layer, "not UTF-8 text") from None
    if layer.mediaType not in JSON_LAYERS:
        return text
    if not text.strip():
        return None  # an empty layer sets nothing, as before
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BrokenLayerError(model, layer, "not valid JSON") from None
    if layer.mediaType == mf.MEDIA_TYPE_PARAMS and not isinstance(value, dict):
        raise BrokenLayerError(model, layer, "not a JSON object")
    if layer.mediaType == mf.MEDIA_TYPE_MESSAGES and not (
            isinstance(value, list) and all(isinstance(m, dict) and isinstance(
                m.get("role"), str) and isinstance(m.get("content", ""), str) for m in value)):
        raise BrokenLayerError(model, layer, "not a JSON list of messages")
    return value


def read_config(store: Store, model: str, layer: mf.Layer) -> mf.ModelConfig:
    """The model's config blob (BrokenLayerError if it is not a config)."""
    try:
        return mf.ModelConfig.parse(store.blobs.read(layer.digest, mf.MAX_MANIFEST_BYTES))
    except mf.InvalidManifestError:
        raise BrokenLayerError(model, layer, "not a model config") from None


def check_layers(store: Store, model: str, manifest: mf.Manifest) -> None:
    """Read every settings layer and the config as a load would: what a pull checks
    before it writes the manifest, so a broken model is never stored."""
    read_config(store, model, manifest.config)
    for layer in manifest.layers:
        if layer.mediaType in SETTINGS_LAYERS:
            read_settings_layer(store, model, layer)


def load_local_model(store: Store, name: ModelName) -> LocalModel:
    """Read a model's manifest and small layers (ModelNotFoundError if it is absent,
    BrokenLayerError naming a layer that is not what its media type says)."""
    manifest = store.manifests.read(name)
    model_layer = manifest.layer(mf.MEDIA_TYPE_MODEL)
    if model_layer is None:
        raise BadRequestError(f"model '{name.display}' has no model layer")

    def value(media_type: str) -> Any:
        layer = manifest.layer(media_type)
        return read_settings_layer(store, name.display, layer) if layer else None

    return LocalModel(
        name=name,
        manifest=manifest,
        digest=store.manifests.digest(name),
        modified_at=store.manifests.modified_at(name),
        config=read_config(store, name.display, manifest.config),
        model_path=store.blobs.path(model_layer.digest),
        adapters=[Adapter(store.blobs.path(a.digest), a.name)
                  for a in manifest.layers_of(mf.MEDIA_TYPE_ADAPTER)],
        draft_path=(store.blobs.path(draft.digest)
                    if (draft := manifest.layer(mf.MEDIA_TYPE_DRAFT)) else None),
        projector_path=next((store.blobs.path(layer.digest)
                             for layer in manifest.layers_of(mf.MEDIA_TYPE_PROJECTOR)), None),
        template=value(mf.MEDIA_TYPE_TEMPLATE) or value(mf.MEDIA_TYPE_PROMPT),
        system=value(mf.MEDIA_TYPE_SYSTEM),
        params=value(mf.MEDIA_TYPE_PARAMS) or {},
        messages=value(mf.MEDIA_TYPE_MESSAGES) or [],
        licenses=[read_settings_layer(store, name.display, layer)
                  for layer in manifest.layers_of(mf.MEDIA_TYPE_LICENSE)],
    )
