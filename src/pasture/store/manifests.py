"""Ollama's schema-2 manifests and the `manifests/<host>/<ns>/<model>/<tag>` tree.

A manifest is the last thing written for a model, and the only thing that makes it exist.
Its digests are validated when it is parsed, so nothing read from a manifest (local or from
a registry) can name a path outside `blobs/`. The sha256 of the manifest file's bytes is the
model's ID, so manifests received from a registry are stored byte for byte (`write_raw`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pasture.errors import BadRequestError, InvalidDigestError, ModelNotFoundError
from pasture.store.blobs import TEMP_PREFIX, disk_full_is_507, validate_digest
from pasture.store.names import ModelName
from pasture.store.paths import dir_below, lstat_below, read_below

MEDIA_TYPE_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_CONFIG = "application/vnd.docker.container.image.v1+json"
_OLLAMA = "application/vnd.ollama.image."
MEDIA_TYPE_MODEL = _OLLAMA + "model"
MEDIA_TYPE_ADAPTER = _OLLAMA + "adapter"
MEDIA_TYPE_PROJECTOR = _OLLAMA + "projector"
MEDIA_TYPE_DRAFT = _OLLAMA + "draft"
MEDIA_TYPE_TEMPLATE = _OLLAMA + "template"
MEDIA_TYPE_PROMPT = _OLLAMA + "prompt"  # legacy name of `template`
MEDIA_TYPE_SYSTEM = _OLLAMA + "system"
MEDIA_TYPE_PARAMS = _OLLAMA + "params"
MEDIA_TYPE_MESSAGES = _OLLAMA + "messages"
MEDIA_TYPE_LICENSE = _OLLAMA + "license"

MAX_MANIFEST_BYTES = 4 << 20  # distribution's maxManifestBodySize
MAX_LAYERS = 1024


class InvalidManifestError(BadRequestError):
    """A manifest is not valid JSON of the expected shape, or is too large (400)."""


class Layer(BaseModel):
    """One blob of a model: what it is (`mediaType`), its digest and size."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    mediaType: str
    digest: str
    size: Annotated[int, Field(ge=0)]
    from_: str | None = Field(default=None, alias="from")
    # Tensor layers: the tensor's name; adapter layers: the name a request picks it by.
    name: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        try:
            return validate_digest(value)
        except InvalidDigestError:
            raise ValueError("invalid digest format") from None


class Manifest(BaseModel):
    """A docker schema-2 manifest, as Ollama writes and pulls them."""

    model_config = ConfigDict(extra="ignore")

    schemaVersion: int = 2
    mediaType: str = MEDIA_TYPE_MANIFEST
    config: Layer
    layers: Annotated[list[Layer], Field(max_length=MAX_LAYERS)]

    @field_validator("schemaVersion")
    @classmethod
    def _schema(cls, value: int) -> int:
        if value != 2:
            raise ValueError("unsupported manifest schema version")
        return value

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse and validate manifest bytes; InvalidManifestError on anything wrong."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidManifestError("invalid manifest: larger than 4 MiB")
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
            where = ".".join(str(p) for p in first.get("loc", ()))
            detail = f"{where}: {first['msg']}" if where else str(first["msg"])
            raise InvalidManifestError(f"invalid manifest: {detail}") from None

    def to_bytes(self) -> bytes:
        """Compact JSON with a trailing newline, as Go's json.Encoder writes it."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\n"

    @property
    def total_size(self) -> int:
        """Bytes of all layers plus the config: the size `/api/tags` reports."""
        return self.config.size + sum(layer.size for layer in self.layers)

    def digests(self) -> set[str]:
        """Every blob this manifest references, config included."""
        return {self.config.digest, *(layer.digest for layer in self.layers)}

    def layers_of(self, media_type: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.mediaType == media_type]

    def layer(self, media_type: str) -> Layer | None:
        """The last layer of a media type (later layers override earlier ones in Ollama)."""
        found = self.layers_of(media_type)
        return found[-1] if found else None


class ModelConfig(BaseModel):
    """Ollama's config blob (ConfigV2); serialise with `to_bytes` (None fields left out)."""

    model_config = ConfigDict(extra="allow")

    model_format: str = "gguf"
    model_family: str = ""
    model_families: list[str] | None = None
    model_type: str = ""  # parameter size, e.g. "134.52M"
    file_type: str = ""  # quantization level, e.g. "Q4_K_M"
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None
    remote_host: str | None = None
    remote_model: str | None = None
    capabilities: list[str] | None = None
    context_length: int | None = None
    embedding_length: int | None = None
    base_name: str | None = None
    architecture: str = "amd64"
    os: str = "linux"

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def parse(cls, data: bytes) -> ModelConfig:
        try:
            return cls.model_validate_json(data)
        except ValidationError:
            raise InvalidManifestError("invalid model config") from None


def _write_atomic(root: Path, parts: tuple[str, ...], data: bytes) -> None:
    """Write `data` to `root/parts…` via a temp file in the same directory and a rename,
    every directory below `root` opened without following links."""
    temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    with disk_full_is_507(), dir_below(root, parts[:-1], create=True) as dir_fd:
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                         dir_fd=dir_fd)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # Replaces a link at the final name itself, never what it points to.
            os.replace(temp, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
        with contextlib.suppress(OSError):  # make the rename durable, where possible
            os.fsync(dir_fd)


class ManifestStore:
    """The manifests of a models directory (`root/manifests`)."""

    def __init__(self, root: Path) -> None:
        self.base = Path(root)  # the models directory: below it, no link is followed
        self.root = self.base / "manifests"

    def _path(self, name: ModelName) -> Path:
        return self.root.joinpath(*name.manifest_parts)

    @staticmethod
    def _parts(name: ModelName) -> tuple[str, ...]:
        """The manifest's path components below the models directory."""
        return ("manifests", *name.manifest_parts)

    def resolve(self, name: ModelName) -> ModelName:
        """The name as stored on disk, matching each level case-insensitively.

        Like Ollama, `Foo:Latest` finds `foo:latest`. Levels with no match keep the given
        spelling, so the result is where a new manifest for `name` should go.
        """
        parts = list(name.manifest_parts)
        directory = self.root
        for i, part in enumerate(parts):
            candidate = directory / part
            if not candidate.exists():
                try:
                    entries = sorted(os.listdir(directory))
                except (FileNotFoundError, NotADirectoryError):
                    break
                for entry in entries:
                    if entry.lower() == part.lower():
                        parts[i] = entry
                        break
                else:
                    break
            directory = directory / parts[i]
        return ModelName(*parts, scheme=name.scheme)

    def path(self, name: ModelName) -> Path | None:
        """Path of the manifest file for `name`, or None if there is no such model;
        StoreLinkError if a link stands anywhere on the way."""
        resolved = self.resolve(name)
        found = lstat_below(self.base, self._parts(resolved))
        return self._path(resolved) if found and stat.S_ISREG(found.st_mode) else None

    def exists(self, name: ModelName) -> bool:
        return self.path(name) is not None

    def read_bytes(self, name: ModelName) -> bytes:
        """Raw manifest bytes; ModelNotFoundError if missing."""
        try:
            data = read_below(self.base, self._parts(self.resolve(name)), MAX_MANIFEST_BYTES)
        except (FileNotFoundError, NotADirectoryError):
            raise ModelNotFoundError(name.display) from None
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidManifestError("invalid manifest: larger than 4 MiB")
        return data

    def read(self, name: ModelName) -> Manifest:
        return Manifest.parse(self.read_bytes(name))

    def digest(self, name: ModelName) -> str:
        """sha256 hex of the manifest file: the model ID shown by `list` and `/api/tags`."""
        return hashlib.sha256(self.read_bytes(name)).hexdigest()

    def modified_at(self, name: ModelName) -> datetime:
        path = self.path(name)
        if path is None:
            raise ModelNotFoundError(name.display)
        return datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC)

    def write(self, name: ModelName, manifest: Manifest) -> None:
        """Atomically write `manifest` for `name` (over any case-variant of it)."""
        self.write_raw(name, manifest.to_bytes())

    def write_raw(self, name: ModelName, data: bytes) -> None:
        """Validate and store manifest bytes exactly as given (keeps a pulled digest)."""
        Manifest.parse(data)
        _write_atomic(self.base, self._parts(self.resolve(name)), data)

    def delete(self, name: ModelName) -> None:
        """Remove the manifest and any directories it leaves empty."""
        resolved = self.resolve(name)
        path = self.path(resolved)
        if path is None:
            raise ModelNotFoundError(name.display)
        parts = self._parts(resolved)
        with dir_below(self.base, parts[:-1]) as dir_fd:
            os.unlink(parts[-1], dir_fd=dir_fd)
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:  # not empty, or already gone
                break
            parent = parent.parent

    def list(self) -> list[ModelName]:
        """Every stored model name; invalid names and temp files are skipped."""
        names: list[ModelName] = []
        if not self.root.is_dir():
            return names
        for host in _subdirs(self.root):
            for namespace in _subdirs(host):
                for model in _subdirs(namespace):
                    for tag in os.scandir(model):
                        if not tag.is_file(follow_symlinks=False):
                            continue
                        try:
                            names.append(
                                ModelName.from_manifest_parts(
                                    host.name, namespace.name, model.name, tag.name
                                )
                            )
                        except BadRequestError:
                            continue
        return names

    def referenced_digests(self) -> set[str]:
        """Blobs referenced by any manifest.

        Raises InvalidManifestError if a manifest cannot be read: garbage collection must
        not guess what an unreadable manifest needs.
        """
        found: set[str] = set()
        for name in self.list():
            try:
                found |= self.read(name).digests()
            except ModelNotFoundError:  # deleted meanwhile
                continue
        return found


def _subdirs(path: Path | os.DirEntry[str]) -> list[os.DirEntry[str]]:
    try:
        return [e for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
