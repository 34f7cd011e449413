"""Start-up clean-up of the store, as Ollama does unless `OLLAMA_NOPRUNE` is set.

Blobs no manifest references, stale temp files (of blobs and of manifests) and abandoned
downloads are removed once they are older than the grace period (1 h), so a create or pull
still under way, or a download killed a moment ago and about to be resumed, keeps its files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pasture.store.blobs import remove_stale_temps
from pasture.store.local import Store
from pasture.store.registry.partials import remove_stale_partials

log = logging.getLogger(__name__)

GRACE_PERIOD = 3600.0


def prune_at_start(store: Store, older_than: float = GRACE_PERIOD) -> None:
    """Prune `store`; meant for a background thread, so it never raises."""
    try:
        removed = store.prune(older_than)
        leftovers = remove_stale_partials(store.blobs.root, older_than)
        leftovers += sum(remove_stale_temps(Path(folder), older_than)
                         for folder, _, _ in os.walk(store.manifests.root))
    except Exception:  # a background thread has no caller to report to
        log.exception("pruning the store failed")
        return
    if removed or leftovers:
        log.info("pruned %d unused blobs and %d stale download or temporary files",
                 len(removed), leftovers)
