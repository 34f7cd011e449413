"""A node's copy of a model's files: found by digest in its models directory, verified.

The front end's load spec names its own paths (`…/blobs/sha256-<hex>`). A node looks
for the same blob in its own `PASTURE_MODELS`, then at the front end's path (a shared
filesystem), and hashes it once before the first load, so a damaged or tampered copy is
refused rather than run. A blob in neither place is fetched from the front end by digest
(`fetch`), verified, into this node's own models directory.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

from pasture.cluster.fetch import BlobSource, Fetched, fetch_blob
from pasture.digests import hash_file
from pasture.errors import RunnerError
from pasture.runner.base import LoadSpec

_BLOB_NAME = re.compile(r"^sha256-([0-9a-f]{64})$")


class NodeBlobs:
    """Resolves and verifies the files of load specs on this node (blocking: a thread)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._verified: set[tuple[str, int, int]] = set()  # (path, size, mtime) hashed good
        self._fetching = threading.Lock()  # one fetch at a time: two loads, one blob

    def local_spec(self, spec: LoadSpec, source: BlobSource | None = None
                   ) -> tuple[LoadSpec, list[Fetched]]:
        """`spec` with every file it names replaced by this node's verified copy, fetched
        from `source` where the node has none; and what was fetched."""
        fetched: list[Fetched] = []

        def local(path: str) -> str:
            return self.local(path, source, fetched)

        optional = {"draft_model": spec.draft_model, "projector": spec.projector}
        return replace(spec, model_path=local(spec.model_path),
                       adapters=tuple(local(path) for path in spec.adapters),
                       **{key: local(path) if path else None
                          for key, path in optional.items()}), fetched

    def local(self, path: str, source: BlobSource | None = None,
              fetched: list[Fetched] | None = None) -> str:
        """This node's copy of the file at the front end's `path`: its own blob, the
        front end's file (a shared filesystem), or a blob fetched from `source`."""
        name = Path(path).name
        blob = _BLOB_NAME.match(name)  # the only names used to build a path here
        own = self.models_dir / "blobs" / name if blob else None
        for candidate in (own, Path(path)):
            if candidate is not None and candidate.is_file():
                if blob:
                    self._verify(candidate, "sha256:" + blob[1])
                return str(candidate)
        if own is None or source is None:
            what = f"blob sha256:{blob[1]}" if blob else f"file {name}"
            raise RunnerError(f"{what} is not on this node, and the front end cannot send "
                              "it: give the nodes a shared models directory")
        with self._fetching:
            if not own.is_file():  # a load beside this one may have fetched it
                done = fetch_blob(source, "sha256:" + blob[1], own.parent)
                self._verified.add(_key(own))
                if fetched is not None:
                    fetched.append(done)
        return str(own)

    def _verify(self, path: Path, digest: str) -> None:
        key = _key(path)
        if key in self._verified:
            return
        if hash_file(path) != digest:
            raise RunnerError(f"this node's copy of blob {digest} does not match its "
                              "digest: refusing to load it")
        self._verified.add(key)


def _key(path: Path) -> tuple[str, int, int]:
    """A file as last hashed: a changed size or mtime means hashing it again."""
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)
