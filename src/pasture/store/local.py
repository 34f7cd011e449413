"""The local model store: blobs plus manifests under one models directory.

Deleting and copying touch both halves, so they live here rather than in either store.
Writing a manifest and collecting unused blobs hold one lock, so a create that reuses a
blob either sees it vanish (and fails cleanly) or keeps it alive. A pull holds its blobs
(`in_use`) from the moment it looks for them until its manifest is written, so none is
collected under it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pasture.errors import NotFoundError
from pasture.store.blobs import BlobStore
from pasture.store.manifests import InvalidManifestError, Manifest, ManifestStore
from pasture.store.names import ModelName

log = logging.getLogger(__name__)


class Store:
    """Ollama's on-disk layout: `models_dir/blobs` and `models_dir/manifests`."""

    def __init__(self, models_dir: Path, *, noprune: bool = False) -> None:
        self.root = Path(models_dir)
        self.blobs = BlobStore(self.root / "blobs")
        self.manifests = ManifestStore(self.root)
        self.noprune = noprune  # OLLAMA_NOPRUNE: a re-pulled tag keeps its old blobs
        self._lock = threading.Lock()
        self._in_use: Counter[str] = Counter()
        self._in_use_lock = threading.Lock()  # never held long: async code takes it

    @contextmanager
    def in_use(self, digests: Iterable[str]) -> Iterator[None]:
        """Keep `digests` from being collected while the block runs (a pull under way)."""
        held = list(digests)
        with self._in_use_lock:
            self._in_use.update(held)
        try:
            yield
        finally:
            with self._in_use_lock:
                self._in_use.subtract(held)
                self._in_use += Counter()  # drop the zero counts

    def _unused(self, candidates: Iterable[str]) -> set[str] | None:
        """The candidates no manifest references and no pull holds; None if a manifest
        is unreadable, as then nothing may go. The caller holds the lock."""
        try:
            used = self.manifests.referenced_digests()
        except InvalidManifestError:
            return None
        with self._in_use_lock:
            used.update(self._in_use)
        return set(candidates) - used

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
        """Delete a model, then the blobs no other manifest references nor a pull holds.

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
            unused = self._unused(manifest.digests())
            if unused is None:
                log.warning("kept the blobs of %s: another manifest is unreadable", name.display)
                return
            for digest in unused:
                self.blobs.remove(digest)

    def replace_manifest(self, name: ModelName, raw: bytes) -> set[str]:
        """Write manifest bytes for `name` as pulled and, as Ollama does after a pull,
        remove at once the blobs of the manifest it replaces that no manifest still uses:
        a re-pulled tag must not leave its old weights behind until the next start.

        Returns the old manifest's blobs that the new one lacks, the candidates (none with
        `noprune`). An unreadable manifest, old or other, keeps every blob; a blob that
        cannot be removed is logged, not raised, as the pull itself has succeeded.
        """
        with self._lock:
            try:
                old = self.manifests.read(name).digests()
            except (NotFoundError, InvalidManifestError):
                old = set()
            self.manifests.write_raw(name, raw)
            stale = old - Manifest.parse(raw).digests()
            if self.noprune or not stale:
                return set()
            unused = self._unused(stale)
            if unused is None:
                log.warning("kept the old blobs of %s: a manifest is unreadable", name.display)
            for digest in unused or ():
                try:
                    self.blobs.remove(digest)
                except OSError as exc:
                    log.warning("could not remove unused blob %s: %s", digest, exc)
            return stale

    def copy(self, src: ModelName, dst: ModelName) -> None:
        """Give a model a second name: the manifest bytes are copied, so the ID is the same."""
        with self._lock:
            self.manifests.write_raw(dst, self.manifests.read_bytes(src))

    def prune(self, older_than: float = 3600.0) -> list[str]:
        """Remove blobs no manifest references that are older than `older_than` seconds.

        The grace period spares blobs just uploaded for a create or pull still under way.
        """
        with self._lock:
            unused = self._unused(self.blobs.all_digests())
            if unused is None:
                log.warning("prune skipped: a manifest is unreadable")
                return []
            cutoff = time.time() - older_than
            removed = []
            for digest in sorted(unused):
                try:
                    if self.blobs.path(digest).stat().st_mtime >= cutoff:
                        continue
                except FileNotFoundError:
                    continue
                self.blobs.remove(digest)
                removed.append(digest)
        self.blobs.clean_temp(older_than)
        return removed
