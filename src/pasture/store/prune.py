"""Start-up clean-up of the store, as Ollama does unless `OLLAMA_NOPRUNE` is set.

Blobs no manifest references, stale temp files and abandoned downloads are removed once
they are older than the grace period (1 h), so a create or pull still under way, or a
download killed a moment ago and about to be resumed, keeps its files.
"""

from __future__ import annotations

import logging

from pasture.store.local import Store
from pasture.store.registry.download import remove_stale_partials

log = logging.getLogger(__name__)

GRACE_PERIOD = 3600.0


def prune_at_start(store: Store, older_than: float = GRACE_PERIOD) -> None:
    """Prune `store`; meant for a background thread, so it never raises."""
    try:
        removed = store.prune(older_than)
        partials = remove_stale_partials(store.blobs.root, older_than)
    except Exception:  # a background thread has no caller to report to
        log.exception("pruning the store failed")
        return
    if removed or partials:
        log.info("pruned %d unused blobs and %d stale download files", len(removed), partials)
