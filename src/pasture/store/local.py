"""The local model store: blobs plus manifests under one models directory.

Deleting and copying touch both halves, so they live here rather than in either store.
Writing a manifest and collecting a deleted model's blobs hold one lock, so a create that
reuses a blob either sees it vanish (and fails cleanly) or keeps it alive.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from pasture.errors import NotFoundError
from pasture.store.blobs import BlobStore
from pasture.store.manifests import InvalidManifestError, Manifest, ManifestStore
from pasture.store.names import ModelName

log = logging.getLogger(__name__)


class Store:
    """Ollama's on-disk layout: `models_dir/blobs` and `models_dir/manifests`."""

    def __init__(self, models_dir: Path) -> None:
        self.root = Path(models_dir)
        self.blobs = BlobStore(self.root / "blobs")
        self.manifests = ManifestStore(self.root)
        self._lock = threading.Lock()

    def write_manifest(self, name: ModelName, manifest: Manifest) -> None:
        """Write a manifest after checking every blob it names is present with its size."""
        with self._lock:
            for layer in [manifest.config, *manifest.layers]:
                if not self.blobs.exists(layer.digest):
                    raise NotFoundError(f'blob "{layer.digest}" not found')
                if self.blobs.size(layer.digest) != layer.size:
                    raise InvalidManifestError(
                        f"invalid manifest: size of {layer.digest} differs"
                    )
            self.manifests.write(name, manifest)

    def delete_model(self, name: ModelName) -> None:
        """Delete a model, then the blobs that no other manifest references.

        If any manifest, this one included, is unreadable, blobs are kept: better a leak
        than a model that lost its weights. A corrupt model can still be deleted.
        """
        with self._lock:
            try:
                manifest = self.manifests.read(name)
            except InvalidManifestError:
                manifest = None
            self.manifests.delete(name)
            if manifest is None:
                return
            try:
                still_used = self.manifests.referenced_digests()
            except InvalidManifestError:
                log.warning("kept the blobs of %s: another manifest is unreadable", name.display)
                return
            for digest in manifest.digests() - still_used:
                self.blobs.remove(digest)

    def copy(self, src: ModelName, dst: ModelName) -> None:
        """Give a model a second name: the manifest bytes are copied, so the ID is the same."""
        with self._lock:
            self.manifests.write_raw(dst, self.manifests.read_bytes(src))

    def prune(self, older_than: float = 3600.0) -> list[str]:
        """Remove blobs no manifest references that are older than `older_than` seconds.

        The grace period spares blobs just uploaded for a create or pull still under way.
        """
        with self._lock:
            try:
                used = self.manifests.referenced_digests()
            except InvalidManifestError:
                log.warning("prune skipped: a manifest is unreadable")
                return []
            cutoff = time.time() - older_than
            removed = []
            for digest in self.blobs.all_digests():
                if digest in used:
                    continue
                try:
                    if self.blobs.path(digest).stat().st_mtime >= cutoff:
                        continue
                except FileNotFoundError:
                    continue
                self.blobs.remove(digest)
                removed.append(digest)
        self.blobs.clean_temp(older_than)
        return removed
