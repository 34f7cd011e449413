"""`create`: assemble a model from uploaded blobs or an existing model, plus settings.

Layers are written first and the manifest last, so an interrupted create leaves either
the old model or the new one. Only blobs already in the store are used: a request
names files by digest, never by a path on the server. A Safetensors directory (a model
or a LoRA adapter) is converted to GGUF first (`store.convert`). Uploaded headers and
TEMPLATEs are untrusted: they are parsed and checked in a child process
(`pasture.isolated`), and only the few facts create needs come back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pasture import gguf
from pasture import options as opts
from pasture.api.ollama import CreateRequest, ProgressResponse
from pasture.api.requires import check_requires
from pasture.digests import digest_of
from pasture.engines import converter
from pasture.errors import BadRequestError, NotFoundError
from pasture.isolated import isolated
from pasture.prompt.render import parse_template
from pasture.store import manifests as mf
from pasture.store.blobs import validate_digest
from pasture.store.convert import Upload, check_upload, convert_upload
from pasture.store.local import Store
from pasture.store.model import load_local_model
from pasture.store.names import ModelName
from pasture.store.quantize import QuantizeSettings, parse_level, quantize_layer
from pasture.store.safetensors import is_hf_directory

if TYPE_CHECKING:  # the registry package imports the store
    from pasture.store.registry import TransferOptions

# How long parsing one uploaded file may take (a real header takes well under a second).
PARSE_SECONDS = 60


@dataclass(frozen=True)
class FileFacts:
    """What create needs to know of an uploaded GGUF: small, where the parsed header can
    be hundreds of MB of Python objects."""

    file_size: int
    architecture: str | None
    file_type: str | None
    parameter_size: str
    context_length: int | None
    embedding_length: int | None
    block_count: int | None
    pooling_type: int | None
    projector: bool

    @classmethod
    def read(cls, path: Path) -> FileFacts:
        """Parse the header at `path` (run it `isolated`)."""
        info = gguf.read_gguf(path)
        return cls(info.file_size, info.architecture, info.file_type, info.parameter_size,
                   info.context_length, info.embedding_length, info.block_count,
                   info.pooling_type, _is_projector(info))


def checked_adapter(adapter: Path, model: Path) -> int:
    """The size of the LoRA adapter at `adapter` once checked against the model at `model`
    (both headers parsed: run it `isolated`)."""
    info = gguf.read_gguf(adapter)
    _check_lora(info, gguf.read_gguf(model))
    return info.file_size


@dataclass
class _Draft:
    """The manifest being assembled."""

    layers: list[mf.Layer]
    config: mf.ModelConfig
    params: dict[str, Any]


def _check_file_name(name: str) -> None:
    """`files` keys are names relative to the Modelfile: no absolute paths, no `..`."""
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts or ":" in name:
        raise BadRequestError(f"invalid file name {name!r}: must be a relative path")


async def create_model(store: Store, name: ModelName, req: CreateRequest,
                       quantizing: QuantizeSettings | None = None,
                       pulling: TransferOptions | None = None
                       ) -> AsyncIterator[ProgressResponse]:
    """Build and store the model `name`, yielding Ollama's progress statuses;
    `quantizing` says how to run the quantizer when the request asks for a level (and
    llama.cpp's converters, for Safetensors uploads), and `pulling` how to pull a `from`
    model that is not here yet."""
    level = parse_level(req.quantize) if req.quantize else None  # a 400 before any output
    if level is not None and quantizing is None:
        raise BadRequestError("quantization is not available on this server")
    if req.template is not None:  # a Go template that does not parse is a 400, as in Ollama
        await isolated(parse_template, req.template, timeout=PARSE_SECONDS)
    check_requires(req.requires)  # before any output, so a refusal is a 400
    # Safetensors uploads are checked before any output, so a bad one is a 400.
    model_upload = await _upload_to_convert(store, req.files, "model", quantizing)
    adapter_upload = await _upload_to_convert(store, req.adapters, "lora", quantizing)
    if model_upload is not None:
        assert quantizing is not None
        async for step in convert_upload(store, model_upload, quantizing):
            if isinstance(step, str):
                draft = await _from_files(store, {"model.gguf": step})
            else:
                yield step
        yield ProgressResponse(status="parsing GGUF")
    elif req.files:
        _check_uploaded(store, req.files)
        draft = await _from_files(store, req.files)  # before any output: errors stay 400s
        yield ProgressResponse(status="parsing GGUF")
    elif req.from_:
        base_name = ModelName.parse(req.from_)
        if not await asyncio.to_thread(store.manifests.exists, base_name):
            async for status in _pull_base(store, base_name, bool(req.insecure), pulling):
                yield status
        base = await asyncio.to_thread(load_local_model, store, base_name)
        draft = _Draft(
            layers=list(base.manifest.layers),
            config=base.config.model_copy(),
            params=dict(base.params),
        )
    else:
        raise BadRequestError("neither 'from' or 'files' was specified")
    if adapter_upload is not None:  # for a `from` model, still before any output
        converter.check_lora_base(draft.config.model_family)
    reused = list(draft.layers) if not req.files else []
    if level is not None:
        assert quantizing is not None
        model = next(layer for layer in draft.layers if layer.mediaType == mf.MEDIA_TYPE_MODEL)
        async for step in quantize_layer(store, model, level, quantizing):
            if isinstance(step, ProgressResponse):
                yield step
            elif step is not model:
                draft.layers[draft.layers.index(model)] = step
                draft.config.file_type = level
                reused = [layer for layer in reused if layer is not model]

    if adapter_upload is not None:
        assert quantizing is not None
        model = next(layer for layer in draft.layers if layer.mediaType == mf.MEDIA_TYPE_MODEL)
        async for step in convert_upload(store, adapter_upload, quantizing,
                                         base=store.blobs.path(model.digest)):
            if isinstance(step, str):
                draft.layers.extend(await _adapter_layers(store, draft.layers,
                                                          {"adapter.gguf": step}))
            else:
                yield step
    elif req.adapters:
        draft.layers.extend(await _adapter_layers(store, draft.layers, req.adapters))
    if req.draft_files:
        draft.layers = [layer for layer in draft.layers
                        if layer.mediaType != mf.MEDIA_TYPE_DRAFT]
        draft.layers.append(await _draft_layer(store, req.draft_files))
    if req.requires is not None:
        draft.config.requires = req.requires.strip() or None
    if req.parser is not None:
        draft.config.parser = req.parser.strip() or None
    check_requires(draft.config.requires)  # a base's own REQUIRES is inherited, and checked
    for layer in reused:  # reported once the request is known to be acceptable
        yield ProgressResponse(status=f"using existing layer {layer.digest}")

    settings: list[tuple[str, bytes]] = []
    if req.template is not None:
        settings.append((mf.MEDIA_TYPE_TEMPLATE, _text_layer("template", req.template)))
    if req.system is not None:
        settings.append((mf.MEDIA_TYPE_SYSTEM, _text_layer("system", req.system)))
    if req.parameters:
        draft.params.update(opts.validate(req.parameters))
        settings.append((mf.MEDIA_TYPE_PARAMS, json.dumps(draft.params).encode()))
    if req.messages:
        messages = [m.wire() for m in req.messages]
        for message in messages:
            if message["role"] not in ("system", "user", "assistant"):
                raise BadRequestError(f"invalid message role {message['role']!r}")
        settings.append((mf.MEDIA_TYPE_MESSAGES, json.dumps(messages).encode()))
    if req.license:
        licenses = [req.license] if isinstance(req.license, str) else req.license
        settings.extend((mf.MEDIA_TYPE_LICENSE, _text_layer("license", text))
                        for text in licenses)

    replaced = {media_type for media_type, _ in settings}
    if mf.MEDIA_TYPE_TEMPLATE in replaced:
        replaced.add(mf.MEDIA_TYPE_PROMPT)
    draft.layers = [layer for layer in draft.layers if layer.mediaType not in replaced]
    for media_type, data in settings:
        exists = store.blobs.exists(digest_of(data))
        digest = await asyncio.to_thread(store.blobs.write_bytes, data)
        verb = "using existing" if exists else "creating new"
        yield ProgressResponse(status=f"{verb} layer {digest}")
        draft.layers.append(mf.Layer(mediaType=media_type, digest=digest, size=len(data)))

    config_bytes = draft.config.to_bytes()
    config_digest = await asyncio.to_thread(store.blobs.write_bytes, config_bytes)
    manifest = mf.Manifest(
        config=mf.Layer(mediaType=mf.MEDIA_TYPE_CONFIG, digest=config_digest,
                        size=len(config_bytes)),
        layers=draft.layers,
    )
    yield ProgressResponse(status="writing manifest")
    await asyncio.to_thread(store.write_manifest, name, manifest)
    yield ProgressResponse(status="success")


def _check_uploaded(store: Store, files: dict[str, str]) -> None:
    """Every file of a request: a relative name and a valid digest of a stored blob."""
    for file_name, digest in files.items():
        _check_file_name(file_name)
        validate_digest(digest)
        if not store.blobs.exists(digest):
            raise BadRequestError(f"blob {digest} not found: upload it first")


async def _upload_to_convert(store: Store, files: dict[str, str] | None, kind: str,
                             settings: QuantizeSettings | None) -> Upload | None:
    """The checked upload when `files` are a Safetensors directory (`kind` "model" or
    "lora"), None when they are GGUF files (or none)."""
    if not files or not is_hf_directory(files):
        return None
    _check_uploaded(store, files)
    if settings is None:
        raise BadRequestError("converting Safetensors models is not available on this server")
    upload = await check_upload(store, files, kind)
    await asyncio.to_thread(converter.check_available)
    return upload


async def _pull_base(store: Store, name: ModelName, insecure: bool,
                     options: TransferOptions | None) -> AsyncIterator[ProgressResponse]:
    """Pull a `from` model that is not local yet, as Ollama does, passing its statuses on.

    The pull's own `success` is held back: one `success`, the create's, ends the stream.
    """
    from pasture.store.registry.errors import RegistryUnreachableError
    from pasture.store.registry.pull import pull_model  # it imports the store, and httpx

    try:
        async for status in pull_model(store, name, insecure=insecure, options=options):
            if status.status != "success":
                yield status
    except RegistryUnreachableError:  # offline: what the user needs to hear is "not found"
        raise NotFoundError(f"model '{name.display}' not found locally, and its registry "
                            f"({name.host}) could not be reached to pull it") from None


async def _adapter_layers(store: Store, layers: list[mf.Layer], files: dict[str, str]
                          ) -> list[mf.Layer]:
    """ADAPTER layers: LoRA GGUFs checked against the model they adapt.

    An adapter the model already has (its digest is an inherited layer) is not added
    twice, so `show --modelfile` output, which lists the adapters, recreates the model.
    Each new one is named for its file (`sql.gguf`: "sql"), so a request can choose its
    scale by name (`options.lora`); its position is its id.
    """
    have = {layer.digest for layer in layers if layer.mediaType == mf.MEDIA_TYPE_ADAPTER}
    model = next(layer for layer in layers if layer.mediaType == mf.MEDIA_TYPE_MODEL)
    new = []
    _check_uploaded(store, files)
    for file_name, digest in files.items():
        if digest in have:
            continue
        size = await isolated(checked_adapter, store.blobs.path(digest),
                              store.blobs.path(model.digest), timeout=PARSE_SECONDS)
        have.add(digest)
        new.append(mf.Layer(mediaType=mf.MEDIA_TYPE_ADAPTER, digest=digest, size=size,
                            name=PurePosixPath(file_name.replace("\\", "/")).stem or None))
    return new


def _check_lora(adapter: gguf.GGUFInfo, base: gguf.GGUFInfo) -> None:
    """What llama.cpp checks when it loads a LoRA, checked at create: a bad adapter is a
    400 now rather than a model that fails every load later."""
    meta = adapter.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise BadRequestError("the adapter GGUF file is not a LoRA adapter "
                              "(general.type 'adapter', adapter.type 'lora')")
    if adapter.architecture != base.architecture:
        raise BadRequestError(f"the LoRA adapter is for the {adapter.architecture!r} "
                              f"architecture, the model is {base.architecture!r}")
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for tensor in adapter.tensors:
        weight, _, part = tensor.name.rpartition(".")
        if part in ("lora_a", "lora_b"):
            pairs.setdefault(weight, {})[part] = tensor.shape
        elif not tensor.name.endswith("_norm.weight"):  # norms are skipped by llama.cpp
            raise BadRequestError(f"LoRA tensor {tensor.name!r} has an unexpected suffix")
    if not pairs:
        raise BadRequestError("the LoRA adapter has no lora_a/lora_b tensors")
    shapes = {tensor.name: tensor.shape for tensor in base.tensors}
    for weight, pair in pairs.items():
        if len(pair) != 2:
            raise BadRequestError(f"LoRA tensor pair for {weight!r} is missing one component")
        if not _lora_fits(shapes.get(weight), pair["lora_a"], pair["lora_b"],
                          weight.endswith("token_embd.weight")):
            raise BadRequestError(f"LoRA tensor {weight!r} does not fit the model "
                                  "(is the adapter for another base model?)")


def _lora_fits(w: tuple[int, ...] | None, a: tuple[int, ...], b: tuple[int, ...],
               embedding: bool) -> bool:
    """llama.cpp's shape rule: `W [n_in, n_out]` takes `A [n_in, r]`, `B [r, n_out]`
    (token embeddings take them flipped)."""
    if w is None or len(w) != 2 or len(a) != 2 or len(b) != 2:
        return False
    if embedding:
        return w[0] == b[1] and w[1] == a[1]
    return w[0] == a[0] and w[1] == b[1] and a[1] == b[0]


async def _draft_layer(store: Store, files: dict[str, str]) -> mf.Layer:
    """The DRAFT model (speculative decoding): one uploaded GGUF language model."""
    if len(files) != 1:
        raise BadRequestError("expected exactly one GGUF draft model file")
    ((file_name, digest),) = files.items()
    _check_file_name(file_name)
    validate_digest(digest)
    if not store.blobs.exists(digest):
        raise BadRequestError(f"blob {digest} not found: upload it first")
    info = await isolated(FileFacts.read, store.blobs.path(digest), timeout=PARSE_SECONDS)
    if info.block_count is None or info.pooling_type is not None:
        raise BadRequestError("the draft GGUF file does not describe a language model")
    return mf.Layer(mediaType=mf.MEDIA_TYPE_DRAFT, digest=digest, size=info.file_size)


async def _from_files(store: Store, files: dict[str, str]) -> _Draft:
    """Layers for uploaded files: the GGUF model (checked), then any vision projectors
    (a text model and its mmproj GGUF come as two FROM files, as in Ollama)."""
    ggufs = [(n, d) for n, d in files.items() if n.lower().endswith(".gguf")] or list(files.items())
    projectors: list[mf.Layer] = []
    models: list[tuple[str, FileFacts]] = []
    # Each distinct blob is parsed once, in turn, and a second model file ends the
    # request at once: a hostile header can take seconds and hundreds of MB to parse.
    for digest in dict.fromkeys(digest for _, digest in ggufs):
        info = await isolated(FileFacts.read, store.blobs.path(digest),
                              timeout=PARSE_SECONDS)
        if info.projector:
            projectors.append(mf.Layer(mediaType=mf.MEDIA_TYPE_PROJECTOR, digest=digest,
                                       size=info.file_size))
        elif models:
            raise BadRequestError("expected exactly one GGUF model file, got a second one "
                                  f"({digest})")
        else:
            models.append((digest, info))
    if len(models) != 1:
        raise BadRequestError("expected exactly one GGUF model file"
                              + (" besides the vision projector" if projectors else ""))
    digest, info = models[0]
    if info.pooling_type is None and info.block_count is None:
        raise BadRequestError("the GGUF file does not describe a language model")
    config = mf.ModelConfig(
        model_family=info.architecture or "",
        model_families=[info.architecture] if info.architecture else None,
        model_type=info.parameter_size,
        file_type=info.file_type or "",
        context_length=info.context_length,
        embedding_length=info.embedding_length,
    )
    layer = mf.Layer(mediaType=mf.MEDIA_TYPE_MODEL, digest=digest, size=info.file_size)
    return _Draft(layers=[layer, *projectors], config=config, params={})


def _is_projector(info: gguf.GGUFInfo) -> bool:
    """Ollama's test for a standalone vision model (llama.cpp's mmproj GGUF): vision
    blocks and no text blocks, or `general.type` "projector"."""
    vision_blocks = info.metadata.get(f"{info.architecture}.vision.block_count")
    return (not info.block_count and bool(vision_blocks)) or (
        info.metadata.get("general.type") == "projector")


def _text_layer(field: str, text: str) -> bytes:
    """A text setting as its layer's UTF-8 bytes; 400 for text JSON can carry but UTF-8
    cannot (a lone surrogate escape such as "\\ud800"), which no model could read back."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise BadRequestError(f"invalid {field}: not valid Unicode text (a lone surrogate)"
                              ) from None
