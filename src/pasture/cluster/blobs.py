"""A node's copy of a model's files: found by digest in its models directory, verified.

The front end's load spec names its own paths (`…/blobs/sha256-<hex>`). A node looks
for the same blob in its own `PASTURE_MODELS`, then at the front end's path (a shared
filesystem), and hashes it once before the first load, so a damaged or tampered copy is
refused rather than run. Fetching a missing blob from the front end is not done yet
(docs/cluster.md).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from pasture.digests import hash_file
from pasture.errors import RunnerError
from pasture.runner.base import LoadSpec

_BLOB_NAME = re.compile(r"^sha256-([0-9a-f]{64})$")


class NodeBlobs:
    """Resolves and verifies the files of load specs on this node (blocking: a thread)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._verified: set[tuple[str, int, int]] = set()  # (path, size, mtime) hashed good

    def local_spec(self, spec: LoadSpec) -> LoadSpec:
        """`spec` with every file it names replaced by this node's verified copy."""
        optional = {"draft_model": spec.draft_model, "projector": spec.projector}
        return replace(spec, model_path=self.local(spec.model_path),
                       adapters=tuple(self.local(path) for path in spec.adapters),
                       **{key: self.local(path) if path else None
                          for key, path in optional.items()})

    def local(self, path: str) -> str:
        """This node's copy of the file at the front end's `path`."""
        name = Path(path).name
        blob = _BLOB_NAME.match(name)
        candidates = ([self.models_dir / "blobs" / name] if blob else []) + [Path(path)]
        for candidate in candidates:
            if candidate.is_file():
                if blob:
                    self._verify(candidate, "sha256:" + blob[1])
                return str(candidate)
        what = f"blob sha256:{blob[1]}" if blob else f"file {name}"
        raise RunnerError(f"{what} is not on this node: give the nodes a shared models "
                          "directory (fetching blobs from the front end is not done yet)")

    def _verify(self, path: Path, digest: str) -> None:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key in self._verified:
            return
        if hash_file(path) != digest:
            raise RunnerError(f"this node's copy of blob {digest} does not match its "
                              "digest: refusing to load it")
        self._verified.add(key)
